"""`fraudops simulate`: writes the requested file and refuses bad options in one line."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudops.cli import app

SMALL = ["simulate", "--days", "5", "--cards", "120", "--seed", "3"]


def test_writes_parquet_and_prints_a_summary(tmp_path: Path) -> None:
    """--out x.parquet writes Parquet and reports its row count, fraud and the file."""
    out = tmp_path / "sim.parquet"
    result = CliRunner().invoke(app, [*SMALL, "--out", str(out)])
    assert 0 == result.exit_code, result.output
    frame = pd.read_parquet(out)
    assert f"transactions  {len(frame):,}" in result.stdout
    assert "card_testing" in result.stdout
    assert str(out) in result.stdout


def test_writes_gzip_csv_with_drift(tmp_path: Path) -> None:
    """--out x.csv.gz writes gzip CSV; repeated --drift options all apply."""
    out = tmp_path / "sim.csv.gz"
    drift = ["--drift", "amount@2:factor=2", "--drift", "scenario@1:name=card_testing,rate=0.05"]
    result = CliRunner().invoke(app, [*SMALL, "--out", str(out), *drift])
    assert 0 == result.exit_code, result.output
    frame = pd.read_csv(out, keep_default_na=False)
    assert frame["is_fraud"].mean() > 0.03


def test_writes_fdh_columns(tmp_path: Path) -> None:
    """--format fdh writes the Fraud Detection Handbook columns."""
    out = tmp_path / "fdh.parquet"
    result = CliRunner().invoke(app, [*SMALL, "--out", str(out), "--format", "fdh"])
    assert 0 == result.exit_code, result.output
    assert "TX_FRAUD_SCENARIO" in pd.read_parquet(out).columns


def test_same_seed_writes_the_same_file_content(tmp_path: Path) -> None:
    """Two runs with one seed write equal frames."""
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for out in (first, second):
        assert 0 == CliRunner().invoke(app, [*SMALL, "--out", str(out)]).exit_code
    pd.testing.assert_frame_equal(pd.read_parquet(first), pd.read_parquet(second))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--drift", "amount@2:factor=x"], "error: drift 'amount@2:factor=x': factor='x' is not"),
        (["--drift", "amount@9:factor=2"], "error: drift amount@9:factor=2: day 9 is outside"),
        (["--start", "2024-02-30"], "error: --start '2024-02-30' is not a date"),
        (["--format", "xml"], "error: --format must be sparkov or fdh"),
        (["--fraud-rate", "0.7"], "error: fraud rate must be between 0 and 0.5"),
        (["--scenario-mix", "phishing=1"], "error: scenario mix 'phishing=1'"),
    ],
)
def test_bad_options_fail_in_one_line_with_exit_2(
    tmp_path: Path, options: list[str], message: str
) -> None:
    """A bad option prints one 'error:' line naming the problem, exits 2, writes nothing."""
    out = tmp_path / "sim.parquet"
    result = CliRunner().invoke(app, [*SMALL, "--out", str(out), *options])
    assert 2 == result.exit_code
    assert result.stderr.startswith(message)
    assert 1 == len(result.stderr.strip().splitlines())
    assert "Traceback" not in result.output
    assert not out.exists()


def test_unknown_output_extension_fails_with_exit_2(tmp_path: Path) -> None:
    """An --out without a known extension is refused before simulating."""
    result = CliRunner().invoke(app, [*SMALL, "--out", str(tmp_path / "sim.xlsx")])
    assert 2 == result.exit_code
    assert "use a .parquet, .csv or .csv.gz file name" in result.stderr


def test_realistic_labels_write_label_times_and_count_them(tmp_path: Path) -> None:
    """--labels realistic adds label_time and reported_fraud and a labels line to the summary."""
    out = tmp_path / "sim.parquet"
    result = CliRunner().invoke(app, [*SMALL, "--out", str(out), "--labels", "realistic"])
    assert 0 == result.exit_code, result.output
    frame = pd.read_parquet(out)
    assert {"label_time", "reported_fraud"} <= set(frame.columns)
    assert "labels        reviewed" in result.stdout
    assert "chargebacks" in result.stdout


def test_fdh_format_refuses_label_times(tmp_path: Path) -> None:
    """FDH columns carry no label times: --labels realistic with --format fdh exits 2."""
    out = tmp_path / "fdh.parquet"
    args = [*SMALL, "--out", str(out), "--format", "fdh", "--labels", "realistic"]
    result = CliRunner().invoke(app, args)
    assert 2 == result.exit_code
    assert "needs --format sparkov" in result.output
