"""The daily report's arithmetic on reads given by hand (no warehouse)."""

from datetime import date, datetime, timedelta

import pytest

from fraudops.monitoring.daily import daily_report, label_wait
from fraudops.storage.reports import DayTotals, LabelledAlert, ServedModel

START = datetime(2024, 3, 10)
NOTHING = DayTotals(
    transactions=0,
    scored=0,
    scored_amount=0.0,
    reviews=0,
    review_amount=0.0,
    declines=0,
    decline_amount=0.0,
    frauds=0,
    fraud_amount=0.0,
)


def alert(hours: float, *, is_fraud: bool = True, source: str = "analyst") -> LabelledAlert:
    """A review at START labelled `hours` later."""
    return LabelledAlert(
        trans_num=f"t{hours}",
        event_time=START,
        scored_at=START,
        label_time=START + timedelta(hours=hours),
        source=source,
        is_fraud=is_fraud,
    )


class GivenReads:
    """Reads that answer what they were given and record the window they were asked for."""

    def __init__(self, totals: DayTotals, alerts: list[LabelledAlert]) -> None:
        self.totals = totals
        self.alerts = alerts
        self.windows: list[tuple[datetime, datetime]] = []

    def day_totals(self, start: datetime, end: datetime) -> DayTotals:
        """The given totals."""
        self.windows.append((start, end))
        return self.totals

    def labelled_alerts(self, start: datetime, end: datetime) -> list[LabelledAlert]:
        """The given alerts."""
        self.windows.append((start, end))
        return self.alerts

    def served_models(self, start: datetime, end: datetime) -> list[ServedModel]:
        """No model."""
        self.windows.append((start, end))
        return []


def test_one_labelled_alert_is_its_own_median_and_p90() -> None:
    """With a single wait, both figures are that wait."""
    wait = label_wait([alert(5.0)])
    assert (1, 5.0, 5.0) == (wait.labelled, wait.median_hours, wait.p90_hours)


def test_no_labelled_alert_has_no_wait() -> None:
    """Nothing labelled: no median, no p90."""
    wait = label_wait([])
    assert (0, None, None) == (wait.labelled, wait.median_hours, wait.p90_hours)


def test_the_report_asks_for_the_whole_calendar_day() -> None:
    """Every read covers [D 00:00, D+1 00:00)."""
    reads = GivenReads(NOTHING, [])
    daily_report(reads, date(2024, 3, 10))
    assert [(START, START + timedelta(days=1))] * 3 == reads.windows


def test_precision_counts_frauds_among_labelled_alerts_by_source() -> None:
    """Three of four labelled alerts are fraud: 0.75, sources counted, most frequent first."""
    alerts = [
        alert(2.0, source="chargeback"),
        alert(3.0),
        alert(4.0, is_fraud=False, source="chargeback"),
        alert(5.0, source="chargeback"),
    ]
    report = daily_report(GivenReads(NOTHING, alerts), date(2024, 3, 10))
    assert 0.75 == report.precision.value
    assert {"chargeback": 3, "analyst": 1} == report.labelled_by_source
    assert ["chargeback", "analyst"] == list(report.to_dict()["alerts"]["labelled_by_source"])
    assert pytest.approx(3.5) == report.label_wait.median_hours
