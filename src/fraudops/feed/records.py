"""The feed's rows: a Sparkov-shaped frame sorted by event time and held column-wise."""

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from fraudops.data.profiles import DatasetProfile
from fraudops.data.schema import FEED_COLUMNS
from fraudops.times import utc_naive_stamps

log = structlog.get_logger(__name__)

# Columns served as they are in the data; is_fraud and current_time are added per request.
SERVED_COLUMNS: tuple[str, ...] = FEED_COLUMNS[:-2]

# Identity columns a Sparkov file may lack (optional in the sparkov profile); served as null.
BLANKABLE_COLUMNS: frozenset[str] = frozenset(
    {"first", "last", "street", "city", "state", "zip", "job"}
)

# Where the event time may come from, most preferred first: the readers' parsed column,
# then the Sparkov date-time, the feed's own epoch milliseconds, the Sparkov epoch seconds.
_TIME_SOURCES: tuple[str, ...] = (
    "event_time",
    "trans_date_trans_time",
    "current_time",
    "unix_time",
)

_INT64_MAX = np.iinfo(np.int64).max
_INT64_DIGITS = len(str(_INT64_MAX))
_CANONICAL_DIGITS = re.compile(rf"^(0|[1-9][0-9]{{0,{_INT64_DIGITS - 1}}})$")
# Marks a row without a readable event time (NaT's own integer value).
UNKNOWN_TIME = np.iinfo(np.int64).min


class FeedError(ValueError):
    """Data or options the feed cannot serve."""


@dataclass(frozen=True, slots=True)
class FeedColumn:
    """One served column: plain values, or codes into its distinct values (compact for text)."""

    values: npt.NDArray[Any]
    codes: npt.NDArray[np.intp] | None = None

    def take(self, positions: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        """The values at the given row positions."""
        if self.codes is None:
            return self.values[positions]
        return self.values[self.codes[positions]]

    def reordered(self, order: npt.NDArray[np.intp]) -> "FeedColumn":
        """The same column with its rows in the given order."""
        if self.codes is None:
            return FeedColumn(values=self.values[order])
        return FeedColumn(values=self.values, codes=self.codes[order])


@dataclass(frozen=True, slots=True)
class FeedRecords:
    """Rows in serving order (by event time, stable), one column per served field."""

    columns: dict[str, FeedColumn]
    event_ms: npt.NDArray[np.int64]
    is_fraud: npt.NDArray[np.float64]
    # From the data's label_time (epoch ms, UNKNOWN_TIME: never) and the value that arrives
    # (reported_fraud, else is_fraud); None when the data has no label_time.
    label_ms: npt.NDArray[np.int64] | None = None
    reported: npt.NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return len(self.event_ms)


def check_profile_can_feed(profile: DatasetProfile) -> None:
    """Refuse a profile whose files do not carry the Sparkov columns the feed serves."""
    needed = (*SERVED_COLUMNS, "is_fraud")
    missing = [name for name in needed if name not in profile.known_columns]
    if missing:
        msg = (
            f"profile {profile.name!r} cannot feed: the feed serves Sparkov-shaped data and the "
            f"profile lacks {', '.join(missing)}"
        )
        raise FeedError(msg)


def event_times_ms(frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Each row's event time in epoch milliseconds (naive times are UTC); UNKNOWN_TIME if none."""
    source = next((name for name in _TIME_SOURCES if name in frame.columns), None)
    if source is None:
        msg = f"cannot feed this data: no time column (one of {', '.join(_TIME_SOURCES)})"
        raise FeedError(msg)
    column = frame[source]
    if source in ("current_time", "unix_time") and pd.api.types.is_numeric_dtype(column):
        scale = 1 if source == "current_time" else 1000
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        known = ~np.isnan(numbers)
        ms = np.full(len(numbers), UNKNOWN_TIME, dtype=np.int64)
        ms[known] = np.round(numbers[known] * scale).astype(np.int64)
        return ms
    return _stamps_ms(column)


def _stamps_ms(column: pd.Series) -> npt.NDArray[np.int64]:
    """Date-times (or ISO text) as epoch ms, naive read as UTC; UNKNOWN_TIME where missing."""
    stamps = pd.to_datetime(column, errors="coerce", format="ISO8601")
    stamps = utc_naive_stamps(stamps)
    missing = stamps.isna().to_numpy()
    ms = stamps.to_numpy(dtype="datetime64[ms]").view(np.int64).copy()
    ms[missing] = UNKNOWN_TIME
    return ms


def arrived_labels(
    frame: pd.DataFrame, event_ms: npt.NDArray[np.int64], is_fraud: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Label times (never before the event) and the values that arrive, per the label contract."""
    label_ms = _stamps_ms(frame["label_time"])
    known = label_ms != UNKNOWN_TIME
    label_ms[known] = np.maximum(label_ms[known], event_ms[known])
    if "reported_fraud" in frame.columns:
        reported = (
            pd.to_numeric(frame["reported_fraud"], errors="coerce")
            .to_numpy(dtype=np.float64, na_value=np.nan)
            .copy()
        )
    else:
        reported = is_fraud.copy()
    known &= ~np.isnan(reported)
    label_ms[~known] = UNKNOWN_TIME
    reported[~known] = np.nan
    return label_ms, reported


def _factorized(column: pd.Series) -> FeedColumn:
    """Codes into the distinct values, missing values coded to a trailing None."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    distinct = np.empty(len(uniques) + 1, dtype=object)
    distinct[:-1] = np.asarray(uniques, dtype=object)
    distinct[-1] = None
    codes = np.where(codes < 0, len(uniques), codes).astype(np.intp)
    return FeedColumn(values=distinct, codes=codes)


def _as_digits(column: pd.Series) -> FeedColumn:
    """Card numbers and zips as int64 when every value is a canonical decimal, else as text.

    The public feed sends cc_num as a JSON integer; `json.loads` then gives an int and
    `pd.read_json` an int64 with the same digits. A number with a leading zero or beyond
    int64 cannot round-trip as an integer, so such a column is served as strings.
    """
    if pd.api.types.is_integer_dtype(column.dtype) and not column.isna().any():
        return FeedColumn(values=column.to_numpy(dtype=np.int64))
    text = column.astype("str")
    canonical = text.str.fullmatch(_CANONICAL_DIGITS.pattern).fillna(value=False)
    widest = text[text.str.len() == _INT64_DIGITS]
    if bool(canonical.all()) and all(int(v) <= _INT64_MAX for v in widest):
        return FeedColumn(values=text.astype("int64").to_numpy(dtype=np.int64))
    return _factorized(text.where(column.notna()))


def _whole_numbers(column: pd.Series) -> bool:
    """Whether a numeric column holds only whole numbers that fit int64, none missing."""
    if not pd.api.types.is_numeric_dtype(column.dtype) or column.isna().any():
        return False
    values = column.to_numpy(dtype=np.float64)
    return bool(np.all(np.mod(values, 1.0) == 0.0) and np.all(np.abs(values) < 2.0**63))


def _served_column(frame: pd.DataFrame, name: str) -> FeedColumn:
    """One served column in the feed's representation; null when an optional one is absent."""
    if name not in frame.columns:
        return FeedColumn(
            values=np.array([None], dtype=object), codes=np.zeros(len(frame), np.intp)
        )
    column = frame[name]
    if name in ("cc_num", "zip"):
        return _as_digits(column)
    if name == "dob" and pd.api.types.is_datetime64_any_dtype(column.dtype):
        # The public feed sends birth dates as "YYYY-MM-DD" text.
        return _factorized(column.dt.strftime("%Y-%m-%d"))
    # A population is a count: the public feed sends it as a JSON integer even when read as float.
    if (name == "city_pop" and _whole_numbers(column)) or (
        pd.api.types.is_integer_dtype(column.dtype) and not column.isna().any()
    ):
        return FeedColumn(values=column.to_numpy(dtype=np.int64))
    if pd.api.types.is_float_dtype(column.dtype):
        return FeedColumn(values=column.to_numpy(dtype=np.float64, na_value=np.nan))
    return _factorized(column)


def prepare_feed_records(frame: pd.DataFrame) -> FeedRecords:
    """Check a Sparkov-shaped frame and order its rows by event time (stable) for serving."""
    required = [*SERVED_COLUMNS, "is_fraud"]
    missing = [c for c in required if c not in frame.columns and c not in BLANKABLE_COLUMNS]
    if missing:
        msg = f"cannot feed this data: missing Sparkov column(s) {', '.join(missing)}"
        raise FeedError(msg)
    if frame.empty:
        msg = "cannot feed this data: it has no rows"
        raise FeedError(msg)
    event_ms = event_times_ms(frame)
    known = event_ms != UNKNOWN_TIME
    if not known.all():
        log.warning("feed_rows_without_time_dropped", rows=int((~known).sum()))
        frame = frame.loc[known]
        event_ms = event_ms[known]
        if frame.empty:
            msg = "cannot feed this data: no row has a readable event time"
            raise FeedError(msg)
    order = np.argsort(event_ms, kind="stable")
    columns = {name: _served_column(frame, name).reordered(order) for name in SERVED_COLUMNS}
    labels = pd.to_numeric(frame["is_fraud"], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    if "label_time" not in frame.columns:
        return FeedRecords(columns=columns, event_ms=event_ms[order], is_fraud=labels[order])
    label_ms, reported = arrived_labels(frame, event_ms, labels)
    return FeedRecords(
        columns=columns,
        event_ms=event_ms[order],
        is_fraud=labels[order],
        label_ms=label_ms[order],
        reported=reported[order],
    )
