"""Splits are time-ordered with a label-delay gap, never random."""

from datetime import datetime, timedelta

import pandas as pd
import pytest

from fraudops.training.splits import (
    SplitError,
    delayed_split,
    prequential_splits,
    whole_period_split,
)

END = datetime(2024, 3, 1)
WEEK = timedelta(days=7)


def test_validation_is_the_last_days_and_training_ends_one_delay_earlier() -> None:
    """Labelled data up to 1 March: validation is the week before, training ends a delay before."""
    split = delayed_split(
        labelled_end=END, delay=WEEK, validation_days=7, train_start=datetime(2024, 1, 1)
    )
    assert datetime(2024, 2, 23) == split.validation_start
    assert END == split.validation_end
    assert datetime(2024, 2, 16) == split.train_end
    assert datetime(2024, 1, 1) == split.train_start


def test_masks_are_half_open_and_disjoint_with_a_gap() -> None:
    """Rows at a period's end belong to the next period; rows in the delay gap to neither."""
    split = delayed_split(
        labelled_end=END, delay=WEEK, validation_days=7, train_start=datetime(2024, 1, 1)
    )
    times = pd.Series(
        pd.to_datetime(
            [
                "2024-01-01 00:00:00",
                "2024-02-15 23:59:59",
                "2024-02-16 00:00:00",
                "2024-02-23 00:00:00",
                "2024-03-01 00:00:00",
            ]
        )
    )
    train, validation = split.masks(times)
    assert [True, True, False, False, False] == train.tolist()
    assert [False, False, False, True, False] == validation.tolist()


def test_prequential_folds_step_back_one_validation_period_each() -> None:
    """Rolling validation gives folds whose validation periods tile backwards in time."""
    folds = prequential_splits(
        labelled_end=END, delay=WEEK, validation_days=7, train_start=datetime(2024, 1, 1), folds=3
    )
    assert [END, END - WEEK, END - 2 * WEEK] == [f.validation_end for f in folds]
    assert all(f.validation_start - f.train_end == WEEK for f in folds)


def test_a_period_too_short_for_training_is_refused_with_dates() -> None:
    """When validation and delay eat the whole history the error names the dates."""
    with pytest.raises(SplitError, match="no training period left"):
        delayed_split(
            labelled_end=END, delay=WEEK, validation_days=7, train_start=datetime(2024, 2, 20)
        )


def test_split_periods_are_reported_as_iso_strings() -> None:
    """to_dict gives the four bounds and the delay in days, for reports and MLflow tags."""
    split = delayed_split(
        labelled_end=END, delay=WEEK, validation_days=7, train_start=datetime(2024, 1, 1)
    )
    assert {
        "train_start": "2024-01-01T00:00:00",
        "train_end": "2024-02-16T00:00:00",
        "validation_start": "2024-02-23T00:00:00",
        "validation_end": "2024-03-01T00:00:00",
        "delay_days": "7",
    } == split.to_dict()


def test_without_a_holdout_training_runs_up_to_the_labelled_end_and_is_the_validation() -> None:
    """The Handbook's protocol: one period, trained on up to the labelled end, no gap inside."""
    split = whole_period_split(labelled_end=END, delay=WEEK, train_start=datetime(2024, 2, 23))
    times = pd.Series(
        pd.to_datetime(
            [
                "2024-02-22 23:59:59",
                "2024-02-23 00:00:00",
                "2024-02-29 23:59:59",
                "2024-03-01 00:00:00",
            ]
        )
    )
    train, validation = split.masks(times)
    assert [False, True, True, False] == train.tolist()
    assert train.tolist() == validation.tolist()
    assert WEEK == split.delay


def test_without_a_holdout_an_empty_period_is_refused_with_dates() -> None:
    """A training start at or after the labelled end leaves nothing to learn from: said so."""
    with pytest.raises(SplitError, match=r"no training period left.*2024-03-01"):
        whole_period_split(labelled_end=END, delay=WEEK, train_start=END)
