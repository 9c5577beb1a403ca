"""Windowed performance: Wilson and bootstrap intervals, evidence flags, one row per day."""

import json
import math
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from fraudops.monitoring.performance import (
    daily_performance,
    wilson_interval,
    window_performance,
)
from fraudops.training.metrics import card_precision_at_k, confusion


def scored_window(
    rng: np.random.Generator, *, rows: int, frauds: int
) -> tuple[np.ndarray, np.ndarray]:
    """Labels with `frauds` frauds and scores that rank frauds higher, with overlap."""
    labels = np.zeros(rows, dtype=np.int64)
    labels[rng.choice(rows, size=frauds, replace=False)] = 1
    scores = np.clip(rng.normal(0.2 + 0.5 * labels, 0.2), 0.0, 1.0)
    return labels, scores


def test_wilson_interval_matches_the_textbook_value() -> None:
    """8 successes in 10 trials: the 95% Wilson interval is (0.4902, 0.9433)."""
    low, high = wilson_interval(8, 10)
    assert (0.4902, 0.9433) == (round(low, 4), round(high, 4))


def test_wilson_interval_without_trials_is_undefined() -> None:
    """No trial, no interval: both bounds NaN."""
    low, high = wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)


@given(trials=st.integers(1, 5_000), data=st.data())
def test_wilson_interval_lies_in_0_1_and_holds_the_proportion(
    trials: int, data: st.DataObject
) -> None:
    """For any count, 0 <= low <= k/n <= high <= 1."""
    successes = data.draw(st.integers(0, trials))
    low, high = wilson_interval(successes, trials)
    assert 0.0 <= low <= successes / trials + 1e-12
    assert successes / trials - 1e-12 <= high <= 1.0


def test_window_counts_and_estimates_are_the_training_metrics() -> None:
    """Counts, precision, recall and F1 as the confusion defines them, AP as scikit-learn's."""
    labels, scores = scored_window(np.random.default_rng(1), rows=2_000, frauds=60)
    alerts = scores >= 0.5
    result = window_performance(labels=labels, scores=scores, alerts=alerts, resamples=100)
    expected = confusion(labels, alerts)
    assert (2_000, 60, expected.alerts, expected.true_positives) == (
        result.transactions,
        result.frauds,
        result.alerts,
        result.true_positives,
    )
    assert expected.precision == result.precision.value
    assert expected.recall == result.recall.value
    assert expected.f1 == pytest.approx(result.f1.value)
    assert average_precision_score(labels, scores) == pytest.approx(result.average_precision.value)
    assert wilson_interval(expected.true_positives, expected.alerts) == (
        result.precision.low,
        result.precision.high,
    )
    assert wilson_interval(expected.true_positives, 60) == (result.recall.low, result.recall.high)
    assert ("wilson", "bootstrap") == (result.recall.method, result.f1.method)


def test_bootstrap_intervals_hold_the_estimate_and_narrow_with_more_frauds() -> None:
    """Same model quality: 200 frauds give tighter F1 and AP intervals than 15."""
    rng = np.random.default_rng(2)
    widths = {}
    for frauds in (15, 200):
        labels, scores = scored_window(rng, rows=20 * frauds, frauds=frauds)
        result = window_performance(
            labels=labels, scores=scores, alerts=scores >= 0.5, resamples=300
        )
        for estimate in (result.f1, result.average_precision):
            assert estimate.low <= estimate.value <= estimate.high
        widths[frauds] = (
            result.f1.high - result.f1.low,
            result.average_precision.high - result.average_precision.low,
        )
    assert widths[200][0] < widths[15][0]
    assert widths[200][1] < widths[15][1]


def test_the_same_window_gives_the_same_intervals() -> None:
    """The bootstrap is seeded: a repeated run is identical."""
    labels, scores = scored_window(np.random.default_rng(3), rows=500, frauds=25)
    first = window_performance(labels=labels, scores=scores, alerts=scores >= 0.5, resamples=50)
    again = window_performance(labels=labels, scores=scores, alerts=scores >= 0.5, resamples=50)
    assert first == again


def test_too_few_frauds_is_not_enough_evidence() -> None:
    """19 frauds against min_frauds=20 is not enough; 20 is."""
    rng = np.random.default_rng(4)
    for frauds, enough in ((19, False), (20, True)):
        labels, scores = scored_window(rng, rows=1_000, frauds=frauds)
        result = window_performance(
            labels=labels, scores=scores, alerts=scores >= 0.5, min_frauds=20, resamples=20
        )
        assert enough == result.enough_evidence


def test_an_empty_window_is_undefined_and_not_evidence() -> None:
    """No labelled transaction: NaN metrics and bounds, no evidence, JSON with nulls."""
    empty = np.zeros(0)
    result = window_performance(labels=empty, scores=empty, alerts=empty.astype(bool))
    assert 0 == result.transactions
    assert not result.enough_evidence
    assert all(math.isnan(e.high) for e in result.estimates().values())
    document = result.to_dict()
    json.dumps(document, allow_nan=False)
    assert document["f1"]["value"] is None and document["average_precision"]["low"] is None


def test_card_precision_is_the_daily_mean() -> None:
    """Card precision@k of the window is the mean of the handbook's daily values."""
    days = np.array(["2024-01-01T10", "2024-01-01T11", "2024-01-02T09", "2024-01-02T12"], "M8[h]")
    cards = np.array(["a", "b", "a", "c"])
    labels = np.array([1, 0, 0, 1])
    scores = np.array([0.9, 0.8, 0.1, 0.7])
    result = window_performance(
        labels=labels, scores=scores, alerts=scores >= 0.5, days=days, cards=cards, k=1
    )
    expected = card_precision_at_k(days=days, cards=cards, scores=scores, labels=labels, k=1)
    assert 1.0 == expected.mean == result.card_precision_at_k
    assert 1 == result.k


def test_daily_performance_has_one_row_per_day_with_its_own_metrics() -> None:
    """Two days of data (a day without any is left out): each row is that day's window."""
    rng = np.random.default_rng(5)
    labels, scores = scored_window(rng, rows=600, frauds=30)
    times = np.where(
        np.arange(600) < 250,
        np.datetime64("2024-03-01T08:00"),
        np.datetime64("2024-03-03T15:30"),
    )
    alerts = scores >= 0.5
    daily = daily_performance(
        times=times, labels=labels, scores=scores, alerts=alerts, resamples=30
    )
    assert [datetime(2024, 3, 1).date(), datetime(2024, 3, 3).date()] == list(daily["date"])
    first = window_performance(
        labels=labels[:250], scores=scores[:250], alerts=alerts[:250], resamples=30
    )
    row = daily.iloc[0]
    assert (250, first.frauds, first.alerts) == (
        row["transactions"],
        row["frauds"],
        row["alerts"],
    )
    assert first.f1.value == pytest.approx(row["f1"])
    assert first.average_precision.low == pytest.approx(row["average_precision_low"])
    assert 600 == daily["transactions"].sum()


def test_mismatched_inputs_are_refused() -> None:
    """Alerts of another length than the labels are an error, not a silent broadcast."""
    with pytest.raises(ValueError, match="alerts"):
        window_performance(labels=[0, 1], scores=[0.1, 0.9], alerts=[True])
