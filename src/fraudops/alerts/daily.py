"""The daily operations report by e-mail and webhook, once per day, through the alert outbox.

The report of day D (monitoring.daily) becomes one outbox row with the dedup key
`daily_report:D`, so whoever asks first (the scheduler of `fraudops up`, the Airflow DAG,
`fraudops report daily --send`) queues it and the others find it queued: it is sent once.
The sender delivers it like any alert, with retries; `send_daily_report` also delivers that
one row at once, for the command line and the DAG.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from fraudops.alerts.channels import Channel
from fraudops.alerts.events import daily_report_event
from fraudops.alerts.sender import deliver_pending
from fraudops.monitoring.daily import DailyReport, daily_report

if TYPE_CHECKING:
    from fraudops.storage.warehouse import Warehouse

log = structlog.get_logger(__name__)

DAY = timedelta(days=1)
# Days a late scheduler run still reports, when it was held up past several midnights.
CATCH_UP_DAYS = 7


@dataclass(frozen=True, kw_only=True)
class DailyReportDelivery:
    """Where the e-mail of one day's report stands."""

    report: DailyReport
    dedup_key: str
    queued: bool  # False: that day's report was in the outbox already
    sent_now: bool  # delivered by this call (else before it, or not yet)
    delivered_at: datetime | None
    attempts: int
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "dedup_key": self.dedup_key,
            "queued": self.queued,
            "sent_now": self.sent_now,
            "delivered": self.delivered_at is not None,
            "delivered_at": None if self.delivered_at is None else self.delivered_at.isoformat(),
            "attempts": self.attempts,
            "error": self.error,
        }


def queue_daily_report(
    warehouse: "Warehouse", day: date, *, console_url: str | None = None
) -> tuple[DailyReport, str, bool]:
    """The report of `day` into the outbox unless it is there; the report, its dedup key and
    whether it was queued now."""
    report = daily_report(warehouse, day)
    event = daily_report_event(report, console_url=console_url)
    queued = warehouse.enqueue_alerts([event]) == 1
    log.info("daily report queued" if queued else "daily report already queued", day=str(day))
    return report, event.dedup_key, queued


def send_daily_report(
    warehouse: "Warehouse",
    day: date,
    channels: Sequence[Channel],
    *,
    console_url: str | None = None,
    now: datetime | None = None,
) -> DailyReportDelivery:
    """Queue the report of `day` and deliver it now, unless it was delivered before; a failed
    send stays in the outbox for the sender's retries."""
    report, key, queued = queue_daily_report(warehouse, day, console_url=console_url)
    round_ = deliver_pending(warehouse, channels, now, console_url=console_url, dedup_keys=[key])
    entry = warehouse.alert(key)
    if entry is None:  # pragma: no cover - queued just above, and rows are never deleted
        msg = f"the outbox lost {key}"
        raise RuntimeError(msg)
    return DailyReportDelivery(
        report=report,
        dedup_key=key,
        queued=queued,
        sent_now=round_.delivered > 0,
        delivered_at=entry.delivered_at,
        attempts=entry.attempts,
        error=round_.errors[0] if round_.errors else entry.last_error,
    )


class DailyReportJob:
    """The scheduler's job: when the clock passes midnight, queue the report of the day that
    closed (and of any day a held-up run skipped, at most CATCH_UP_DAYS back)."""

    def __init__(self, warehouse: "Warehouse", *, console_url: str | None = None) -> None:
        self._warehouse = warehouse
        self._console_url = console_url
        self._last_day: date | None = None

    def __call__(self, due: datetime) -> str:
        """Queue the reports of the days closed by `due`; what it did, in a line."""
        closed = (due - DAY).date()
        first = closed if self._last_day is None else self._last_day + DAY
        first = max(first, closed - timedelta(days=CATCH_UP_DAYS - 1))
        done = []
        day = first
        while day <= closed:
            _, _, queued = queue_daily_report(self._warehouse, day, console_url=self._console_url)
            done.append(f"{day.isoformat()}{'' if queued else ' (queued before)'}")
            self._last_day = day
            day += DAY
        return "daily report " + ", ".join(done) if done else "no day closed"
