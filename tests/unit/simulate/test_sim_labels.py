"""Realistic label arrival: shares and delay quantiles within tolerances, on fixed seeds."""

import math

import numpy as np
import pandas as pd
import pytest

from fraudops.simulate import (
    LabelArrival,
    LabelArrivalError,
    SimulationConfig,
    parse_label_arrival,
    simulate,
)
from fraudops.simulate.labels import NO_LABEL, arrive_labels, truncated_lognormal

ROWS = 200_000
FRAUD_SHARE = 0.02
HOUR = 3_600
DAY = 86_400


@pytest.fixture(scope="module")
def arrival_draw() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """200,000 transactions, 2 % fraud, labels drawn with the default arrival (seed 11)."""
    rng = np.random.default_rng(11)
    time = np.sort(rng.integers(0, 60 * DAY, ROWS)).astype(np.int64)
    fraud = rng.random(ROWS) < FRAUD_SHARE
    labels = arrive_labels(
        np.random.default_rng(12), time=time, is_fraud=fraud, arrival=LabelArrival()
    )
    delay = np.where(labels.label_seconds == NO_LABEL, -1, labels.label_seconds - time)
    return fraud, labels.label_seconds, delay, labels.reported


def test_alerted_transactions_are_reviewed_within_hours_with_the_truth(arrival_draw) -> None:
    """Half the frauds and 0.5 % of legitimate rows are reviewed (median 2 h, all within 24 h)."""
    fraud, _, delay, reported = arrival_draw
    reviewed = (delay >= 0) & (delay <= DAY)
    assert 0.5 == pytest.approx(reviewed[fraud].mean(), abs=0.02)
    assert 0.005 == pytest.approx(reviewed[~fraud].mean(), abs=0.0005)
    assert 2.0 == pytest.approx(np.median(delay[reviewed]) / HOUR, rel=0.08)
    assert delay[reviewed].max() <= 24 * HOUR
    assert (reported[reviewed] == fraud[reviewed]).all()


def test_chargebacks_arrive_between_7_and_120_days_with_a_long_tail(arrival_draw) -> None:
    """Chargeback delays stay in [7, 120] days; median about 20 days, 90th percentile far above."""
    _, _, delay, _ = arrival_draw
    days = delay[delay > DAY] / DAY
    assert 7.0 <= days.min()
    assert days.max() <= 120.0
    p50, p90 = np.quantile(days, [0.5, 0.9])
    expected_p50, expected_p90 = truncated_quantiles(0.5, 0.9)
    assert expected_p50 == pytest.approx(p50, rel=0.06)
    assert expected_p90 == pytest.approx(p90, rel=0.08)
    assert p90 > 2.5 * p50


def truncated_quantiles(*levels: float) -> list[float]:
    """Quantiles of the default chargeback delay, from a large independent draw."""
    draws = truncated_lognormal(
        np.random.default_rng(99), 400_000, median=20.0, sigma=0.8, low=7.0, high=120.0
    )
    return [float(q) for q in np.quantile(draws, levels)]


def test_a_share_of_unalerted_frauds_is_never_reported(arrival_draw) -> None:
    """10 % of the frauds no alert caught never get a label (NaT, reported NaN)."""
    fraud, label_seconds, delay, reported = arrival_draw
    not_alerted = fraud & ~((delay >= 0) & (delay <= DAY))
    never = label_seconds == NO_LABEL
    assert 0.1 == pytest.approx(never[not_alerted].mean(), abs=0.02)
    assert np.isnan(reported[never]).all()


def test_a_share_of_chargebacks_is_friendly_fraud(arrival_draw) -> None:
    """10 % of the disputes are legitimate purchases reported as fraud; all say fraud."""
    fraud, _, delay, reported = arrival_draw
    chargeback = delay > DAY
    assert (reported[chargeback] == 1.0).all()
    assert 0.1 == pytest.approx((~fraud[chargeback]).mean(), abs=0.015)


def test_every_setting_moves_its_own_share() -> None:
    """No alerts and no unreported fraud: every fraud is a chargeback and nothing else is known."""
    rng = np.random.default_rng(5)
    fraud = rng.random(20_000) < 0.05
    labels = arrive_labels(
        np.random.default_rng(6),
        time=np.zeros(20_000, dtype=np.int64),
        is_fraud=fraud,
        arrival=LabelArrival(
            alert_recall=0.0, alert_rate=0.0, unreported_share=0.0, friendly_fraud_share=0.0
        ),
    )
    known = labels.label_seconds != NO_LABEL
    assert fraud.tolist() == known.tolist()
    assert (labels.label_seconds[known] >= 7 * DAY).all()


def test_simulate_adds_the_contract_columns_and_leaves_the_rest_unchanged() -> None:
    """label_time (datetime64, never before the event) and reported_fraud; other columns equal."""
    fixed = simulate(SimulationConfig(days=10, cards=200, seed=4))
    realistic = simulate(SimulationConfig(days=10, cards=200, seed=4, label_arrival=LabelArrival()))
    pd.testing.assert_frame_equal(fixed, realistic[fixed.columns])
    assert ["label_time", "reported_fraud"] == list(realistic.columns[len(fixed.columns) :])
    assert "datetime64[ns]" == str(realistic["label_time"].dtype)
    event = pd.to_datetime(realistic["trans_date_trans_time"])
    known = realistic["label_time"].notna()
    assert (realistic.loc[known, "label_time"] >= event[known]).all()
    assert realistic["reported_fraud"].isna().tolist() == (~known).tolist()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fixed", None),
        ("realistic", LabelArrival()),
        (
            "alert_recall=0.8, unreported_share=0.2",
            LabelArrival(alert_recall=0.8, unreported_share=0.2),
        ),
    ],
)
def test_parse_label_arrival(text: str, expected: LabelArrival | None) -> None:
    """fixed, realistic, or KEY=VALUE pairs over the defaults."""
    assert expected == parse_label_arrival(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sometimes", "'sometimes' is not fixed, realistic or KEY=VALUE"),
        ("alert_recall=x", "alert_recall='x' is not a number"),
        ("friendly_fraud_share=1", "friendly fraud share must be at least 0 and below 1"),
        ("chargeback_min_days=130", "chargeback days: need 0 < min < max"),
    ],
)
def test_bad_label_arrival_names_the_problem(text: str, message: str) -> None:
    """A bad spec fails with a reason naming the part."""
    with pytest.raises(LabelArrivalError, match=message):
        parse_label_arrival(text)


def test_truncated_lognormal_keeps_the_untruncated_median_inside_the_bounds() -> None:
    """With wide bounds the truncated draw's median is the log-normal's own."""
    draws = truncated_lognormal(
        np.random.default_rng(3), 100_000, median=5.0, sigma=0.5, low=0.01, high=1e6
    )
    assert math.isclose(5.0, float(np.median(draws)), rel_tol=0.02)
