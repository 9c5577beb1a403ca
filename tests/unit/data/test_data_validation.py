"""validate_frame finds each kind of bad input, counts it and shows where it is."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from fraudops.data.profiles import SPARKOV, ULB
from fraudops.data.validation import (
    IssueExample,
    ValidationIssue,
    check_frame,
    render_report,
    validate_frame,
)

BAD_CELLS = [
    # column, row (0-based), bad value, expected problem
    ("trans_date_trans_time", 1, "yesterday", "unparsable timestamp (expected ISO 8601 date-time)"),
    ("trans_date_trans_time", 1, None, "missing timestamp"),
    ("amt", 1, "12,50", "not a number"),
    ("amt", 1, "inf", "amount is not finite"),
    ("amt", 1, None, "missing amount"),
    ("amt", 1, "-5.00", "negative amount"),
    ("city_pop", 1, "many", "not a number"),
    ("lat", 1, "95.5", "latitude outside [-90, 90]"),
    ("merch_lat", 1, "-90.01", "latitude outside [-90, 90]"),
    ("long", 1, "-181", "longitude outside [-180, 180]"),
    ("merch_long", 1, "180.5", "longitude outside [-180, 180]"),
    ("is_fraud", 1, "2", "label is not 0 or 1"),
    ("is_fraud", 1, "yes", "not a number"),
    ("is_fraud", 1, None, "missing label"),
    ("cc_num", 1, None, "missing card id"),
    ("merchant", 1, "   ", "missing merchant id"),
    ("trans_num", 1, None, "missing transaction id"),
    ("dob", 1, "21/06/1978", "unparsable birth date"),
    ("dob", 1, "2019-01-02", "birth date after the transaction"),
]


@pytest.mark.parametrize(
    ("column", "row", "value", "problem"), BAD_CELLS, ids=[f"{c[0]}-{c[3]}" for c in BAD_CELLS]
)
def test_bad_cell_is_reported_with_its_row(
    sparkov_frame: pd.DataFrame, column: str, row: int, value: str | None, problem: str
) -> None:
    """One bad cell gives one error issue for its column, one row, and that row as the example."""
    sparkov_frame.loc[row, column] = value

    report, invalid = validate_frame(sparkov_frame, SPARKOV)

    expected = ValidationIssue(
        column=column,
        problem=problem,
        severity="error",
        rows=1,
        examples=(IssueExample(row=row + 1, value=value),),
    )
    assert (expected,) == report.issues
    assert [False, True, False] == invalid.tolist()
    assert (False, "invalid", 1, 2) == (
        report.ok,
        report.outcome,
        report.rows_invalid,
        report.rows_accepted,
    )


def test_duplicate_transaction_id_keeps_first(sparkov_frame: pd.DataFrame) -> None:
    """A repeated trans_num marks only the later row, with the id as the example."""
    sparkov_frame.loc[2, "trans_num"] = "0b242abb623afc578575680df30655b9"

    report, invalid = validate_frame(sparkov_frame, SPARKOV)

    expected = ValidationIssue(
        column="trans_num",
        problem="duplicate transaction id (first kept)",
        severity="error",
        rows=1,
        examples=(IssueExample(row=3, value="0b242abb623afc578575680df30655b9"),),
    )
    assert (expected,) == report.issues
    assert [False, False, True] == invalid.tolist()


def test_one_row_with_two_problems_counts_once(sparkov_frame: pd.DataFrame) -> None:
    """A row failing two checks appears in both issues but is one invalid row."""
    sparkov_frame.loc[0, "amt"] = "-1"
    sparkov_frame.loc[0, "lat"] = "100"

    report, invalid = validate_frame(sparkov_frame, SPARKOV)

    assert [("amt", 1), ("lat", 1)] == [(i.column, i.rows) for i in report.issues]
    assert (1, 2) == (report.rows_invalid, report.rows_accepted)
    assert [True, False, False] == invalid.tolist()


def test_examples_stop_at_five_but_rows_count_all(sparkov_frame: pd.DataFrame) -> None:
    """Seven negative amounts are counted as 7 with the first five rows as examples."""
    frame = pd.concat([sparkov_frame] * 3, ignore_index=True)
    frame["trans_num"] = [f"t{i}" for i in range(9)]
    frame.loc[1:7, "amt"] = "-1"

    report, _ = validate_frame(frame, SPARKOV)

    (issue,) = report.issues
    assert 7 == issue.rows
    assert [2, 3, 4, 5, 6] == [e.row for e in issue.examples]


def test_missing_required_columns_are_named_with_columns_found(
    sparkov_frame: pd.DataFrame,
) -> None:
    """Missing amt and cc_num is one whole-file error naming them and listing what the file has."""
    frame = sparkov_frame.drop(columns=["amt", "cc_num"])

    report, invalid = validate_frame(frame, SPARKOV)

    expected = ValidationIssue(
        column="cc_num, amt",
        problem=f"required columns missing; found: {', '.join(frame.columns)}",
        severity="error",
        rows=0,
        file_level=True,
    )
    assert (expected,) == report.issues
    assert [True, True, True] == invalid.tolist()
    assert (3, 0) == (report.rows_invalid, report.rows_accepted)


def test_no_timestamp_column_is_a_file_error(sparkov_frame: pd.DataFrame) -> None:
    """Without any of the profile's timestamp columns the whole frame is refused."""
    frame = sparkov_frame.drop(columns=["trans_date_trans_time", "unix_time"])

    report, _ = validate_frame(frame, SPARKOV)

    expected = ValidationIssue(
        column="trans_date_trans_time, current_time, unix_time",
        problem="no timestamp column; expected one of: trans_date_trans_time, current_time, "
        "unix_time",
        severity="error",
        rows=0,
        file_level=True,
    )
    assert (expected,) == report.issues


def test_extra_columns_warn_and_are_left_out(sparkov_frame: pd.DataFrame) -> None:
    """Unknown columns give one warning, keep the report ok, and stay out of the parsed frame."""
    sparkov_frame["note"] = "x"
    sparkov_frame["score"] = "0.3"

    check = check_frame(sparkov_frame, SPARKOV)
    report = check.report(outcome="valid")

    assert report.ok
    assert ("note, score", "2 columns not in profile 'sparkov'; left out", "warning") == (
        report.issues[0].column,
        report.issues[0].problem,
        report.issues[0].severity,
    )
    assert "note" not in check.clean_frame().columns


def test_index_columns_are_dropped_silently_from_the_report(sparkov_frame: pd.DataFrame) -> None:
    """pandas index columns ('' and 'Unnamed: 0') neither warn nor reach the parsed frame."""
    sparkov_frame.insert(0, "Unnamed: 0", ["7", "8", "9"])
    sparkov_frame.insert(0, "", ["7", "8", "9"])

    check = check_frame(sparkov_frame, SPARKOV)

    assert () == check.issues
    assert "trans_date_trans_time" == check.clean_frame().columns[0]


def test_label_column_optional_when_not_required(sparkov_frame: pd.DataFrame) -> None:
    """Without is_fraud the frame is invalid by default but fine when labels are not required."""
    unlabelled = sparkov_frame.drop(columns="is_fraud")

    required, _ = validate_frame(unlabelled, SPARKOV)
    optional, _ = validate_frame(unlabelled, SPARKOV, require_label=False)

    assert ["is_fraud"] == [i.column for i in required.errors]
    assert (True, ()) == (optional.ok, optional.issues)


def test_ulb_unparsable_component_is_reported() -> None:
    """A text value in a ULB V column is a 'not a number' error on that column and row."""
    frame = pd.DataFrame({"Time": ["0", "1"], "Amount": ["1.0", "2.0"], "Class": ["0", "1"]})
    for i in range(1, 29):
        frame[f"V{i}"] = ["0.5", "-0.5"]
    frame.loc[0, "V7"] = "n/a?"

    report, invalid = validate_frame(frame, ULB)

    assert [("V7", "not a number", 1, 1)] == [
        (i.column, i.problem, i.rows, i.examples[0].row) for i in report.issues
    ]
    assert [True, False] == invalid.tolist()


def test_far_out_timestamps_are_unparsable_not_a_crash(sparkov_frame: pd.DataFrame) -> None:
    """An epoch value beyond datetime64[ns] is reported as unparsable instead of overflowing."""
    frame = sparkov_frame.drop(columns="trans_date_trans_time")
    frame.loc[0, "unix_time"] = "1e15"

    report, _ = validate_frame(frame, SPARKOV)

    assert [("unix_time", "unparsable timestamp (expected epoch seconds)", "1e15")] == [
        (i.column, i.problem, i.examples[0].value) for i in report.issues
    ]


def test_invalid_mask_keeps_the_callers_index(sparkov_frame: pd.DataFrame) -> None:
    """The mask is aligned to the frame given, whatever its index."""
    sparkov_frame.index = pd.Index([10, 20, 30])
    sparkov_frame.loc[30, "amt"] = "-1"

    _, invalid = validate_frame(sparkov_frame, SPARKOV)

    assert {10: False, 20: False, 30: True} == invalid.to_dict()


def test_empty_frame_is_valid(sparkov_frame: pd.DataFrame) -> None:
    """A frame with the right columns and no rows is valid and parses to zero typed rows."""
    check = check_frame(sparkov_frame.iloc[0:0], SPARKOV)

    assert (0, ()) == (len(check.clean_frame()), check.issues)
    assert "datetime64[ns]" == check.clean_frame()["event_time"].dtype


def test_quarantine_frame_lists_problems_per_row(sparkov_frame: pd.DataFrame) -> None:
    """The quarantine frame holds only bad rows, as given, led by what is wrong with each."""
    sparkov_frame.loc[0, "amt"] = "-1"
    sparkov_frame.loc[0, "lat"] = "100"
    sparkov_frame.loc[2, "cc_num"] = None

    quarantine = check_frame(sparkov_frame, SPARKOV).quarantine_frame()

    assert ["_problems", *sparkov_frame.columns] == list(quarantine.columns)
    assert [
        "amt: negative amount; lat: latitude outside [-90, 90]",
        "cc_num: missing card id",
    ] == quarantine["_problems"].tolist()
    assert ["-1", "220.11"] == quarantine["amt"].tolist()


def test_report_to_dict_is_json_and_str_is_readable(sparkov_frame: pd.DataFrame) -> None:
    """The report survives a JSON round trip and its text names the column, problem and row."""
    sparkov_frame.loc[2, "amt"] = "-3"

    report, _ = validate_frame(sparkov_frame, SPARKOV)
    data = json.loads(json.dumps(report.to_dict()))

    assert {"column": "amt", "problem": "negative amount", "severity": "error", "rows": 1} == {
        k: data["issues"][0][k] for k in ("column", "problem", "severity", "rows")
    }
    assert [{"row": 3, "value": "-3"}] == data["issues"][0]["examples"]
    assert (3, 1, 2, False) == (
        data["rows_read"],
        data["rows_invalid"],
        data["rows_accepted"],
        data["ok"],
    )
    assert (
        "<frame> (profile sparkov): INVALID: 3 rows read, 1 invalid, 2 accepted, 0 quarantined\n"
        "  ERROR   amt: negative amount [1 row] e.g. row 3: '-3'"
    ) == str(report)


def test_many_rows_validate_without_row_loops(sparkov_frame: pd.DataFrame) -> None:
    """200,000 rows with a few bad ones validate quickly and find exactly those rows."""
    frame = sparkov_frame.sample(n=200_000, replace=True, random_state=1).reset_index(drop=True)
    frame["trans_num"] = pd.Series(np.arange(len(frame))).astype("str")
    frame.loc[[5, 150_000], "amt"] = "-2"

    report, invalid = validate_frame(frame, SPARKOV)

    assert [6, 150_001] == [e.row for e in report.issues[0].examples]
    assert [5, 150_000] == np.flatnonzero(invalid.to_numpy()).tolist()


def test_float_card_numbers_keep_their_digits(sparkov_typed_frame: pd.DataFrame) -> None:
    """Card numbers stored as floats with a gap (Parquet, NaN) come back as whole-number text."""
    sparkov_typed_frame["cc_num"] = [4377338765909719.0, np.nan, 630423337322.0]

    check = check_frame(sparkov_typed_frame, SPARKOV)

    assert ["4377338765909719", "630423337322"] == check.clean_frame()["cc_num"].tolist()
    assert [("cc_num", "missing card id", 2)] == [
        (i.column, i.problem, i.examples[0].row) for i in check.issues
    ]


def test_rendered_report_shows_values_not_markup(sparkov_frame: pd.DataFrame) -> None:
    """A value that looks like rich markup is printed as it is, not interpreted."""
    sparkov_frame.loc[0, "amt"] = "[/bold]"
    report, _ = validate_frame(sparkov_frame, SPARKOV)
    buffer = io.StringIO()

    Console(file=buffer, width=200).print(render_report(report))

    assert "row 1: '[/bold]'" in buffer.getvalue()


def test_the_label_contract_columns_are_kept_and_parsed(sparkov_frame: pd.DataFrame) -> None:
    """label_time (blank: never known) and reported_fraud are read as typed columns, no warning."""
    event = pd.to_datetime(sparkov_frame["trans_date_trans_time"])
    sparkov_frame["label_time"] = [str(event[0] + pd.Timedelta(hours=2)), "", None]
    sparkov_frame["reported_fraud"] = ["1", "", None]

    check = check_frame(sparkov_frame, SPARKOV)
    frame = check.clean_frame()

    assert check.report(outcome="valid").issues == ()
    assert [event[0] + pd.Timedelta(hours=2), pd.NaT, pd.NaT] == frame["label_time"].tolist()
    assert "datetime64[ns]" == str(frame["label_time"].dtype)
    assert [1.0, True, True] == [
        frame["reported_fraud"][0],
        np.isnan(frame["reported_fraud"][1]),
        np.isnan(frame["reported_fraud"][2]),
    ]


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("label_time", "soon", "unparsable label time"),
        ("label_time", "2000-01-01 00:00:00", "label time before the transaction"),
        ("reported_fraud", "2", "reported label is not 0 or 1"),
    ],
)
def test_bad_label_arrival_values_are_row_errors(
    sparkov_frame: pd.DataFrame, column: str, value: str, problem: str
) -> None:
    """A label time that cannot be read or comes before its transaction, or a reported label
    other than 0/1, is an error of that row."""
    sparkov_frame["label_time"] = ""
    sparkov_frame["reported_fraud"] = ""
    sparkov_frame.loc[1, column] = value

    report, _ = validate_frame(sparkov_frame, SPARKOV)

    assert [(column, problem, 1)] == [(i.column, i.problem, i.rows) for i in report.issues]
