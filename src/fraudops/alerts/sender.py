"""Delivery of the outbox: due alerts to every channel, with retries, backoff and digests.

At least once: a row is marked delivered only after every channel took it, so a crash
between sending and marking sends it again, and with several channels a retry goes to all
of them. A burst beyond the rate limit is folded into one digest row of the outbox, in the
same database transaction that marks the folded rows, so nothing is lost or told twice.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from fraudops.alerts.channels import AlertDeliveryError, Channel, channels_from_settings
from fraudops.alerts.events import DIGEST, AlertEvent, console_link
from fraudops.alerts.watch import AlertWatch
from fraudops.config import Settings
from fraudops.times import utc_aware, utc_naive, utc_now

if TYPE_CHECKING:
    from fraudops.storage.outbox import OutboxEntry, OutboxTables
    from fraudops.storage.warehouse import Warehouse

log = structlog.get_logger(__name__)

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
# Subjects a digest lists before it only counts the rest.
DIGEST_LISTED = 20


def retry_delay(
    attempts: int, *, base: timedelta = BACKOFF_BASE, cap: timedelta = BACKOFF_CAP
) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: doubling from base, capped."""
    if attempts < 1:
        return timedelta(0)
    delay: timedelta = base * 2 ** min(attempts - 1, 32)
    return min(delay, cap)


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """At most `limit` alerts of a kind one by one per `window`; the rest go in one digest."""

    limit: int = 10
    window: timedelta = timedelta(minutes=5)


@dataclass(kw_only=True)
class DeliveryReport:
    """What one delivery round did."""

    delivered: int = 0
    failed: int = 0
    folded: int = 0
    postponed: int = 0
    errors: list[str] = field(default_factory=list)


def deliver_pending(
    warehouse: "OutboxTables",
    channels: Sequence[Channel],
    now: datetime | None = None,
    *,
    rate: RateLimit | None = None,
    console_url: str | None = None,
    backoff_base: timedelta = BACKOFF_BASE,
    dedup_keys: Sequence[str] | None = None,
) -> DeliveryReport:
    """Deliver the outbox rows due at `now` to every channel (only those with the dedup keys
    given, if any are); one round, then return."""
    now = utc_naive(now or utc_now())
    rate = rate or RateLimit()
    report = DeliveryReport()
    if not channels:
        return report
    due = warehouse.due_alerts(now, dedup_keys=dedup_keys)
    by_kind: dict[str, list[OutboxEntry]] = {}
    for entry in due:
        if entry.kind != DIGEST:
            by_kind.setdefault(entry.kind, []).append(entry)
    to_send = [entry for entry in due if entry.kind == DIGEST]
    for kind, entries in by_kind.items():
        sent = warehouse.delivered_alerts_since(kind, now - rate.window)
        room = max(rate.limit - sent, 0)
        to_send += entries[:room]
        folded = entries[room:]
        if folded:
            _fold(
                warehouse, kind, folded, now=now, rate=rate, console_url=console_url, report=report
            )
    # Digests made just now are due at once.
    chosen = {entry.id for entry in to_send}
    to_send += [
        e
        for e in warehouse.due_alerts(now, dedup_keys=dedup_keys)
        if e.kind == DIGEST and e.id not in chosen
    ]
    to_send.sort(key=lambda entry: entry.id)
    for position, entry in enumerate(to_send):
        try:
            event = AlertEvent.from_dict(entry.payload)
            for channel in channels:
                channel.send(event)
        except AlertDeliveryError as error:
            retry_at = now + retry_delay(entry.attempts + 1, base=backoff_base)
            warehouse.mark_alerts_failed([entry.id], error=str(error), retry_at=retry_at)
            # The channel is likely down: the rest of this round waits as long.
            rest = [e.id for e in to_send[position + 1 :]]
            warehouse.postpone_alerts(rest, until=retry_at)
            report.failed += 1
            report.postponed += len(rest)
            report.errors.append(str(error))
            log.warning(
                "alert delivery failed",
                dedup_key=entry.dedup_key,
                error=str(error),
                attempts=entry.attempts + 1,
                retry_at=retry_at.isoformat(),
            )
            break
        warehouse.mark_alerts_delivered([entry.id], at=now)
        report.delivered += 1
    if report.delivered or report.failed or report.folded:
        log.info(
            "alerts delivered",
            delivered=report.delivered,
            failed=report.failed,
            folded=report.folded,
            postponed=report.postponed,
        )
    return report


def _fold(
    warehouse: "OutboxTables",
    kind: str,
    entries: Sequence["OutboxEntry"],
    *,
    now: datetime,
    rate: RateLimit,
    console_url: str | None,
    report: DeliveryReport,
) -> None:
    """Fold a burst into one digest per kind and rate window, or wait for the next window."""
    window_seconds = rate.window.total_seconds()
    bucket = int(utc_aware(now).timestamp() // window_seconds)
    digest = digest_event(
        kind,
        [AlertEvent.from_dict(entry.payload) for entry in entries],
        window=rate.window,
        key=f"digest:{kind}:{bucket}",
        console_url=console_url,
    )
    ids = [entry.id for entry in entries]
    if warehouse.fold_alerts(ids, digest=digest, at=now):
        report.folded += len(ids)
        return
    # This window has its digest already: the rest waits for the next window's.
    next_window = utc_naive(datetime.fromtimestamp((bucket + 1) * window_seconds, tz=UTC))
    warehouse.postpone_alerts(ids, until=next_window)
    report.postponed += len(ids)


def digest_event(
    kind: str,
    events: Sequence[AlertEvent],
    *,
    window: timedelta,
    key: str,
    console_url: str | None = None,
) -> AlertEvent:
    """One alert standing for many of a kind: "37 more declines in the last 5 minutes"."""
    count = len(events)
    noun = _plural(kind, count)
    headline = f"{count} more {noun} in the last {_duration_words(window)}"
    lines = [headline + "."]
    lines += [f"- {event.subject}" for event in events[:DIGEST_LISTED]]
    if count > DIGEST_LISTED:
        lines.append(f"... and {count - DIGEST_LISTED} more.")
    return AlertEvent(
        kind=DIGEST,
        dedup_key=key,
        subject=headline,
        text="\n".join(lines),
        payload={
            "folded_kind": kind,
            "count": count,
            "dedup_keys": [event.dedup_key for event in events],
            "trans_nums": [
                event.payload["trans_num"] for event in events if "trans_num" in event.payload
            ],
        },
        link=console_link(console_url, "/queue" if kind == "decline" else "/monitoring"),
    )


class AlertSender:
    """Runs rounds in a thread every `interval` until stopped: the watch's checks (surge,
    ingestion lag, readiness) into the outbox, then delivery."""

    def __init__(
        self,
        warehouse: "OutboxTables",
        channels: Sequence[Channel],
        *,
        interval: float,
        rate: RateLimit | None = None,
        console_url: str | None = None,
        watch: AlertWatch | None = None,
    ) -> None:
        self._warehouse = warehouse
        self._watch = watch
        self._channels = list(channels)
        self._interval = interval
        self._rate = rate
        self._console_url = console_url
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self.run, name="fraudops-alerts", daemon=True)

    @classmethod
    def from_settings(cls, warehouse: "Warehouse", settings: Settings) -> "AlertSender":
        """The sender to the channels the settings configure, at their interval and rate,
        with the checks they configure."""
        return cls(
            warehouse,
            channels_from_settings(settings),
            interval=settings.alert_send_interval_seconds,
            rate=RateLimit(
                limit=settings.alert_rate_limit,
                window=timedelta(seconds=settings.alert_rate_window_seconds),
            ),
            console_url=settings.console_url,
            watch=AlertWatch.from_settings(warehouse, settings),
        )

    @property
    def channels(self) -> list[Channel]:
        """Where it delivers."""
        return list(self._channels)

    def start(self) -> None:
        """Start sending in the background."""
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Finish the current round and stop."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self) -> DeliveryReport:
        """One round now: the checks' alerts into the outbox, then delivery."""
        if self._watch is not None:
            found = self._watch.check()
            if found:
                self._warehouse.enqueue_alerts(found)
        return deliver_pending(
            self._warehouse, self._channels, rate=self._rate, console_url=self._console_url
        )

    def run(self) -> None:
        """Rounds until stopped, in this thread; a failing round is logged and the next one
        comes anyway."""
        while not self._stopping.is_set():
            try:
                self.run_once()
            except Exception:  # the warehouse may be away for a while: keep the thread
                log.exception("alert delivery round failed")
            self._stopping.wait(self._interval)


def _plural(kind: str, count: int) -> str:
    """The word for `count` alerts of a kind."""
    words = {
        "decline": ("decline", "declines"),
        "monitoring": ("monitoring alert", "monitoring alerts"),
        "lifecycle": ("model change", "model changes"),
        "quality": ("data-quality failure", "data-quality failures"),
        "surge": ("surge", "surges"),
        "ingest_lag": ("ingestion lag", "ingestion lags"),
        "service": ("service not ready", "service-not-ready alerts"),
        "daily_report": ("daily report", "daily reports"),
    }
    one, many = words.get(kind, (f"{kind} alert", f"{kind} alerts"))
    return one if count == 1 else many


def _duration_words(window: timedelta) -> str:
    """A window in words: "5 minutes", "hour", "30 seconds"."""
    seconds = int(window.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size:
            amount = seconds // size
            return unit if amount == 1 else f"{amount} {unit}s"
    return f"{seconds} seconds"
