"""`fraudops validate` prints the report and exits 0 (valid), 1 (rejected) or 2 (cannot run)."""

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.config import get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def _settings_from_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each CLI test reads fresh settings whose home and profiles folder are its own."""
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FRAUDOPS_PROFILES_DIR", str(tmp_path / "profiles"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def bad_csv(tmp_path: Path, sparkov_frame: pd.DataFrame) -> Path:
    """A Sparkov CSV whose second row has a negative amount."""
    sparkov_frame.loc[1, "amt"] = "-9.99"
    path = tmp_path / "bad.csv"
    sparkov_frame.to_csv(path, index=False)
    return path


def test_valid_sample_exits_zero_with_a_table(sample_path: Path) -> None:
    """The real sample validates: exit 0 and a VALID headline with its row count."""
    result = runner.invoke(app, ["validate", "--data", str(sample_path), "--profile", "sparkov"])

    assert 0 == result.exit_code, result.output
    assert "(profile sparkov): VALID\n9999 rows read, 0 invalid" in result.stdout


def test_json_report_is_parseable(sample_path: Path) -> None:
    """With --json, stdout is exactly one JSON report."""
    args = ["validate", "--data", str(sample_path), "--profile", "sparkov", "--json"]

    result = runner.invoke(app, args)

    report = json.loads(result.stdout)
    assert (0, "valid", 9999, []) == (
        result.exit_code,
        report["outcome"],
        report["rows_accepted"],
        report["issues"],
    )


def test_bad_row_is_rejected_with_exit_one(bad_csv: Path) -> None:
    """A negative amount in reject mode exits 1 and reports the column, count and row."""
    args = ["validate", "--data", str(bad_csv), "--profile", "sparkov", "--json"]

    result = runner.invoke(app, args)

    report = json.loads(result.stdout)
    assert 1 == result.exit_code
    assert ("rejected", "amt", 1, [{"row": 2, "value": "-9.99"}]) == (
        report["outcome"],
        report["issues"][0]["column"],
        report["issues"][0]["rows"],
        report["issues"][0]["examples"],
    )


def test_rejection_table_names_the_problem(bad_csv: Path) -> None:
    """The human report of a rejected file shows the problem and the offending row."""
    result = runner.invoke(app, ["validate", "--data", str(bad_csv), "--profile", "sparkov"])

    assert 1 == result.exit_code
    assert "negative amount" in result.stdout
    assert "row 2: '-9.99'" in result.stdout


def test_quarantine_exits_zero_and_writes_the_side_file(bad_csv: Path, tmp_path: Path) -> None:
    """In quarantine mode the bad row goes to the chosen file and the command succeeds."""
    target = tmp_path / "q.csv"
    args = ["validate", "--data", str(bad_csv), "--profile", "sparkov", "--on-error"]
    args += ["quarantine", "--quarantine-out", str(target), "--json"]

    result = runner.invoke(app, args)

    assert (0, "quarantined", 2, 1) == (
        result.exit_code,
        json.loads(result.stdout)["outcome"],
        json.loads(result.stdout)["rows_accepted"],
        len(pd.read_csv(target)),
    )


def test_user_profile_is_found_in_the_settings_folder(tmp_path: Path) -> None:
    """--profile NAME finds NAME.toml in FRAUDOPS_PROFILES_DIR."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "mini.toml").write_text(
        'amount = "amount"\n[[timestamps]]\ncolumn = "ts"\nunit = "unix_s"\n'
    )
    data = tmp_path / "mini.csv"
    data.write_text("ts,amount\n1700000000,5.0\n")

    result = runner.invoke(app, ["validate", "--data", str(data), "--profile", "mini", "--json"])

    assert (0, "mini", 1) == (
        result.exit_code,
        json.loads(result.stdout)["profile"],
        json.loads(result.stdout)["rows_accepted"],
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{sample}", "--profile", "nosuch"], "error: unknown profile 'nosuch'"),
        (["--data", "{tmp}/none.csv", "--profile", "sparkov"], "error: cannot read"),
    ],
)
def test_cannot_run_exits_two_with_one_line(
    sample_path: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    """A bad profile name or an unreadable file exits 2 with one error line and no traceback."""
    filled = [a.format(sample=sample_path, tmp=tmp_path) for a in args]

    result = runner.invoke(app, ["validate", *filled])

    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert 2 == result.exit_code
    assert 1 == len(error_lines)
    assert error_lines[0].startswith(message)
    assert "Traceback" not in result.output
    assert "" == result.stdout


def test_quarantine_out_needs_quarantine_mode(bad_csv: Path, tmp_path: Path) -> None:
    """--quarantine-out without --on-error quarantine is a usage error (exit 2)."""
    args = ["validate", "--data", str(bad_csv), "--profile", "sparkov"]

    result = runner.invoke(app, [*args, "--quarantine-out", str(tmp_path / "q.csv")])

    assert 2 == result.exit_code
    assert "needs --on-error quarantine" in result.output
