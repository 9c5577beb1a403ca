"""Time conventions, written once: the warehouse, the features and the periods use naive UTC.

A naive date-time means UTC everywhere in fraudops; an aware one is converted to UTC and
its zone dropped.
"""

from datetime import UTC, datetime
from typing import Any

import pandas as pd


def utc_naive(moment: datetime) -> datetime:
    """`moment` as a naive UTC date-time (naive input is taken as UTC already)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def utc_aware(moment: datetime) -> datetime:
    """`moment` as an aware UTC date-time (naive input is taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_now() -> datetime:
    """Now, as a naive UTC date-time."""
    return datetime.now(tz=UTC).replace(tzinfo=None)


def utc_naive_stamps(stamps: "pd.Series[Any]") -> "pd.Series[Any]":
    """Date-times as naive UTC datetime64 (zoned ones converted, naive ones left as they are)."""
    if getattr(stamps.dt, "tz", None) is None:
        return stamps
    converted: pd.Series[Any] = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return converted
