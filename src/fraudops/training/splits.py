"""Time-ordered splits with a label-delay gap: never a random split on card data.

Labelled data ends at `labelled_end` (for a backtest: the test start minus the delay).
Validation is its last `validation_days`; training ends `delay` before validation starts,
as a model in service is always trained on data at least one delay old. A backtest that
follows the Fraud Detection Handbook's protocol (train one period, delay, test) has no
hold-out: its one period is both trained and validated on (`whole_period_split`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd


class SplitError(ValueError):
    """A split that leaves a period empty or runs backwards."""


@dataclass(frozen=True, kw_only=True)
class TimeSplit:
    """Half-open periods [start, end) for training and validation, `delay` apart."""

    train_start: datetime
    train_end: datetime
    validation_start: datetime
    validation_end: datetime
    delay: timedelta

    def masks(
        self, times: "pd.Series[pd.Timestamp]"
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Boolean masks of the training and validation rows of a column of event times."""
        values = times.to_numpy(dtype="datetime64[ns]")
        train = (values >= np.datetime64(self.train_start)) & (
            values < np.datetime64(self.train_end)
        )
        validation = (values >= np.datetime64(self.validation_start)) & (
            values < np.datetime64(self.validation_end)
        )
        return train, validation

    def to_dict(self) -> dict[str, str]:
        """The periods as ISO strings, for logs, reports and MLflow tags."""
        return {
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "validation_start": self.validation_start.isoformat(),
            "validation_end": self.validation_end.isoformat(),
            "delay_days": f"{self.delay / timedelta(days=1):g}",
        }


def delayed_split(
    *,
    labelled_end: datetime,
    delay: timedelta,
    validation_days: float,
    train_start: datetime,
) -> TimeSplit:
    """Train, delay gap, validation, ending at `labelled_end`."""
    validation_start = labelled_end - timedelta(days=validation_days)
    train_end = validation_start - delay
    if validation_days <= 0:
        msg = f"validation must last more than 0 days, not {validation_days}"
        raise SplitError(msg)
    if train_end <= train_start:
        msg = (
            f"no training period left: training would run from {train_start:%Y-%m-%d %H:%M} "
            f"to {train_end:%Y-%m-%d %H:%M} (labelled data ends {labelled_end:%Y-%m-%d %H:%M}, "
            f"minus {validation_days:g} validation days and the {delay.days}-day delay)"
        )
        raise SplitError(msg)
    return TimeSplit(
        train_start=train_start,
        train_end=train_end,
        validation_start=validation_start,
        validation_end=labelled_end,
        delay=delay,
    )


def whole_period_split(
    *, labelled_end: datetime, delay: timedelta, train_start: datetime
) -> TimeSplit:
    """No hold-out: training and validation are the same period, ending at `labelled_end`."""
    if labelled_end <= train_start:
        msg = (
            f"no training period left: training would run from {train_start:%Y-%m-%d %H:%M} "
            f"to {labelled_end:%Y-%m-%d %H:%M}"
        )
        raise SplitError(msg)
    return TimeSplit(
        train_start=train_start,
        train_end=labelled_end,
        validation_start=train_start,
        validation_end=labelled_end,
        delay=delay,
    )


def prequential_splits(
    *,
    labelled_end: datetime,
    delay: timedelta,
    validation_days: float,
    train_start: datetime,
    folds: int,
) -> list[TimeSplit]:
    """Rolling validation: `folds` delayed splits, each one validation period earlier."""
    if folds < 1:
        msg = f"folds must be at least 1, not {folds}"
        raise SplitError(msg)
    step = timedelta(days=validation_days)
    return [
        delayed_split(
            labelled_end=labelled_end - fold * step,
            delay=delay,
            validation_days=validation_days,
            train_start=train_start,
        )
        for fold in range(folds)
    ]
