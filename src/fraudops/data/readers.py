"""Transaction file readers (CSV, gzip CSV, Parquet): validated, bad rows refused or set aside.

CSV is read with every column as text, so ids (cc_num, zip, trans_num) keep all their digits
and a bad value in one row never breaks the read; validation then parses the columns.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import structlog

from fraudops.data.profiles import DatasetProfile
from fraudops.data.validation import (
    DataValidationError,
    ValidationReport,
    check_frame,
)
from fraudops.progress import ProgressCallback, silent_progress

log = structlog.get_logger(__name__)

OnError = Literal["reject", "quarantine"]

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)


class DataFileError(Exception):
    """A data file that cannot be read (or its quarantine file written)."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """The valid rows of a file, parsed, and the report of what was found."""

    frame: pd.DataFrame
    report: ValidationReport


def load_transactions(
    path: Path,
    profile: DatasetProfile,
    *,
    on_error: OnError = "reject",
    quarantine_path: Path | None = None,
    require_label: bool = True,
    progress: ProgressCallback | None = None,
) -> LoadResult:
    """Read, validate and parse a transactions file; bad rows are refused or quarantined.

    Raises DataValidationError (carrying the report) when the file is refused: in reject
    mode on any error, in quarantine mode only when the file as a whole is unusable
    (missing columns). Raises DataFileError when the file cannot be read or written.
    """
    report_progress = progress or silent_progress
    report_progress("reading", 0.0)
    raw = read_table(path, profile)
    report_progress("validating", 0.5)
    check = check_frame(raw, profile, require_label=require_label)
    source = str(path)
    if check.file_error or (check.has_errors and on_error == "reject"):
        report = check.report(outcome="rejected", path=source)
        log.warning(
            "transactions rejected",
            path=source,
            profile=profile.name,
            rows_read=report.rows_read,
            rows_invalid=report.rows_invalid,
        )
        raise DataValidationError(report)
    if check.has_errors:
        report_progress("quarantining", 0.8)
        target = quarantine_path or default_quarantine_path(path)
        _write_quarantine(check.quarantine_frame(), target)
        report = check.report(outcome="quarantined", path=source, quarantine_path=str(target))
    else:
        report = check.report(outcome="valid", path=source)
    log.info(
        "transactions loaded",
        path=source,
        profile=profile.name,
        outcome=report.outcome,
        rows_read=report.rows_read,
        rows_accepted=report.rows_accepted,
        rows_quarantined=report.rows_quarantined,
    )
    frame = check.clean_frame()
    report_progress("loaded", 1.0)
    return LoadResult(frame=frame, report=report)


def validate_file(
    path: Path,
    profile: DatasetProfile,
    *,
    on_error: OnError = "reject",
    quarantine_path: Path | None = None,
    require_label: bool = True,
    progress: ProgressCallback | None = None,
) -> ValidationReport:
    """Load a file only for its report: a refused file gives its report instead of raising."""
    try:
        return load_transactions(
            path,
            profile,
            on_error=on_error,
            quarantine_path=quarantine_path,
            require_label=require_label,
            progress=progress,
        ).report
    except DataValidationError as refused:
        return refused.report


def default_quarantine_path(path: Path) -> Path:
    """`<name>.quarantine.csv` beside the input (`x.csv.gz` -> `x.quarantine.csv`)."""
    name = path.name
    for suffix in (*CSV_SUFFIXES[::-1], *PARQUET_SUFFIXES):
        if name.endswith(suffix):
            name = name.removesuffix(suffix)
            break
    return path.with_name(f"{name}.quarantine.csv")


def read_table(path: Path, profile: DatasetProfile) -> pd.DataFrame:
    """Read a CSV, gzip CSV or Parquet file as it is, less the profile's index columns."""
    name = path.name.lower()
    try:
        if name.endswith(CSV_SUFFIXES):
            table = _read_csv_as_text(path)
        elif name.endswith(PARQUET_SUFFIXES):
            table = pd.read_parquet(path)
        else:
            msg = f"cannot read {path}: unsupported file type (expected .csv, .csv.gz or .parquet)"
            raise DataFileError(msg)
    except FileNotFoundError as exc:
        msg = f"cannot read {path}: no such file"
        raise DataFileError(msg) from exc
    except (OSError, ValueError, pa.ArrowException) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = f"cannot read {path}: {reason}"
        raise DataFileError(msg) from exc
    index_columns = [c for c in table.columns if profile.is_index_column(str(c))]
    if index_columns:
        log.info("index columns dropped", path=str(path), columns=index_columns)
    return table.drop(columns=index_columns)


def _read_csv_as_text(path: Path) -> pd.DataFrame:
    """Every column as text (missing values as NaN), with Arrow's multithreaded reader."""
    with pa_csv.open_csv(path) as head:
        names = head.schema.names
    options = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.large_string()), strings_can_be_null=True
    )
    table = pa_csv.read_csv(path, convert_options=options)
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _write_quarantine(rows: pd.DataFrame, target: Path) -> None:
    """Write the invalid rows and their problems beside the data."""
    try:
        rows.to_csv(target, index=False)
    except OSError as exc:
        msg = f"cannot write quarantine file {target}: {exc.strerror or exc}"
        raise DataFileError(msg) from exc
    log.warning("invalid rows quarantined", path=str(target), rows=len(rows))
