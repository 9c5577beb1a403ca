"""Validation of transaction frames against a dataset profile, with a report of every problem.

Pure logic over whole columns (no I/O, no per-row Python), so that a million-row file is
checked in seconds: readers.py reads files and decides what to do with the bad rows.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fraudops.data.profiles import DatasetProfile, TimestampSpec
from fraudops.times import utc_naive_stamps

Severity = Literal["error", "warning"]
Outcome = Literal["valid", "invalid", "quarantined", "rejected"]
Mask = npt.NDArray[np.bool_]

MAX_EXAMPLES = 5
PROBLEMS_COLUMN = "_problems"
EVENT_TIME_COLUMN = "event_time"
# The label contract's optional columns of labelled data: when each label became known
# (NaT: never) and the value that arrived (may differ from the true label; NaN: none).
LABEL_TIME_COLUMN = "label_time"
REPORTED_LABEL_COLUMN = "reported_fraud"
LABEL_ARRIVAL_COLUMNS = (LABEL_TIME_COLUMN, REPORTED_LABEL_COLUMN)


def accepted_columns(profile: DatasetProfile) -> frozenset[str]:
    """Columns a profile's files may carry: its own, and the label contract's when labelled."""
    if profile.label is None:
        return profile.known_columns
    return profile.known_columns | frozenset(LABEL_ARRIVAL_COLUMNS)


# datetime64[ns] covers 1677-09-21 .. 2262-04-11; anything outside cannot be an event time.
_EARLIEST = pd.Timestamp("1677-09-22")
_LATEST = pd.Timestamp("2262-04-10")
_MAX_ABS_SECONDS = 9.0e9


@dataclass(frozen=True, slots=True)
class IssueExample:
    """One offending value and where it is (1-based data row of the file)."""

    row: int
    value: str | None


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One kind of problem in one column, how many rows have it and a few examples."""

    column: str
    problem: str
    severity: Severity
    rows: int
    examples: tuple[IssueExample, ...] = ()
    file_level: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "column": self.column,
            "problem": self.problem,
            "severity": self.severity,
            "rows": self.rows,
            "file_level": self.file_level,
            "examples": [{"row": e.row, "value": e.value} for e in self.examples],
        }

    def __str__(self) -> str:
        where = "whole file" if self.file_level else f"{self.rows} row{'s' * (self.rows != 1)}"
        text = f"{self.severity.upper():<8}{self.column}: {self.problem} [{where}]"
        return f"{text} e.g. {format_examples(self.examples)}" if self.examples else text


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """What validation found in one file or frame and what became of its rows."""

    profile: str
    path: str | None
    outcome: Outcome
    rows_read: int
    rows_invalid: int
    rows_accepted: int
    rows_quarantined: int = 0
    quarantine_path: str | None = None
    issues: tuple[ValidationIssue, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong enough to refuse a row (warnings allowed)."""
        return not self.errors

    @property
    def errors(self) -> tuple[ValidationIssue, ...]:
        """The issues that make rows (or the whole file) invalid."""
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> tuple[ValidationIssue, ...]:
        """The issues that are reported but refuse nothing."""
        return tuple(i for i in self.issues if i.severity == "warning")

    @property
    def title(self) -> str:
        """What was checked against which profile, and the outcome."""
        source = self.path if self.path is not None else "<frame>"
        return f"{source} (profile {self.profile}): {self.outcome.upper()}"

    @property
    def counts(self) -> str:
        """Where every row went; nothing is dropped without being counted."""
        counts = (
            f"{self.rows_read} rows read, {self.rows_invalid} invalid, "
            f"{self.rows_accepted} accepted, {self.rows_quarantined} quarantined"
        )
        if self.quarantine_path is not None:
            counts += f" (to {self.quarantine_path})"
        return counts

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "path": self.path,
            "profile": self.profile,
            "outcome": self.outcome,
            "ok": self.ok,
            "rows_read": self.rows_read,
            "rows_invalid": self.rows_invalid,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_path": self.quarantine_path,
            "issues": [issue.to_dict() for issue in self.issues],
        }

    def __str__(self) -> str:
        lines = [f"{self.title}: {self.counts}", *(f"  {issue}" for issue in self.issues)]
        return "\n".join(lines)


class DataValidationError(ValueError):
    """Data refused because of validation errors; carries the full report."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(str(report))
        self.report = report


def format_examples(examples: tuple[IssueExample, ...]) -> str:
    """Examples as `row 3: '-5.0', row 9: missing`, long values shortened."""

    def shown(value: str | None) -> str:
        if value is None:
            return "missing"
        return repr(value if len(value) <= 40 else value[:37] + "...")

    return ", ".join(f"row {e.row}: {shown(e.value)}" for e in examples)


def render_report(report: ValidationReport) -> RenderableType:
    """A rich rendering for the terminal: the headline and a table of issues."""
    style = "green" if report.ok else ("yellow" if report.outcome == "quarantined" else "red")
    headline = Group(Text(report.title, style=f"bold {style}"), Text(report.counts))
    if not report.issues:
        return Group(headline, Text("No problems found."))
    table = Table(show_lines=False)
    for name in ("severity", "column", "problem", "rows", "examples"):
        table.add_column(name, justify="right" if name == "rows" else "left")
    for issue in report.issues:
        table.add_row(
            Text(issue.severity, style="red" if issue.severity == "error" else "yellow"),
            # Text cells: data values must never be read as rich markup.
            Text(issue.column),
            Text(issue.problem),
            Text("file" if issue.file_level else str(issue.rows)),
            Text(format_examples(issue.examples)),
        )
    return Group(headline, table)


@dataclass(frozen=True, slots=True)
class _RowCheck:
    """One failed check: the rows of one column that fail it, and why."""

    column: str
    problem: str
    mask: Mask


@dataclass(frozen=True)
class FrameCheck:
    """A checked frame: its issues, the invalid-row mask and the parsed columns of every row."""

    profile: DatasetProfile
    raw: pd.DataFrame
    parsed: pd.DataFrame
    bad: Mask
    issues: tuple[ValidationIssue, ...]
    row_checks: tuple[_RowCheck, ...] = field(default=(), repr=False)

    @property
    def file_error(self) -> bool:
        """Whether the frame as a whole is unusable, so no row can be accepted or quarantined."""
        return any(i.file_level and i.severity == "error" for i in self.issues)

    @property
    def has_errors(self) -> bool:
        """Whether any row or the frame itself is invalid."""
        return any(i.severity == "error" for i in self.issues)

    def report(
        self, *, outcome: Outcome, path: str | None = None, quarantine_path: str | None = None
    ) -> ValidationReport:
        """The report, with counts following what the caller did with the rows."""
        invalid = int(self.bad.sum())
        return ValidationReport(
            profile=self.profile.name,
            path=path,
            outcome=outcome,
            rows_read=len(self.raw),
            rows_invalid=invalid,
            rows_accepted=0 if outcome == "rejected" else len(self.raw) - invalid,
            rows_quarantined=invalid if outcome == "quarantined" else 0,
            quarantine_path=quarantine_path,
            issues=self.issues,
        )

    def clean_frame(self) -> pd.DataFrame:
        """The valid rows, parsed, in their original order, labels as int8."""
        clean = self.parsed.loc[~self.bad].reset_index(drop=True)
        label = self.profile.label
        if label is not None and label in clean.columns:
            clean[label] = clean[label].astype("int8")
        return clean

    def quarantine_frame(self) -> pd.DataFrame:
        """The invalid rows as given, led by a `_problems` column naming each failed check."""
        positions = np.flatnonzero(self.bad)
        problems = np.full(len(positions), "", dtype=object)
        for check in self.row_checks:
            hit = check.mask[positions]
            problems[hit] = problems[hit] + f"{check.column}: {check.problem}; "
        rows = self.raw.iloc[positions].reset_index(drop=True)
        rows.insert(0, PROBLEMS_COLUMN, pd.Series(problems, dtype="str").str.removesuffix("; "))
        return rows


def validate_frame(
    df: pd.DataFrame, profile: DatasetProfile, *, require_label: bool = True
) -> tuple[ValidationReport, "pd.Series[bool]"]:
    """Check a frame against a profile: the report and a boolean mask of its invalid rows."""
    check = check_frame(df, profile, require_label=require_label)
    report = check.report(outcome="invalid" if check.has_errors else "valid")
    return report, pd.Series(check.bad, index=df.index, name="invalid", dtype=bool)


def check_frame(
    df: pd.DataFrame, profile: DatasetProfile, *, require_label: bool = True
) -> FrameCheck:
    """Check every row of a frame against a profile and parse its columns, column by column."""
    index_columns = [c for c in df.columns if profile.is_index_column(str(c))]
    raw = df.drop(columns=index_columns).reset_index(drop=True)
    raw.columns = pd.Index([str(c) for c in raw.columns])
    column_issues = _column_issues(raw, profile, require_label=require_label)
    if any(i.severity == "error" for i in column_issues):
        everything = np.ones(len(raw), dtype=bool)
        return FrameCheck(profile, raw, pd.DataFrame(), everything, tuple(column_issues))
    parsed, checks = _RowParser(raw, profile).run()
    bad = np.zeros(len(raw), dtype=bool)
    for check in checks:
        bad |= check.mask
    row_issues = [_issue_from(check, raw[check.column]) for check in checks]
    return FrameCheck(
        profile, raw, parsed, bad, (*row_issues, *column_issues), row_checks=tuple(checks)
    )


def _column_issues(
    raw: pd.DataFrame, profile: DatasetProfile, *, require_label: bool
) -> list[ValidationIssue]:
    """Whole-file problems: duplicated, missing and unknown columns."""
    columns = [str(c) for c in raw.columns]
    issues: list[ValidationIssue] = []
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        issues.append(_file_error(", ".join(duplicated), "column appears more than once"))
    required = [c for c in profile.required_columns if require_label or c != profile.label]
    missing = [c for c in required if c not in columns]
    if missing:
        found = ", ".join(columns) if columns else "no columns"
        plural = "s" * (len(missing) > 1)
        issues.append(
            _file_error(", ".join(missing), f"required column{plural} missing; found: {found}")
        )
    if not any(c in columns for c in profile.timestamp_columns):
        expected = ", ".join(profile.timestamp_columns)
        issues.append(_file_error(expected, f"no timestamp column; expected one of: {expected}"))
    extra = [c for c in dict.fromkeys(columns) if c not in accepted_columns(profile)]
    if extra:
        problem = f"not in profile {profile.name!r}; left out"
        issues.append(
            ValidationIssue(
                column=", ".join(extra),
                problem=problem if len(extra) == 1 else f"{len(extra)} columns {problem}",
                severity="warning",
                rows=0,
                file_level=True,
            )
        )
    return issues


def _file_error(column: str, problem: str) -> ValidationIssue:
    """A whole-file error: nothing can be loaded until the file itself is fixed."""
    return ValidationIssue(
        column=column, problem=problem, severity="error", rows=0, file_level=True
    )


def _issue_from(check: _RowCheck, values: "pd.Series[Any]") -> ValidationIssue:
    """Count a failed check and take its first few offending values as examples."""
    positions = np.flatnonzero(check.mask)
    first = positions[:MAX_EXAMPLES]
    examples = tuple(
        IssueExample(row=int(pos) + 1, value=None if pd.isna(value) else str(value))
        for pos, value in zip(first, values.iloc[first].tolist(), strict=True)
    )
    return ValidationIssue(
        column=check.column,
        problem=check.problem,
        severity="error",
        rows=len(positions),
        examples=examples,
    )


class _RowParser:
    """Parses a frame's profile columns one role at a time, collecting the failed checks."""

    def __init__(self, raw: pd.DataFrame, profile: DatasetProfile) -> None:
        self.raw = raw
        self.profile = profile
        self.present = frozenset(raw.columns)
        self.typed: dict[str, pd.Series[Any]] = {}
        self.failed: list[_RowCheck] = []

    def run(self) -> tuple[pd.DataFrame, list[_RowCheck]]:
        """Every row-level check; the parsed frame (all rows) and the failed checks."""
        self.ids()
        event_time = self.event_time()
        self.amount()
        self.numbers()
        self.label()
        self.label_arrival(event_time)
        self.birth_date(event_time)
        accepted = accepted_columns(self.profile)
        parsed = pd.DataFrame(
            {
                c: self.typed[c] if c in self.typed else _as_text(self.raw[c])
                for c in self.raw.columns
                if c in accepted
            },
            index=self.raw.index,
        )
        if self.profile.transaction_id is None:
            row_numbers = pd.Series(np.arange(1, len(self.raw) + 1), index=self.raw.index)
            parsed.insert(0, self.profile.id_column, row_numbers.astype("str"))
        parsed[EVENT_TIME_COLUMN] = event_time
        return parsed, self.failed

    def add(self, column: str, problem: str, mask: Mask) -> None:
        """Record a check if any row fails it."""
        if mask.any():
            self.failed.append(_RowCheck(column, problem, mask))

    def number(self, column: str) -> Mask:
        """Parse a numeric column as float64, recording non-numbers; the rows with no value."""
        floats, unparsable = _as_float(self.raw[column])
        self.add(column, "not a number", unparsable)
        self.typed[column] = floats
        return floats.isna().to_numpy(dtype=bool) & ~unparsable

    def ids(self) -> None:
        """Transaction ids present and unique, card and merchant ids present, all as text."""
        tid = self.profile.transaction_id
        if tid is not None:
            ids = self.typed[tid] = _as_text(self.raw[tid])
            missing = _missing_text(ids)
            self.add(tid, "missing transaction id", missing)
            duplicate = ids.duplicated(keep="first").to_numpy(dtype=bool) & ~missing
            self.add(tid, "duplicate transaction id (first kept)", duplicate)
        for role, column in (
            ("card", self.profile.card_id),
            ("merchant", self.profile.merchant_id),
        ):
            if column is not None and column in self.present:
                self.typed[column] = _as_text(self.raw[column])
                self.add(column, f"missing {role} id", _missing_text(self.typed[column]))

    def event_time(self) -> "pd.Series[pd.Timestamp]":
        """The event time from the first timestamp column the frame has."""
        spec = next(s for s in self.profile.timestamps if s.column in self.present)
        event_time = _event_time(self.raw[spec.column], spec)
        missing = _missing_text(_as_text(self.raw[spec.column]))
        self.add(spec.column, "missing timestamp", missing)
        unparsable = event_time.isna().to_numpy(dtype=bool) & ~missing
        self.add(spec.column, f"unparsable timestamp (expected {_expected(spec)})", unparsable)
        return event_time

    def amount(self) -> None:
        """Amounts present, finite and not negative."""
        column = self.profile.amount
        self.add(column, "missing amount", self.number(column))
        amount = self.typed[column].to_numpy()
        self.add(column, "amount is not finite", np.isinf(amount))
        self.add(column, "negative amount", amount < 0)

    def numbers(self) -> None:
        """Numeric features parse (missing allowed); coordinates within the globe."""
        for column in self.profile.numeric:
            if column in self.present:
                self.number(column)
        geo = self.profile.geo
        if geo is None:
            return
        for column, limit, name in (
            (geo.lat, 90, "latitude"),
            (geo.long, 180, "longitude"),
            (geo.merch_lat, 90, "latitude"),
            (geo.merch_long, 180, "longitude"),
        ):
            if column in self.present:
                self.number(column)
                outside = np.abs(self.typed[column].to_numpy()) > limit
                self.add(column, f"{name} outside [-{limit}, {limit}]", outside)

    def label(self) -> None:
        """Labels present and 0 or 1, when the frame has a label column."""
        column = self.profile.label
        if column is None or column not in self.present:
            return
        self.add(column, "missing label", self.number(column))
        label = self.typed[column]
        not_binary = label.notna() & ~label.isin([0, 1])
        self.add(column, "label is not 0 or 1", not_binary.to_numpy(dtype=bool))

    def label_arrival(self, event_time: "pd.Series[pd.Timestamp]") -> None:
        """Label times readable (missing: never known) and not before the transaction;
        reported labels 0 or 1 (missing: none arrived)."""
        if self.profile.label is None:
            return
        if LABEL_TIME_COLUMN in self.present:
            raw = self.raw[LABEL_TIME_COLUMN]
            known = self.typed[LABEL_TIME_COLUMN] = _parse_datetime(raw, None)
            missing = _missing_text(_as_text(raw)) | raw.isna().to_numpy(dtype=bool)
            unreadable = known.isna().to_numpy(dtype=bool) & ~missing
            self.add(LABEL_TIME_COLUMN, "unparsable label time", unreadable)
            early = (known < event_time).to_numpy(dtype=bool, na_value=False)
            self.add(LABEL_TIME_COLUMN, "label time before the transaction", early)
        if REPORTED_LABEL_COLUMN in self.present:
            raw = self.raw[REPORTED_LABEL_COLUMN]
            reported, unparsable = _as_float(raw)
            # A blank reported label means none arrived, as a blank label time does.
            blank = _missing_text(_as_text(raw))
            self.add(REPORTED_LABEL_COLUMN, "not a number", unparsable & ~blank)
            self.typed[REPORTED_LABEL_COLUMN] = reported
            not_binary = reported.notna() & ~reported.isin([0, 1])
            self.add(REPORTED_LABEL_COLUMN, "reported label is not 0 or 1", not_binary.to_numpy())

    def birth_date(self, event_time: "pd.Series[pd.Timestamp]") -> None:
        """Birth dates readable (missing allowed) and not after the transaction."""
        column = self.profile.birth_date
        if column is None or column not in self.present:
            return
        birth = self.typed[column] = _parse_datetime(self.raw[column], None)
        missing = _missing_text(_as_text(self.raw[column]))
        self.add(column, "unparsable birth date", birth.isna().to_numpy(dtype=bool) & ~missing)
        self.add(column, "birth date after the transaction", (birth > event_time).to_numpy())


def _as_text(values: "pd.Series[Any]") -> "pd.Series[str]":
    """Text as it is written; whole floats (ids read back from Parquet) lose their `.0`."""
    if values.dtype == "str":
        return values
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if np.isfinite(finite).all() and (finite == np.floor(finite)).all():
            return values.astype("Int64").astype("str")
    return values.astype("str")


def _missing_text(values: "pd.Series[str]") -> Mask:
    """Rows with no value or only blanks."""
    blank = values.str.strip().eq("").to_numpy(dtype=bool, na_value=False)
    return values.isna().to_numpy(dtype=bool) | blank


def _as_float(values: "pd.Series[Any]") -> tuple["pd.Series[float]", Mask]:
    """Numbers as float64 and the rows whose value is present but not a number."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64"), np.zeros(len(values), dtype=bool)
    try:
        # Arrow's cast is ~20x faster than pandas' parser; it fails on any bad value.
        cast = pc.cast(pa.array(values, from_pandas=True), pa.float64())
        floats = pd.Series(cast.to_numpy(zero_copy_only=False), index=values.index)
    except (ValueError, TypeError, NotImplementedError):
        floats = pd.to_numeric(values, errors="coerce").astype("float64")
    return floats, floats.isna().to_numpy(dtype=bool) & values.notna().to_numpy(dtype=bool)


def _expected(spec: TimestampSpec) -> str:
    """How a timestamp column should look, for messages."""
    if spec.unit == "datetime":
        return spec.format or "ISO 8601 date-time"
    if spec.unit == "offset_s":
        return f"seconds since {spec.origin}"
    return "epoch seconds" if spec.unit == "unix_s" else "epoch milliseconds"


def _event_time(values: "pd.Series[Any]", spec: TimestampSpec) -> "pd.Series[pd.Timestamp]":
    """The event time as naive datetime64[ns], NaT where it cannot be read."""
    if spec.unit == "datetime":
        return _parse_datetime(values, spec.format)
    numbers, _ = _as_float(values)
    scale = 1000.0 if spec.unit == "unix_ms" else 1.0
    numbers = numbers.where(numbers.abs() < _MAX_ABS_SECONDS * scale)
    if spec.unit == "offset_s":
        assert spec.origin is not None  # noqa: S101 - TimestampSpec requires it for offset_s
        origin = _naive(spec.origin)
        stamps = origin + pd.to_timedelta(numbers, unit="s")
    else:
        stamps = pd.to_datetime(numbers, unit="ms" if spec.unit == "unix_ms" else "s")
    return _in_range(stamps)


def _parse_datetime(values: "pd.Series[Any]", fmt: str | None) -> "pd.Series[pd.Timestamp]":
    """Date-times as naive datetime64[ns] (UTC where an offset is given), NaT if unreadable."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = values
    else:
        text = _as_text(values)
        stamps = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce", utc=True)
    return _in_range(utc_naive_stamps(stamps))


def _naive(moment: datetime) -> pd.Timestamp:
    """A profile's origin as a naive UTC timestamp."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _in_range(stamps: "pd.Series[Any]") -> "pd.Series[pd.Timestamp]":
    """Keep stamps that fit datetime64[ns]; the rest become NaT."""
    fits = (stamps >= _EARLIEST) & (stamps <= _LATEST)
    return stamps.where(fits).astype("datetime64[ns]")
