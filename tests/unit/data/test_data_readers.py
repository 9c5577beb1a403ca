"""load_transactions reads CSV, gzip CSV and Parquet, and refuses or quarantines bad rows."""

from pathlib import Path

import pandas as pd
import pytest

from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import (
    DataFileError,
    default_quarantine_path,
    load_transactions,
    read_table,
    validate_file,
)
from fraudops.data.validation import DataValidationError


def test_real_sample_loads_valid(sample_path: Path) -> None:
    """The shared 9,999-row Sparkov sample is valid; its two index columns are dropped."""
    result = load_transactions(sample_path, SPARKOV)

    assert (9999, 9999, 0, True) == (
        result.report.rows_read,
        result.report.rows_accepted,
        result.report.rows_quarantined,
        result.report.ok,
    )
    assert () == result.report.issues
    assert 9999 == len(result.frame)
    assert "trans_date_trans_time" == result.frame.columns[0]
    first = result.frame.iloc[0]
    assert ("4377338765909719", 1104.91, 1) == (first["cc_num"], first["amt"], first["is_fraud"])
    assert pd.Timestamp("2019-01-15 22:24:12") == first["event_time"]
    assert "4477156602511939689" == result.frame["cc_num"].iloc[2]


def test_sample_index_columns_as_pandas_and_arrow_name_them(sample_path: Path) -> None:
    """The sample's index headers are '' and 'Unnamed: 0' (pandas: 'Unnamed: 0.1', 'Unnamed: 0')."""
    with_pandas = pd.read_csv(sample_path, nrows=1)

    assert ["Unnamed: 0.1", "Unnamed: 0"] == list(with_pandas.columns[:2])
    assert all(SPARKOV.is_index_column(c) for c in ["", *with_pandas.columns[:2]])
    assert "trans_date_trans_time" == read_table(sample_path, SPARKOV).columns[0]


def test_csv_keeps_id_digits_and_leading_zeros(tmp_path: Path, sparkov_frame: pd.DataFrame) -> None:
    """cc_num, zip and trans_num come back exactly as written, leading zeros included."""
    sparkov_frame.loc[0, ["cc_num", "zip", "trans_num"]] = ["0004111111111111", "00501", "000123"]
    path = tmp_path / "tx.csv"
    sparkov_frame.to_csv(path, index=False)

    frame = load_transactions(path, SPARKOV).frame

    assert ("0004111111111111", "00501", "000123") == tuple(
        frame.loc[0, ["cc_num", "zip", "trans_num"]]
    )


@pytest.mark.parametrize("name", ["tx.csv.gz", "tx.parquet"])
def test_csv_gzip_and_parquet_give_the_same_frame(
    tmp_path: Path, sparkov_typed_frame: pd.DataFrame, name: str
) -> None:
    """The same typed data written as CSV, gzip CSV or Parquet loads to identical frames."""
    csv_path = tmp_path / "tx.csv"
    sparkov_typed_frame.to_csv(csv_path, index=False)
    other = tmp_path / name
    if name.endswith(".parquet"):
        sparkov_typed_frame.to_parquet(other)
    else:
        sparkov_typed_frame.to_csv(other, index=False)

    from_csv = load_transactions(csv_path, SPARKOV).frame

    pd.testing.assert_frame_equal(from_csv, load_transactions(other, SPARKOV).frame)
    assert "2703186189652095" == from_csv["cc_num"].iloc[0]


def test_reject_mode_raises_with_the_report(tmp_path: Path, sparkov_frame: pd.DataFrame) -> None:
    """One negative amount refuses the file; the exception carries and prints the report."""
    sparkov_frame.loc[1, "amt"] = "-4"
    path = tmp_path / "tx.csv"
    sparkov_frame.to_csv(path, index=False)

    with pytest.raises(DataValidationError) as refused:
        load_transactions(path, SPARKOV)

    report = refused.value.report
    assert ("rejected", 3, 1, 0) == (
        report.outcome,
        report.rows_read,
        report.rows_invalid,
        report.rows_accepted,
    )
    assert str(report) == str(refused.value)
    assert f"{path} (profile sparkov): REJECTED" in str(refused.value)
    assert not (tmp_path / "tx.quarantine.csv").exists()


def test_quarantine_writes_exactly_the_bad_rows(
    tmp_path: Path, sparkov_frame: pd.DataFrame
) -> None:
    """Bad rows go to <stem>.quarantine.csv with their problems; the clean frame has the rest."""
    sparkov_frame.loc[0, "lat"] = "123"
    sparkov_frame.loc[2, "trans_date_trans_time"] = "soon"
    path = tmp_path / "tx.csv.gz"
    sparkov_frame.to_csv(path, index=False)

    result = load_transactions(path, SPARKOV, on_error="quarantine")

    side = pd.read_csv(tmp_path / "tx.quarantine.csv", dtype=str)
    assert ["_problems", *sparkov_frame.columns] == list(side.columns)
    assert [
        "lat: latitude outside [-90, 90]",
        "trans_date_trans_time: unparsable timestamp (expected ISO 8601 date-time)",
    ] == side["_problems"].tolist()
    assert [sparkov_frame.loc[0, "trans_num"], sparkov_frame.loc[2, "trans_num"]] == side[
        "trans_num"
    ].tolist()
    assert [sparkov_frame.loc[1, "trans_num"]] == result.frame["trans_num"].tolist()
    assert ("quarantined", 3, 1, 2, str(tmp_path / "tx.quarantine.csv")) == (
        result.report.outcome,
        result.report.rows_read,
        result.report.rows_accepted,
        result.report.rows_quarantined,
        result.report.quarantine_path,
    )


def test_quarantine_to_a_chosen_path(tmp_path: Path, sparkov_frame: pd.DataFrame) -> None:
    """An explicit quarantine path is used instead of the default beside the data."""
    sparkov_frame.loc[1, "is_fraud"] = "7"
    path = tmp_path / "tx.csv"
    sparkov_frame.to_csv(path, index=False)
    target = tmp_path / "bad" / "rows.csv"
    target.parent.mkdir()

    result = load_transactions(path, SPARKOV, on_error="quarantine", quarantine_path=target)

    assert ["is_fraud: label is not 0 or 1"] == pd.read_csv(target)["_problems"].tolist()
    assert 2 == len(result.frame)


def test_quarantine_cannot_save_a_file_missing_columns(
    tmp_path: Path, sparkov_frame: pd.DataFrame
) -> None:
    """Missing required columns refuse the file even in quarantine mode, writing nothing."""
    path = tmp_path / "tx.csv"
    sparkov_frame.drop(columns="amt").to_csv(path, index=False)

    with pytest.raises(DataValidationError, match="amt: required column missing"):
        load_transactions(path, SPARKOV, on_error="quarantine")

    assert not (tmp_path / "tx.quarantine.csv").exists()


def test_valid_file_in_quarantine_mode_writes_no_side_file(
    tmp_path: Path, sparkov_frame: pd.DataFrame
) -> None:
    """With nothing to set aside, quarantine mode loads everything and writes no file."""
    path = tmp_path / "tx.parquet"
    sparkov_frame.to_parquet(path)

    result = load_transactions(path, SPARKOV, on_error="quarantine")

    assert ("valid", 3, None) == (
        result.report.outcome,
        result.report.rows_accepted,
        result.report.quarantine_path,
    )
    assert not (tmp_path / "tx.quarantine.csv").exists()


def test_validate_file_returns_the_report_of_a_refused_file(
    tmp_path: Path, sparkov_frame: pd.DataFrame
) -> None:
    """validate_file gives the rejected report instead of raising."""
    sparkov_frame.loc[0, "cc_num"] = None
    path = tmp_path / "tx.csv"
    sparkov_frame.to_csv(path, index=False)

    report = validate_file(path, SPARKOV)

    assert ("rejected", ["cc_num"]) == (report.outcome, [i.column for i in report.errors])


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.csv", None, "no such file"),
        ("tx.json", "{}", "unsupported file type"),
        ("ragged.csv", "a,b\n1,2\n3,4,5\n", "Expected 2 columns, got 3"),
        ("empty.csv", "", "Empty CSV file"),
        ("broken.parquet", "not parquet", "cannot read"),
        ("broken.csv.gz", "not gzip", "cannot read"),
    ],
)
def test_unreadable_files_raise_one_line_errors(
    tmp_path: Path, name: str, content: str | None, reason: str
) -> None:
    """Files that cannot be read raise DataFileError naming the file and the reason on one line."""
    path = tmp_path / name
    if content is not None:
        path.write_text(content)

    with pytest.raises(DataFileError, match=reason) as failed:
        read_table(path, SPARKOV)

    assert str(failed.value).startswith(f"cannot read {path}: ")
    assert "\n" not in str(failed.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tx.csv", "tx.quarantine.csv"),
        ("tx.csv.gz", "tx.quarantine.csv"),
        ("tx.parquet", "tx.quarantine.csv"),
        ("march.2024.csv", "march.2024.quarantine.csv"),
    ],
)
def test_default_quarantine_path_sits_beside_the_data(name: str, expected: str) -> None:
    """The default quarantine file drops the data suffixes and lives in the same folder."""
    assert Path("data") / expected == default_quarantine_path(Path("data") / name)
