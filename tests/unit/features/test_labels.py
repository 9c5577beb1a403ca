"""When a label is known, what a frame's labels say, and how old a transaction must be."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from feature_frames import DAY, HOUR, sparkov

from fraudops.data.profiles import SPARKOV
from fraudops.features.labels import NEVER_MS, label_arrival, label_known, label_maturity

START_MS = 1_704_067_200_000  # 2024-01-01, the frames' START


def test_a_label_is_known_strictly_after_its_label_time() -> None:
    """Known at t when it arrived before t: not at its own instant, never when it never came."""
    assert (False, True, False) == (
        label_known(1_000, 1_000),
        label_known(999, 1_000),
        label_known(NEVER_MS, 2**62),
    )
    assert [True, False] == label_known(np.array([5, 10]), 10).tolist()


def test_without_label_times_a_label_arrives_a_delay_after_its_transaction() -> None:
    """The fixed rule: the profile's label, known label_delay after the transaction."""
    frame = sparkov({"s": 0, "is_fraud": 1}, {"s": HOUR})
    arrival = label_arrival(frame, SPARKOV, label_delay_ms=DAY * 1000)
    assert [1, 0] == arrival.fraud.tolist()
    assert [START_MS + DAY * 1000, START_MS + (DAY + HOUR) * 1000] == arrival.times_ms.tolist()


def test_label_times_and_reported_values_are_read_as_the_contract_says() -> None:
    """label_time (NaT: never), reported_fraud over the truth, unreported frauds unknown."""
    frame = sparkov({"s": 0, "is_fraud": 0}, {"s": 0, "is_fraud": 1}, {"s": 0, "is_fraud": 1})
    frame = frame.assign(
        label_time=[frame["event_time"][0] + pd.Timedelta(minutes=5), pd.NaT, pd.NaT],
        reported_fraud=[1.0, np.nan, np.nan],
    )
    arrival = label_arrival(frame, SPARKOV, label_delay_ms=7 * DAY * 1000)
    assert [1, 0, 0] == arrival.fraud.tolist()
    assert [START_MS + 300_000, NEVER_MS, NEVER_MS] == arrival.times_ms.tolist()
    assert [0, 0, 0] == arrival.known_at(START_MS + 300_000).tolist()
    assert [1, 0, 0] == arrival.known_by(START_MS + 300_000).tolist()


def test_a_frame_without_labels_never_knows_one() -> None:
    """Scoring-time frames have no label, at any time."""
    arrival = label_arrival(sparkov({"s": 0}, label=False), SPARKOV, label_delay_ms=0)
    assert ([0], [NEVER_MS]) == (arrival.fraud.tolist(), arrival.times_ms.tolist())


def test_maturity_is_the_fraud_label_waits_quantile_when_they_are_slower() -> None:
    """Chargebacks within 1..100 days: 95 % arrive within 95 days, longer than the delay."""
    waits = [day * 86_400.0 for day in range(1, 101)]
    maturity = label_maturity(waits, delay=timedelta(days=7), quantile=0.95)
    assert timedelta(days=95.05) == maturity.age
    assert ("observed", 100) == (maturity.source, maturity.frauds)


def test_maturity_never_falls_below_the_delay_and_needs_enough_frauds() -> None:
    """Quick labels keep the delay (unseen slow ones may still come); too few frauds too."""
    quick = label_maturity([3_600.0] * 50, delay=timedelta(days=2))
    few = label_maturity([90 * 86_400.0] * 10, delay=timedelta(days=2))
    assert (timedelta(days=2), "delay", timedelta(hours=1)) == (
        quick.age,
        quick.source,
        quick.observed,
    )
    assert (timedelta(days=2), "delay", None, 10) == (
        few.age,
        few.source,
        few.observed,
        few.frauds,
    )


def test_a_quantile_outside_zero_one_is_refused() -> None:
    """The quantile is a probability strictly between 0 and 1."""
    with pytest.raises(ValueError, match="quantile"):
        label_maturity([1.0], delay=timedelta(days=1), quantile=1.0)
