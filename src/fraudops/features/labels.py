"""When a label is known: the one rule every feature engine, training and monitoring use.

A label counts at time t once its label time is strictly before t, as every feature at t
sees only events strictly before t. A frame may say when each label arrived (the label
contract: `label_time`, naive = UTC, NaT where no label ever arrives, and `reported_fraud`,
the value that arrived); without `label_time` the fixed rule holds: a label is known from
its transaction's time plus the label delay, with the profile's label as its value. Times
are epoch milliseconds; a label that never arrives has the label time NEVER_MS.
"""

from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.data.profiles import DatasetProfile
from fraudops.features import columns
from fraudops.features.formulas import IntArray

LABEL_TIME = "label_time"
REPORTED_FRAUD = "reported_fraud"
NEVER_MS = int(np.iinfo(np.int64).max)
"""The label time of a label that never arrives: known at no time."""


@overload
def label_known(label_time_ms: int, at_ms: int) -> bool: ...


@overload
def label_known(label_time_ms: IntArray, at_ms: "IntArray | int") -> npt.NDArray[np.bool_]: ...


@overload
def label_known(label_time_ms: "IntArray | int", at_ms: IntArray) -> npt.NDArray[np.bool_]: ...


def label_known(label_time_ms: Any, at_ms: Any) -> Any:
    """Whether a label that arrives at `label_time_ms` is known at `at_ms` (arrays too)."""
    return label_time_ms < at_ms


def fixed_label_time_ms(event_time_ms: Any, label_delay_ms: int) -> Any:
    """When a label is known under the fixed rule: its transaction's time plus the delay."""
    return event_time_ms + label_delay_ms


@dataclass(frozen=True)
class LabelArrival:
    """A frame's labels as they arrive: the value (0/1) and its label time, per row."""

    fraud: IntArray  # 0 where no label arrives
    times_ms: IntArray  # NEVER_MS where no label arrives

    def known_at(self, at_ms: "IntArray | int") -> IntArray:
        """The labels known at `at_ms` (one instant, or one per row), 0 where none is."""
        known: IntArray = np.where(label_known(self.times_ms, at_ms), self.fraud, 0)
        return known


def has_label_times(frame: pd.DataFrame) -> bool:
    """Whether a frame says when its labels arrived (else the fixed delay rule holds)."""
    return LABEL_TIME in frame.columns


def label_arrival(
    frame: pd.DataFrame, profile: DatasetProfile, *, label_delay_ms: int
) -> LabelArrival:
    """The frame's labels and when each is known: its `label_time` and `reported_fraud` where
    it has them, else the profile's label, known `label_delay_ms` after the transaction.

    A frame without a label column (scoring time) has no label known, ever.
    """
    events = columns.event_times_ms(frame)
    if not has_label_times(frame):
        fraud = columns.labels(frame, profile.label)
        if profile.label is None or profile.label not in frame.columns:
            return LabelArrival(fraud=fraud, times_ms=np.full(len(frame), NEVER_MS))
        return LabelArrival(fraud=fraud, times_ms=fixed_label_time_ms(events, label_delay_ms))
    times, arrives = label_times_ms(frame)
    source = REPORTED_FRAUD if REPORTED_FRAUD in frame.columns else profile.label
    fraud = np.where(arrives, columns.labels(frame, source), 0).astype(np.int64)
    return LabelArrival(fraud=fraud, times_ms=times)


def label_times_ms(frame: pd.DataFrame) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """The `label_time` column as epoch ms (NEVER_MS where NaT), and where a label arrives."""
    ms, arrives = columns.datetimes_ms(frame[LABEL_TIME])
    return np.where(arrives, ms, NEVER_MS), arrives
