"""Alerts the sender finds by looking, each round: a surge of alerts against the same hour a
week earlier, ingestion lagging behind the wall clock, a scoring service that is not ready.

The rules are pure (`surge_event`, `ingest_lag_event`, `ReadinessWatch.update`); the warehouse
reads and the readiness probe are passed in or done at the edge (`AlertWatch.check`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import httpx
import structlog

from fraudops.alerts.events import AlertEvent, console_link
from fraudops.times import utc_naive, utc_now

if TYPE_CHECKING:
    from fraudops.config import Settings

log = structlog.get_logger(__name__)

SURGE = "surge"
INGEST_LAG = "ingest_lag"
SERVICE = "service"
HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
READINESS_TIMEOUT_S = 2.0
# Failed readiness probes in a row that make an alert: one may be a restart.
READINESS_FAILURES = 2


class WatchedReads(Protocol):
    """What the watch reads from the warehouse (storage.reports)."""

    def alert_count(self, start: datetime, end: datetime) -> int:
        """Reviews and declines of the transactions whose event time lies in [start, end)."""
        ...

    def newest_event_time(self) -> datetime | None:
        """The latest stored event time, or None when nothing is stored."""
        ...

    def newest_scored_at(self) -> datetime | None:
        """When the newest stored transaction was scored (wall clock), or None."""
        ...


def last_full_hour(newest_event_time: datetime) -> datetime:
    """The start of the last full hour before the hour of the newest event."""
    return newest_event_time.replace(minute=0, second=0, microsecond=0) - HOUR


def surge_event(
    *,
    hour_start: datetime,
    count: int,
    week_before: int,
    ratio: float,
    min_count: int,
    console_url: str | None = None,
) -> AlertEvent | None:
    """The alert of an hour with at least `min_count` reviews and declines and more than
    `ratio` times those of the same hour a week earlier, else None."""
    if count < min_count or count <= ratio * week_before:
        return None
    times = f"{count / week_before:.1f} times" if week_before else "none"
    hour = hour_start.strftime("%Y-%m-%d %H:00")
    words = "against" if week_before else "and"
    return AlertEvent(
        kind=SURGE,
        dedup_key=f"surge:{hour_start.isoformat()}",
        subject=f"Surge of alerts: {count} in the hour from {hour} UTC",
        text=(
            f"{count} reviews and declines in the hour from {hour} UTC {words} {week_before} "
            f"in the same hour a week earlier ({times}; alert above {ratio:g} times)."
        ),
        payload={
            "hour_start": hour_start.isoformat(),
            "count": count,
            "week_before": week_before,
            "ratio": ratio,
        },
        link=console_link(console_url, "/queue"),
    )


def ingest_lag_event(
    *,
    newest_scored_at: datetime,
    now: datetime,
    limit: timedelta,
    console_url: str | None = None,
) -> AlertEvent | None:
    """The alert of no transaction scored for longer than `limit`, else None; one per lag
    episode, which lasts as long as the newest scored transaction stays the same."""
    lag = utc_naive(now) - utc_naive(newest_scored_at)
    if lag <= limit:
        return None
    minutes = lag.total_seconds() / 60
    return AlertEvent(
        kind=INGEST_LAG,
        dedup_key=f"ingest_lag:{utc_naive(newest_scored_at).isoformat()}",
        subject=f"Ingestion lag: nothing scored for {minutes:.0f} minutes",
        text=(
            f"The newest stored transaction was scored at {newest_scored_at.isoformat()} UTC, "
            f"{minutes:.1f} minutes ago (limit {limit.total_seconds():g} s)."
        ),
        payload={
            "newest_scored_at": utc_naive(newest_scored_at).isoformat(),
            "lag_seconds": lag.total_seconds(),
            "limit_seconds": limit.total_seconds(),
        },
        link=console_link(console_url, "/monitoring"),
    )


@dataclass(frozen=True, kw_only=True)
class Readiness:
    """One probe of the service's /readyz."""

    ready: bool
    detail: str


class ReadinessWatch:
    """Counts failed readiness probes in a row; the second one of an episode is an alert."""

    def __init__(self, service_url: str, *, console_url: str | None = None) -> None:
        self._service_url = service_url
        self._console_url = console_url
        self._failures = 0
        self._since: datetime | None = None

    @property
    def failures(self) -> int:
        """Failed probes in a row so far."""
        return self._failures

    def update(self, probe: Readiness, now: datetime) -> AlertEvent | None:
        """Take a probe's result; the alert when this failure makes the episode one."""
        if probe.ready:
            self._failures = 0
            self._since = None
            return None
        self._failures += 1
        if self._since is None:
            self._since = utc_naive(now)
        if self._failures != READINESS_FAILURES:
            return None
        return AlertEvent(
            kind=SERVICE,
            dedup_key=f"service:{self._service_url}:{self._since.isoformat()}",
            subject=f"Scoring service not ready: {self._service_url}",
            text=(
                f"The scoring service at {self._service_url} failed {self._failures} readiness "
                f"checks in a row since {self._since.isoformat()} UTC: {probe.detail}"
            ),
            payload={
                "service_url": self._service_url,
                "since": self._since.isoformat(),
                "detail": probe.detail,
            },
            link=console_link(self._console_url, "/models"),
        )


def probe_readiness(service_url: str, *, timeout: float = READINESS_TIMEOUT_S) -> Readiness:
    """GET {service_url}/readyz: ready on 200; otherwise what went wrong, in one line."""
    url = service_url.rstrip("/") + "/readyz"
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as error:
        return Readiness(ready=False, detail=f"unreachable ({type(error).__name__})")
    if response.status_code == 200:
        return Readiness(ready=True, detail="ready")
    return Readiness(ready=False, detail=f"/readyz answered {response.status_code}")


class AlertWatch:
    """The checks the sender runs each round; each gives the alerts it finds."""

    def __init__(
        self,
        reads: WatchedReads,
        *,
        surge_ratio: float = 3.0,
        surge_min_count: int = 20,
        ingest_lag: timedelta | None = None,
        service_url: str | None = None,
        console_url: str | None = None,
        probe: Callable[[str], Readiness] = probe_readiness,
    ) -> None:
        self._reads = reads
        self._surge_ratio = surge_ratio
        self._surge_min_count = surge_min_count
        self._ingest_lag = ingest_lag
        self._console_url = console_url
        self._probe = probe
        self._service_url = service_url
        self._readiness = (
            None if service_url is None else ReadinessWatch(service_url, console_url=console_url)
        )

    @classmethod
    def from_settings(cls, reads: WatchedReads, settings: "Settings") -> "AlertWatch":
        """The watch the settings configure."""
        lag = settings.alert_ingest_lag_seconds
        return cls(
            reads,
            surge_ratio=settings.alert_surge_ratio,
            surge_min_count=settings.alert_surge_min_count,
            ingest_lag=None if lag is None else timedelta(seconds=lag),
            service_url=settings.service_url or None,
            console_url=settings.console_url,
        )

    def check(self, now: datetime | None = None) -> list[AlertEvent]:
        """Every check once at `now` (wall clock); a failing check is logged, not raised."""
        now = utc_naive(now or utc_now())
        found: list[AlertEvent | None] = []
        for name, check in (
            ("surge", self.surge),
            ("ingest_lag", self.lag),
            ("readiness", self.readiness),
        ):
            try:
                found.append(check(now))
            except Exception:  # one broken check must not stop the others or delivery
                log.exception("alert check failed", check=name)
        return [event for event in found if event is not None]

    def surge(self, _now: datetime) -> AlertEvent | None:
        """The surge alert of the last full hour (event time), if any."""
        newest = self._reads.newest_event_time()
        if newest is None:
            return None
        start = last_full_hour(newest)
        return surge_event(
            hour_start=start,
            count=self._reads.alert_count(start, start + HOUR),
            week_before=self._reads.alert_count(start - WEEK, start - WEEK + HOUR),
            ratio=self._surge_ratio,
            min_count=self._surge_min_count,
            console_url=self._console_url,
        )

    def lag(self, now: datetime) -> AlertEvent | None:
        """The ingestion-lag alert, if a limit is set and exceeded."""
        if self._ingest_lag is None:
            return None
        newest = self._reads.newest_scored_at()
        if newest is None:
            return None
        return ingest_lag_event(
            newest_scored_at=newest, now=now, limit=self._ingest_lag, console_url=self._console_url
        )

    def readiness(self, now: datetime) -> AlertEvent | None:
        """The not-ready alert, if the service is watched and failed twice in a row."""
        if self._readiness is None or self._service_url is None:
            return None
        return self._readiness.update(self._probe(self._service_url), now)
