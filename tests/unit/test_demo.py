"""The main job simulates a drifting history, validates it and profiles it week by week."""

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.config import get_settings
from fraudops.demo import DemoPlan, run_demo, weekly_profile
from fraudops.registry import InMemoryRegistry


def test_weekly_profile_counts_rates_and_means() -> None:
    """Weeks start at the first day's midnight; each gets its count, fraud rate and mean amount."""
    frame = pd.DataFrame(
        {
            "event_time": pd.to_datetime(
                ["2024-01-01 10:00", "2024-01-07 23:00", "2024-01-08 00:30", "2024-01-09 12:00"]
            ),
            "is_fraud": [0, 1, 0, 0],
            "amt": [10.0, 30.0, 5.0, 15.0],
        }
    )
    expected = pd.DataFrame(
        {"transactions": [2, 2], "fraud_rate": [0.5, 0.0], "mean_amount": [20.0, 10.0]},
        index=pd.Index([0, 1], name="week"),
    )
    pd.testing.assert_frame_equal(expected, weekly_profile(frame))


def test_demo_drift_raises_amounts_and_fraud_after_its_day(tmp_path: Path) -> None:
    """After the drift day the mean amount rises by about the factor and fraud is more common."""
    plan = DemoPlan(days=35, cards=600, drift_day=14, amount_factor=1.5, trials=0)
    result = run_demo(plan, home=tmp_path, registry=InMemoryRegistry())
    assert tmp_path / "demo" / "transactions.parquet" == result.path
    assert result.report.ok
    assert result.summary.rows == result.report.rows_accepted
    before = result.weekly.loc[[0, 1]]
    after = result.weekly.loc[[2, 3]]
    ratio = after["mean_amount"].mean() / before["mean_amount"].mean()
    assert 1.35 < ratio < 1.65
    assert after["fraud_rate"].mean() > before["fraud_rate"].mean()


def test_demo_backtests_the_last_week_and_registers_a_champion(tmp_path: Path) -> None:
    """The demo judges the recipe on its last simulated week and registers the champion."""
    registry = InMemoryRegistry()
    plan = DemoPlan(days=35, cards=800, drift_day=21, trials=0)
    result = run_demo(plan, home=tmp_path, registry=registry)
    report = json.loads(result.backtest_report.read_text())
    assert "2024-01-29T00:00:00" == report["test"]["start"]
    assert result.backtest.average_precision > 10 * result.summary.fraud_rate
    assert ("champion", 1) == (result.registered.alias, result.registered.version)
    assert 1 == registry.resolve("champion").version
    assert result.training_report.is_file()


def test_demo_command_registers_champion_then_challenger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fraudops demo` writes under FRAUDOPS_HOME; a second run registers a challenger."""
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        args = ["demo", "--days", "35", "--cards", "600", "--drift-day", "14", "--trials", "0"]
        first = CliRunner().invoke(app, args)
        second = CliRunner().invoke(app, args)
    finally:
        get_settings.cache_clear()
    assert 0 == first.exit_code, first.output
    assert "VALID" in first.stdout
    assert "<- drift starts" in first.stdout
    assert "registered    fraud-detector version 1 as champion" in first.stdout
    assert "registered    fraud-detector version 2 as challenger" in second.stdout
    assert (tmp_path / "demo" / "transactions.parquet").is_file()
    assert (tmp_path / "mlflow.db").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "40", "--drift-day", "50"], "error: "),
        (["--days", "20"], "error: the demo needs at least 35 days"),
    ],
)
def test_demo_command_refuses_impossible_plans(args: list[str], message: str) -> None:
    """A drift after the end or too short a history is one line on stderr with exit code 2."""
    result = CliRunner().invoke(app, ["demo", *args])
    assert 2 == result.exit_code
    assert result.stderr.startswith(message)
