"""Card precision@k follows the Fraud Detection Handbook on a hand-made three-day example."""

import datetime as dt

import numpy as np
import pytest

from fraudops.training.metrics import card_precision_at_k

# Day 1: cards A (max 0.9, one fraud), B (0.8, legit), C (0.3, fraud): top 2 = A, B -> 1/2.
# Day 2: A (0.95, legit that day) has been detected and leaves the pool, so the top 2 are
#        C (0.7, fraud) and E (0.65, fraud) -> 2/2; with A kept it would be 1/2.
# Day 3: C was detected on day 2; only F (0.5, fraud) is left, fewer than k -> 1/2.
ROWS = [
    ("2024-01-01T08:00", "A", 0.9, 0),
    ("2024-01-01T09:30", "A", 0.2, 1),
    ("2024-01-01T12:00", "B", 0.8, 0),
    ("2024-01-01T23:59", "C", 0.3, 1),
    ("2024-01-02T00:00", "A", 0.95, 0),
    ("2024-01-02T10:00", "C", 0.7, 1),
    ("2024-01-02T11:00", "D", 0.6, 0),
    ("2024-01-02T12:00", "E", 0.65, 1),
    ("2024-01-03T07:00", "C", 0.9, 1),
    ("2024-01-03T08:00", "F", 0.5, 1),
]


def _columns(rows: list[tuple[str, str, float, int]]) -> dict[str, np.ndarray]:
    times, cards, scores, labels = zip(*rows, strict=True)
    return {
        "days": np.array(times, dtype="datetime64[m]"),
        "cards": np.array(cards),
        "scores": np.array(scores),
        "labels": np.array(labels),
    }


def test_daily_values_remove_detected_cards_and_divide_by_k() -> None:
    """Days give 1/2, 2/2, 1/2: detected cards leave the pool, a short day divides by k."""
    result = card_precision_at_k(**_columns(ROWS), k=2)

    assert (dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)) == result.days
    assert (0.5, 1.0, 0.5) == result.per_day
    assert pytest.approx(2 / 3) == result.mean


def test_counts_compromised_and_detected_cards_per_day() -> None:
    """Compromised cards are counted in the remaining pool, detected ones in the top k."""
    result = card_precision_at_k(**_columns(ROWS), k=2)

    assert (2, 2, 1) == result.compromised_cards_per_day
    assert (1, 2, 1) == result.detected_cards_per_day


def test_best_possible_is_capped_by_the_compromised_cards_of_each_day() -> None:
    """With 2, 2 and 1 compromised cards in the pool a perfect top 2 reaches 1, 1 and 1/2."""
    result = card_precision_at_k(**_columns(ROWS), k=2)

    assert pytest.approx((1.0 + 1.0 + 0.5) / 3) == result.best_possible


def test_result_does_not_depend_on_row_order() -> None:
    """Shuffled transactions give the same daily values."""
    shuffled = [ROWS[i] for i in np.random.default_rng(7).permutation(len(ROWS))]

    assert card_precision_at_k(**_columns(ROWS), k=2) == card_precision_at_k(
        **_columns(shuffled), k=2
    )


def test_equal_scores_rank_by_card_id() -> None:
    """With k=1 and two cards on the same score, the smaller card id takes the slot."""
    result = card_precision_at_k(days=[1, 1], cards=[20, 10], scores=[0.5, 0.5], labels=[0, 1], k=1)

    assert (1.0,) == result.per_day


def test_rejects_k_below_one() -> None:
    """k must be a positive number of cards."""
    with pytest.raises(ValueError, match="k must be at least 1"):
        card_precision_at_k(days=[1], cards=[1], scores=[0.5], labels=[1], k=0)
