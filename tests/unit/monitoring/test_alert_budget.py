"""The alert budget: served alerts per day against review capacity, as a figure and a trigger."""

import dataclasses
from datetime import date, datetime

import pytest
from rich.console import Console
from test_report_metrics import Runs, result, scrape, stored  # noqa: F401 - result: a fixture

from fraudops.monitoring.budget import AlertBudget, alert_budget, checked_days
from fraudops.monitoring.metrics import MonitorCollector
from fraudops.monitoring.monitor import MonitorResult, measure_alert_budget
from fraudops.monitoring.policy import REASONS, Policy, decide
from fraudops.monitoring.report import render_html, render_monitor
from fraudops.storage.console import DayAlerts

AS_OF = datetime(2024, 3, 10, 15, 0)


def budget(*counts: int, capacity: float = 100.0, tolerance: float = 0.2) -> AlertBudget:
    """A budget over consecutive days from 2024-03-01 with these alert counts."""
    return AlertBudget(
        capacity=capacity,
        tolerance=tolerance,
        required_days=3,
        days=tuple((date(2024, 3, 1 + i), count) for i, count in enumerate(counts)),
    )


def test_the_latest_days_over_the_limit_are_counted_in_a_row() -> None:
    """Over means above capacity x (1 + tolerance); the run ends at the first day within it."""
    assert 120.0 == budget().limit
    assert 3 == budget(50, 121, 130, 200).over_days
    assert 0 == budget(200, 200, 120).over_days  # 120 is at the limit, not over it
    assert 1 == budget(200, 90, 150).over_days
    assert 100.0 == budget(50, 150).alerts_per_day


@pytest.mark.parametrize(
    ("counts", "overrun"),
    [((121, 130, 200), True), ((500, 500, 119), False), ((500, 500), False)],
)
def test_the_budget_is_overrun_only_after_enough_days_in_a_row(
    counts: tuple[int, ...], overrun: bool
) -> None:
    """Three days in a row over the limit overrun it; one quiet day or too few days do not."""
    assert overrun == budget(*counts).overrun


def test_an_overrun_budget_triggers_retraining_and_a_kept_one_does_not() -> None:
    """alerts_over_capacity is a retraining reason, with the budget in the verdict's detail."""
    assert "alerts_over_capacity" in REASONS
    over = decide(
        policy=Policy(), as_of=AS_OF, performance=None, alert_budget=budget(150, 150, 150)
    )
    assert over.retrain
    assert ["alerts_over_capacity"] == over.reasons
    assert 3 == over.detail["alert_budget"]["over_days"]
    kept = decide(policy=Policy(), as_of=AS_OF, performance=None, alert_budget=budget(90, 100, 110))
    assert not kept.retrain
    assert None is decide(policy=Policy(), as_of=AS_OF, performance=None).detail["alert_budget"]


def test_the_checked_days_are_the_full_days_before_as_of_and_quiet_days_count_zero() -> None:
    """Three full days before the day of as_of; a day without alerts had none."""
    start, end = checked_days(AS_OF, 3)
    assert (datetime(2024, 3, 7), datetime(2024, 3, 10)) == (start, end)
    checked = alert_budget(
        capacity=10.0,
        alerts={date(2024, 3, 8): 30},
        start=start,
        end=end,
        tolerance=0.0,
        required_days=3,
    )
    assert [(date(2024, 3, 7), 0), (date(2024, 3, 8), 30), (date(2024, 3, 9), 0)] == list(
        checked.days
    )


class AlertDays:
    """The warehouse's champion alerts per day, and the window it was asked for."""

    def __init__(self, days: list[DayAlerts]) -> None:
        self.days = days
        self.asked: tuple[datetime, datetime] | None = None

    def alerts_per_day(self, start: datetime, end: datetime) -> list[DayAlerts]:
        """The stored days inside [start, end)."""
        self.asked = (start, end)
        return [d for d in self.days if start.date() <= d.day < end.date()]


def test_monitoring_counts_reviews_and_declines_of_the_policy_days() -> None:
    """Reviews and declines both count; the policy's tolerance and number of days apply."""
    warehouse = AlertDays(
        [
            DayAlerts(day=date(2024, 3, 8), reviews=100, declines=20),
            DayAlerts(day=date(2024, 3, 9), reviews=90, declines=40),
            DayAlerts(day=date(2024, 3, 10), reviews=999, declines=0),  # the day of as_of
        ]
    )
    policy = Policy(alert_budget_days=2, alert_budget_tolerance=0.1)
    measured = measure_alert_budget(
        warehouse,  # type: ignore[arg-type]
        capacity=100.0,
        policy=policy,
        as_of=AS_OF,
    )
    assert (datetime(2024, 3, 8), datetime(2024, 3, 10)) == warehouse.asked
    assert [120, 130] == [count for _, count in measured.days]
    assert pytest.approx(110.0) == measured.limit
    assert (2, True) == (measured.over_days, measured.overrun)


def test_the_budget_is_a_prometheus_figure_and_in_both_reports(
    result: MonitorResult,  # noqa: F811 - the fixture imported above
) -> None:
    """Alerts per day, capacity and days over are gauges; the reports show the figure."""
    checked = dataclasses.replace(result, alert_budget=budget(130, 150, 170))
    samples = scrape(MonitorCollector(Runs([stored(checked)])))
    assert 150.0 == samples[("fraudops_monitor_alerts_per_day", ())]
    assert 100.0 == samples[("fraudops_monitor_review_capacity", ())]
    assert 3.0 == samples[("fraudops_monitor_alert_budget_over_days", ())]
    assert ("fraudops_monitor_alerts_per_day", ()) not in scrape(
        MonitorCollector(Runs([stored(result)]))
    )
    html = render_html(checked)
    assert "150.0 alerts per day against a capacity of 100.0" in html
    assert "not checked" in render_html(result)
    console = Console(width=200, record=True)
    console.print(render_monitor(checked))
    assert "alerts per day: 150.0 over the last 3 days" in console.export_text()
