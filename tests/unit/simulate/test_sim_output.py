"""Simulated files: Parquet and CSV round trips, FDH columns, and loading under each profile."""

from pathlib import Path

import pandas as pd
import pytest

from fraudops.data.profiles import FDH, SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.simulate import OutputPathError, output_kind, to_fdh, write_transactions
from fraudops.simulate.io import FDH_COLUMNS


def test_parquet_round_trip_keeps_every_value(small_frame: pd.DataFrame, tmp_path: Path) -> None:
    """A Parquet file reads back as the same frame, with every required Sparkov column."""
    path = write_transactions(small_frame, tmp_path / "nested" / "sim.parquet")
    back = pd.read_parquet(path)
    assert set(SPARKOV.required_columns) <= set(back.columns)
    pd.testing.assert_frame_equal(small_frame, back)


def test_gzip_csv_round_trip_keeps_ids_and_amounts(
    small_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """A .csv.gz file is gzip-compressed CSV whose ids and amounts read back unchanged."""
    path = write_transactions(small_frame, tmp_path / "sim.csv.gz")
    assert b"\x1f\x8b" == path.read_bytes()[:2]
    back = pd.read_csv(path, dtype={"cc_num": str, "trans_num": str}, keep_default_na=False)
    assert list(small_frame.columns) == list(back.columns)
    assert small_frame["cc_num"].tolist() == back["cc_num"].tolist()
    assert small_frame["trans_num"].tolist() == back["trans_num"].tolist()
    assert small_frame["amt"].tolist() == back["amt"].tolist()


@pytest.mark.parametrize(
    ("name", "kind"), [("a.parquet", "parquet"), ("a.csv", "csv"), ("a.CSV.GZ", "csv")]
)
def test_output_kind_follows_the_extension(name: str, kind: str) -> None:
    """The file name's extension picks Parquet or CSV."""
    assert kind == output_kind(Path(name))


@pytest.mark.parametrize("name", ["a.json", "a.gz", "a"])
def test_unknown_extension_is_refused(name: str, tmp_path: Path, small_frame: pd.DataFrame) -> None:
    """Writing to an unsupported extension fails with a reason and writes nothing."""
    with pytest.raises(OutputPathError, match=r"use a \.parquet, \.csv or \.csv\.gz"):
        write_transactions(small_frame, tmp_path / name)
    assert [] == list(tmp_path.iterdir())


def test_fdh_columns_ids_and_scenario_codes(small_frame: pd.DataFrame) -> None:
    """to_fdh gives the handbook's columns, integer ids per card and merchant, codes 0-3."""
    fdh = to_fdh(small_frame)
    assert list(FDH_COLUMNS) == list(fdh.columns)
    assert small_frame["cc_num"].nunique() == fdh["CUSTOMER_ID"].nunique()
    assert small_frame["merchant"].nunique() == fdh["TERMINAL_ID"].nunique()
    codes = {"": 0, "card_testing": 1, "compromised_merchant": 2, "stolen_credentials": 3}
    assert small_frame["fraud_scenario"].map(codes).tolist() == fdh["TX_FRAUD_SCENARIO"].tolist()
    assert small_frame["is_fraud"].tolist() == fdh["TX_FRAUD"].tolist()
    assert (fdh["TX_TIME_DAYS"] == fdh["TX_TIME_SECONDS"] // 86_400).all()
    assert (0, 19) == (fdh["TX_TIME_DAYS"].min(), fdh["TX_TIME_DAYS"].max())


def test_simulated_parquet_loads_valid_under_sparkov(
    small_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """The readers accept the simulator's Parquet under the sparkov profile, every row."""
    path = write_transactions(small_frame, tmp_path / "sim.parquet")
    loaded = load_transactions(path, SPARKOV)
    assert loaded.report.ok
    assert len(small_frame) == loaded.report.rows_accepted


@pytest.mark.parametrize("name", ["fdh.csv", "fdh.parquet"])
def test_simulated_fdh_file_loads_valid_under_fdh(
    small_frame: pd.DataFrame, tmp_path: Path, name: str
) -> None:
    """The readers accept the simulator's FDH-format CSV and Parquet under the fdh profile."""
    path = write_transactions(to_fdh(small_frame), tmp_path / name)
    loaded = load_transactions(path, FDH)
    assert loaded.report.ok
    assert len(small_frame) == loaded.report.rows_accepted
