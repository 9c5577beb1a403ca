"""The demo's plan, its simulated drift and its phase summary (the loop itself: tests/e2e)."""

from datetime import datetime

import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.demo import DemoPlan, phases
from fraudops.simulate import simulate
from fraudops.storage import LifecycleEvent


def test_the_plan_brings_card_testing_only_from_the_drift_day() -> None:
    """Before the drift no card testing at all; after it, card testing is a real share of fraud."""
    plan = DemoPlan(cards=300, days=30, history_days=14, drift_day=20, trials=0)
    frame = simulate(plan.simulation())
    day = (
        pd.to_datetime(frame["trans_date_trans_time"])
        - pd.to_datetime(frame["trans_date_trans_time"]).min().normalize()
    ).dt.days
    testing = frame["fraud_scenario"] == "card_testing"
    assert not testing[day < plan.drift_day].any()
    assert (
        testing[day >= plan.drift_day].sum()
        > 0.3 * frame.loc[day >= plan.drift_day, "is_fraud"].sum()
    )


@pytest.mark.parametrize(
    ("history", "drift", "days"),
    [(10, 20, 42), (21, 21, 42), (21, 38, 42)],
)
def test_plans_without_room_for_the_loop_are_refused(history: int, drift: int, days: int) -> None:
    """Too little history, a drift before the stream, or under a week of stream after it."""
    with pytest.raises(ValueError, match="the demo needs"):
        DemoPlan(history_days=history, drift_day=drift, days=days)


def test_the_demo_command_refuses_a_bad_plan_in_one_line() -> None:
    """A bad option is one error line and exit code 2, before anything runs."""
    result = CliRunner().invoke(app, ["demo", "--seconds-per-day", "0"])
    assert result.exit_code == 2
    assert "seconds_per_day" in result.output


def test_phases_split_the_timeline_at_the_drift_and_the_promotion() -> None:
    """Days before the drift, between drift and promotion, and after, with their means."""
    timeline = pd.DataFrame(
        {
            "date": pd.date_range("2024-02-01", periods=6, freq="D"),
            "transactions": [100] * 6,
            "frauds": [2, 2, 4, 4, 3, 3],
            "average_precision": [0.8, 0.6, 0.3, 0.4, 0.9, 0.7],
            "f1": [0.7, 0.5, 0.2, 0.3, 0.8, 0.6],
            "recall": [0.6, 0.6, 0.2, 0.2, 0.8, 0.8],
        }
    )
    promoted = LifecycleEvent(
        kind="promote",
        trigger="compare",
        actor="demo",
        verdict="promoted",
        as_of=datetime(2024, 2, 5, 0, 0),
    )
    table = phases(timeline, datetime(2024, 2, 3), [promoted])
    assert list(table["phase"]) == [
        "before the drift",
        "drift, old champion",
        "after the promotion",
    ]
    assert list(table["days"]) == [2, 2, 2]
    assert list(table["frauds"]) == [4, 8, 6]
    assert table["average_precision"].round(3).tolist() == [0.7, 0.35, 0.8]
