"""The checks the sender runs: surge, ingestion lag and readiness rules, pure logic."""

from datetime import datetime, timedelta

from fraudops.alerts.events import AlertEvent
from fraudops.alerts.watch import (
    AlertWatch,
    Readiness,
    ReadinessWatch,
    ingest_lag_event,
    last_full_hour,
    surge_event,
)

T0 = datetime(2026, 3, 1, 12, 0, 0)
DOWN = Readiness(ready=False, detail="unreachable (ConnectError)")
UP = Readiness(ready=True, detail="ready")


class Reads:
    """Given answers to the watch's warehouse reads."""

    def __init__(
        self,
        *,
        counts: dict[datetime, int] | None = None,
        newest_event: datetime | None = None,
        newest_scored: datetime | None = None,
    ) -> None:
        self.counts = counts or {}
        self.newest_event = newest_event
        self.newest_scored = newest_scored
        self.asked: list[tuple[datetime, datetime]] = []

    def alert_count(self, start: datetime, end: datetime) -> int:
        """The count given for the window's start."""
        self.asked.append((start, end))
        return self.counts.get(start, 0)

    def newest_event_time(self) -> datetime | None:
        """The given newest event time."""
        return self.newest_event

    def newest_scored_at(self) -> datetime | None:
        """The given newest scoring time."""
        return self.newest_scored


def test_the_last_full_hour_is_the_one_before_the_newest_events_hour() -> None:
    """An event at 12:40 makes 11:00-12:00 the last full hour."""
    assert datetime(2026, 3, 1, 11) == last_full_hour(datetime(2026, 3, 1, 12, 40, 5))


def test_a_surge_alerts_above_the_ratio_and_the_minimum_count() -> None:
    """30 against 9 (3.3 times) alerts; its key names the hour; the text gives both counts."""
    event = surge_event(hour_start=T0, count=30, week_before=9, ratio=3.0, min_count=20)
    assert event is not None
    assert "surge" == event.kind
    assert "surge:2026-03-01T12:00:00" == event.dedup_key
    assert "30 reviews and declines in the hour from 2026-03-01 12:00 UTC against 9" in event.text
    assert {"hour_start": "2026-03-01T12:00:00", "count": 30, "week_before": 9} == {
        key: event.payload[key] for key in ("hour_start", "count", "week_before")
    }


def test_no_surge_at_the_ratio_or_below_the_minimum_count() -> None:
    """Exactly 3 times is not above 3; 19 against none is under the minimum of 20."""
    assert None is surge_event(hour_start=T0, count=30, week_before=10, ratio=3.0, min_count=20)
    assert None is surge_event(hour_start=T0, count=19, week_before=0, ratio=3.0, min_count=20)


def test_a_surge_against_an_empty_week_before_alerts() -> None:
    """20 against none is a surge, in words without a ratio."""
    event = surge_event(hour_start=T0, count=20, week_before=0, ratio=3.0, min_count=20)
    assert event is not None
    assert "against" not in event.text
    assert "and 0 in the same hour a week earlier (none;" in event.text


def test_the_watch_compares_the_last_full_hour_with_the_same_hour_a_week_earlier() -> None:
    """It reads [11:00, 12:00) and the same hour seven days before, and alerts on their ratio."""
    hour = datetime(2026, 3, 1, 11)
    week = hour - timedelta(days=7)
    reads = Reads(counts={hour: 40, week: 5}, newest_event=datetime(2026, 3, 1, 12, 30))
    events = AlertWatch(reads).check(T0)
    assert [(hour, hour + timedelta(hours=1)), (week, week + timedelta(hours=1))] == reads.asked
    assert ["surge:2026-03-01T11:00:00"] == [event.dedup_key for event in events]


def test_an_empty_warehouse_raises_no_alert() -> None:
    """No transaction: no surge and no lag, even with a lag limit."""
    watch = AlertWatch(Reads(), ingest_lag=timedelta(seconds=60))
    assert [] == watch.check(T0)


def test_ingestion_lag_alerts_past_the_limit_once_per_episode() -> None:
    """Ten minutes without a score with a five-minute limit alerts; the key is the newest
    scoring time, so the same stall later has the same key and a new stall another."""
    limit = timedelta(minutes=5)
    newest = T0 - timedelta(minutes=10)
    first = ingest_lag_event(newest_scored_at=newest, now=T0, limit=limit)
    later = ingest_lag_event(newest_scored_at=newest, now=T0 + timedelta(hours=1), limit=limit)
    other = ingest_lag_event(
        newest_scored_at=T0 + timedelta(minutes=30), now=T0 + timedelta(hours=1), limit=limit
    )
    assert first is not None and later is not None and other is not None
    assert "ingest_lag:2026-03-01T11:50:00" == first.dedup_key == later.dedup_key
    assert first.dedup_key != other.dedup_key
    assert "Ingestion lag: nothing scored for 10 minutes" == first.subject
    assert 600.0 == first.payload["lag_seconds"]


def test_no_lag_alert_within_the_limit_or_when_off() -> None:
    """Four minutes within a five-minute limit is quiet; without a limit nothing is checked."""
    newest = T0 - timedelta(minutes=4)
    assert None is ingest_lag_event(newest_scored_at=newest, now=T0, limit=timedelta(minutes=5))
    reads = Reads(newest_scored=T0 - timedelta(days=1))
    assert [] == AlertWatch(reads).check(T0)


def test_the_second_failed_readiness_probe_in_a_row_alerts_once_per_episode() -> None:
    """Down, down, down: one alert at the second; up then down twice: a new episode's key."""
    watch = ReadinessWatch("http://svc:8000", console_url="http://console")
    seen: list[AlertEvent | None] = [
        watch.update(DOWN, T0 + timedelta(seconds=second)) for second in range(3)
    ]
    assert [None, "service:http://svc:8000:2026-03-01T12:00:00", None] == [
        event and event.dedup_key for event in seen
    ]
    assert seen[1] is not None
    assert "unreachable (ConnectError)" in seen[1].text
    assert "http://console/models" == seen[1].link
    assert None is watch.update(UP, T0 + timedelta(minutes=1))
    assert 0 == watch.failures
    again = [watch.update(DOWN, T0 + timedelta(minutes=m)) for m in (2, 3)]
    assert again[1] is not None
    assert "service:http://svc:8000:2026-03-01T12:02:00" == again[1].dedup_key


def test_one_failed_probe_between_successes_is_no_alert() -> None:
    """A restart seen once is not an outage."""
    watch = ReadinessWatch("http://svc:8000")
    results = [watch.update(probe, T0) for probe in (UP, DOWN, UP, DOWN, UP)]
    assert [None] * 5 == results


def test_the_watch_probes_the_service_each_check_and_survives_a_broken_check() -> None:
    """The probe is called with the service URL; a read that raises leaves the others working."""

    class Broken(Reads):
        def newest_event_time(self) -> datetime | None:
            raise RuntimeError("warehouse away")

    probed: list[str] = []

    def probe(url: str) -> Readiness:
        probed.append(url)
        return DOWN

    watch = AlertWatch(Broken(), service_url="http://svc:8000", probe=probe)
    assert [] == watch.check(T0)
    assert ["service"] == [event.kind for event in watch.check(T0)]
    assert ["http://svc:8000", "http://svc:8000"] == probed
