"""The profile's columns of a loaded frame as the feature engines read them.

Both engines take their inputs from here (the batch engine as arrays, the online engine's
records as Python values), so a frame means the same to both. A column the profile names
but the frame lacks reads as missing values.
"""

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.data.validation import EVENT_TIME_COLUMN
from fraudops.features.formulas import FloatArray, IntArray
from fraudops.times import utc_naive_stamps

NS_PER_MS = 1_000_000


class FeatureInputError(ValueError):
    """A frame the feature engines cannot read (no event time, or missing times)."""


def event_times_ms(frame: pd.DataFrame) -> IntArray:
    """The `event_time` column as epoch milliseconds (naive times read as UTC)."""
    if EVENT_TIME_COLUMN not in frame.columns:
        msg = f"frame has no {EVENT_TIME_COLUMN!r} column: load it with load_transactions first"
        raise FeatureInputError(msg)
    ms, known = datetimes_ms(frame[EVENT_TIME_COLUMN])
    if not known.all():
        msg = f"{int((~known).sum())} rows have no {EVENT_TIME_COLUMN}"
        raise FeatureInputError(msg)
    return ms


def birth_times_ms(frame: pd.DataFrame, column: str) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Birth dates as epoch milliseconds, and which rows have one."""
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=np.int64), np.zeros(len(frame), dtype=bool)
    return datetimes_ms(frame[column])


def datetimes_ms(values: "pd.Series[Any]") -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Date-times as epoch ms (floored, UTC), and the mask of present values."""
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        values = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    values = utc_naive_stamps(values)
    known = values.notna().to_numpy(dtype=bool)
    ns = values.to_numpy(dtype="datetime64[ns]").view(np.int64)
    return np.where(known, ns // NS_PER_MS, 0), known


def numbers(frame: pd.DataFrame, column: str) -> FloatArray:
    """A numeric column as float64 (NaN where missing or not a number)."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    values = frame[column]
    if not pd.api.types.is_numeric_dtype(values.dtype):
        values = pd.to_numeric(values, errors="coerce")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def texts(frame: pd.DataFrame, column: str | None) -> "pd.Series[str]":
    """A column as text, missing or blank values as NaN (ids, categories)."""
    if column is None or column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="str")
    values = frame[column]
    if values.dtype != "str":
        values = values.astype("str")
    return values.where(values.str.strip().ne(""))


def transaction_ids(frame: pd.DataFrame, column: str) -> "pd.Series[str]":
    """Transaction ids as text ("" if missing); row numbers from 1 (as readers make) if absent."""
    if column in frame.columns:
        return texts(frame, column).fillna("")
    return pd.Series(np.arange(1, len(frame) + 1), index=frame.index).astype("str")


def labels(frame: pd.DataFrame, column: str | None) -> IntArray:
    """Labels as 0/1 integers; a frame without them (scoring time) reads as all 0."""
    if column is None or column not in frame.columns:
        return np.zeros(len(frame), dtype=np.int64)
    values = pd.to_numeric(frame[column], errors="coerce").fillna(0)
    fraud: IntArray = (values.to_numpy(dtype=np.float64) != 0).astype(np.int64)
    return fraud
