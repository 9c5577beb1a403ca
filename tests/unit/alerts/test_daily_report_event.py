"""The daily report as an alert: its dedup key per day, its plain-text figures, its link."""

from datetime import date, datetime

from fraudops.alerts.daily import DailyReportJob
from fraudops.alerts.events import daily_report_event
from fraudops.monitoring.daily import DailyReport, daily_report
from fraudops.storage.reports import DayTotals, LabelledAlert, ServedModel

DAY = date(2024, 3, 10)
TOTALS = DayTotals(
    transactions=1200,
    scored=1200,
    scored_amount=84_321.5,
    reviews=14,
    review_amount=2_100.0,
    declines=6,
    decline_amount=4_870.25,
    frauds=5,
    fraud_amount=4_120.0,
)
ALERT = LabelledAlert(
    trans_num="t1",
    event_time=datetime(2024, 3, 10, 5),
    scored_at=datetime(2024, 3, 10, 5),
    label_time=datetime(2024, 3, 10, 7),
    source="analyst",
    is_fraud=True,
)
MODEL = ServedModel(
    model_name="fraud-detector",
    model_version="4",
    scored=1200,
    first_scored_at=datetime(2024, 3, 10, 0, 0, 5),
    last_scored_at=datetime(2024, 3, 10, 23, 59, 1),
)


class DayReads:
    """The warehouse reads of one day given by hand."""

    def __init__(self, totals: DayTotals) -> None:
        self.totals = totals
        self.windows: list[datetime] = []

    def day_totals(self, start: datetime, _end: datetime) -> DayTotals:
        """The given totals."""
        self.windows.append(start)
        return self.totals

    def labelled_alerts(self, _start: datetime, _end: datetime) -> list[LabelledAlert]:
        """One fraud labelled by an analyst two hours after the event."""
        return [ALERT]

    def served_models(self, _start: datetime, _end: datetime) -> list[ServedModel]:
        """Version 4."""
        return [MODEL]


def report_of(totals: DayTotals = TOTALS) -> DailyReport:
    """The report of DAY on the given reads."""
    return daily_report(DayReads(totals), DAY)


def test_the_daily_report_alert_carries_the_figures_and_the_console_link() -> None:
    """Subject and text give the day's figures; the link is the console's daily report page."""
    event = daily_report_event(report_of(), console_url="http://console:8050/")
    assert "daily_report" == event.kind
    assert "daily_report:2024-03-10" == event.dedup_key
    assert (
        "Daily operations report 2024-03-10: 1,200 scored, 6 declines, 14 reviews, "
        "5 frauds confirmed"
    ) == event.subject
    lines = event.text.splitlines()
    assert "Transactions scored:  1,200 (84,321.50)" in lines
    assert "Declines:             6 (4,870.25)" in lines
    assert "Frauds confirmed:     5 (4,120.00)" in lines
    assert "Alerts labelled:      1 of 20 (analyst 1)" in lines
    assert "Hours alert to label: median 2.0, p90 2.0" in lines
    assert "- fraud-detector v4: 1,200 scored, 2024-03-10 00:00 to 2024-03-10 23:59" in lines
    assert "http://console:8050/reports/daily?date=2024-03-10" == event.link
    assert event.message.endswith("\nhttp://console:8050/reports/daily?date=2024-03-10")
    assert 6 == event.payload["declines"]["count"]


def test_without_a_console_url_the_alert_has_no_link() -> None:
    """No FRAUDOPS_CONSOLE_URL: no link, the text alone."""
    event = daily_report_event(report_of())
    assert (None, event.text) == (event.link, event.message)


def test_an_empty_day_says_so_in_one_line() -> None:
    """A day with nothing stored: one line saying so."""
    empty = DayTotals(**{**TOTALS.__dict__, "transactions": 0, "scored": 0})
    event = daily_report_event(report_of(empty))
    assert (
        "Daily operations report 2024-03-10 (event time, UTC): no transaction is stored."
    ) == event.text


class QueueingWarehouse(DayReads):
    """Day reads plus an outbox that keeps the dedup keys queued."""

    def __init__(self) -> None:
        super().__init__(TOTALS)
        self.keys: list[str] = []

    def enqueue_alerts(self, events: list[object]) -> int:
        """Queue what is new."""
        new = [e.dedup_key for e in events if e.dedup_key not in self.keys]  # type: ignore[attr-defined]
        self.keys += new
        return len(new)


def test_the_scheduler_job_reports_each_closed_day_once_and_catches_up() -> None:
    """Due at midnight: the day that closed; a run held up three midnights: all three."""
    warehouse = QueueingWarehouse()
    job = DailyReportJob(warehouse)  # type: ignore[arg-type]
    assert "daily report 2024-03-10" == job(datetime(2024, 3, 11))
    assert "daily report 2024-03-11, 2024-03-12, 2024-03-13" == job(datetime(2024, 3, 14))
    again = DailyReportJob(warehouse)  # type: ignore[arg-type]
    assert "daily report 2024-03-13 (queued before)" == again(datetime(2024, 3, 14))
    assert [f"daily_report:2024-03-1{d}" for d in range(4)] == warehouse.keys
    assert [datetime(2024, 3, 10 + d) for d in range(4)] == warehouse.windows[:4]
