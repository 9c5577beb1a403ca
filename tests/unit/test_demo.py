"""The main job simulates a drifting history, validates it and profiles it week by week."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.config import get_settings
from fraudops.demo import DemoPlan, run_demo, weekly_profile


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
    plan = DemoPlan(days=28, cards=600, drift_day=14, amount_factor=1.5)
    result = run_demo(plan, home=tmp_path)
    assert tmp_path / "demo" / "transactions.parquet" == result.path
    assert result.report.ok
    assert result.summary.rows == result.report.rows_accepted
    before = result.weekly.loc[[0, 1]]
    after = result.weekly.loc[[2, 3]]
    ratio = after["mean_amount"].mean() / before["mean_amount"].mean()
    assert 1.35 < ratio < 1.65
    assert after["fraud_rate"].mean() > before["fraud_rate"].mean()


def test_demo_command_prints_the_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fraudops demo` writes under FRAUDOPS_HOME and prints the validation and the drift week."""
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["demo", "--days", "21", "--cards", "300", "--drift-day", "7"]
        )
    finally:
        get_settings.cache_clear()
    assert 0 == result.exit_code, result.output
    assert "VALID" in result.stdout
    assert "<- drift starts" in result.stdout
    assert (tmp_path / "demo" / "transactions.parquet").is_file()


def test_demo_command_refuses_a_drift_after_the_end() -> None:
    """A drift day beyond the simulated days is a one-line error with exit code 2."""
    result = CliRunner().invoke(app, ["demo", "--days", "10", "--drift-day", "30"])
    assert 2 == result.exit_code
    assert result.stderr.startswith("error: ")
