"""`fraudops report daily`: the report of a stored day as JSON or a table, one-line errors."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.config import get_settings
from fraudops.storage import Warehouse
from warehouse_fill import store_day


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A home of the test's own: its SQLite warehouse holds the hand-made day."""
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path))
    monkeypatch.delenv("FRAUDOPS_DATABASE_URL", raising=False)
    monkeypatch.delenv("FRAUDOPS_CARD_HASH_KEY", raising=False)
    get_settings.cache_clear()
    warehouse = Warehouse.from_settings(get_settings())
    warehouse.migrate()
    store_day(warehouse)
    warehouse.dispose()
    yield
    get_settings.cache_clear()


def test_json_report_of_a_stored_day() -> None:
    """--json prints one document with the day's figures."""
    result = CliRunner().invoke(app, ["report", "daily", "--date", "2024-03-10", "--json"])
    assert 0 == result.exit_code, result.output
    document = json.loads(result.output.strip().splitlines()[-1])
    assert "2024-03-10" == document["day"]
    assert {"count": 7, "amount": 760.0} == document["scored"]
    assert {"count": 2, "amount": 320.0} == document["declines"]
    assert 0.5 == document["alerts"]["precision"]["value"]
    assert ["3", "4"] == [m["model_version"] for m in document["models"]]


def test_readable_report_of_a_stored_day() -> None:
    """Without --json: the table, with the versions in service."""
    result = CliRunner().invoke(app, ["report", "daily", "--date", "2024-03-10"])
    assert 0 == result.exit_code, result.output
    assert "Daily operations report 2024-03-10" in result.output
    assert "transactions scored" in result.output
    assert "fraud-detector" in result.output


def test_a_day_without_data_says_so() -> None:
    """A day with nothing stored: exit 0 and a sentence saying so."""
    result = CliRunner().invoke(app, ["report", "daily", "--date", "2025-01-01"])
    assert 0 == result.exit_code, result.output
    assert "No transaction is stored for 2025-01-01." in result.output


@pytest.mark.parametrize("text", ["2024-13-01", "yesterday", "2024-03-10T00:00:00", ""])
def test_a_bad_date_is_one_line_and_exit_2(text: str) -> None:
    """Not a YYYY-MM-DD day: one error line, exit code 2, no traceback."""
    result = CliRunner().invoke(app, ["report", "daily", "--date", text])
    assert 2 == result.exit_code
    assert [f"error: --date {text!r} is not a day (YYYY-MM-DD)"] == result.output.splitlines()


def test_the_last_day_a_date_can_hold_is_refused_in_one_line() -> None:
    """9999-12-31 has no following midnight to end the report: exit 2, not an OverflowError."""
    result = CliRunner().invoke(app, ["report", "daily", "--date", "9999-12-31"])
    assert 2 == result.exit_code
    assert "error: --date '9999-12-31' is the last day a date can hold" in result.output
    assert "Traceback" not in result.output
