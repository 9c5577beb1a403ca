"""choose_threshold picks the F1-optimal or cost-optimal cut, hand-checked, whatever the order."""

import numpy as np
import pytest

from fraudops.training.threshold import DEFAULT_THRESHOLD, choose_threshold

# Ranked by score, labels 1 0 1 1 0 0 1 0 (4 frauds). F1 when alerting the top n:
# n=1 2/5, n=2 2/6, n=3 4/7, n=4 6/8 (best), n=5 6/9, n=6 6/10, n=7 8/11, n=8 8/12.
F1_LABELS = np.array([1, 0, 1, 1, 0, 0, 1, 0])
F1_SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.1])

# Frauds worth 100, 15 and 50 (total 165), review cost 20. Missed + reviews for the top n:
# n=0 165, n=1 65+20=85 (best), n=2 65+40, n=3 50+60, n=4 50+80, n=5 50+100, n=6 0+120.
COST_LABELS = np.array([1, 0, 1, 0, 0, 1])
COST_SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
COST_AMOUNTS = np.array([100.0, 500.0, 15.0, 30.0, 40.0, 50.0])


def test_f1_picks_the_best_cut() -> None:
    """The top four (threshold 0.6) give F1 0.75 with precision and recall 0.75."""
    choice = choose_threshold(labels=F1_LABELS, scores=F1_SCORES)

    assert 0.6 == choice.threshold
    assert pytest.approx(0.75) == choice.value
    assert (0.75, 0.75, 4) == (choice.precision, choice.recall, choice.alerts)
    assert not choice.is_default


def test_f1_tie_goes_to_the_highest_threshold() -> None:
    """Alerting the top one or all four both give F1 2/3; the one with fewer alerts wins."""
    choice = choose_threshold(labels=[1, 0, 0, 1], scores=[0.9, 0.8, 0.7, 0.6])

    assert 0.9 == choice.threshold
    assert pytest.approx(2 / 3) == choice.value


def test_cost_picks_the_cheapest_cut() -> None:
    """With reviews at 20, alerting only the top transaction costs 85, the least of all cuts."""
    choice = choose_threshold(
        labels=COST_LABELS,
        scores=COST_SCORES,
        amounts=COST_AMOUNTS,
        objective="cost",
        review_cost=20.0,
    )

    assert 0.9 == choice.threshold
    assert 85.0 == choice.value
    assert (1.0, 1) == (choice.precision, choice.alerts)
    assert pytest.approx(1 / 3) == choice.recall


def test_cost_can_choose_to_alert_nothing() -> None:
    """Reviews dearer than any fraud: the threshold sits above every score and costs 165."""
    choice = choose_threshold(
        labels=COST_LABELS,
        scores=COST_SCORES,
        amounts=COST_AMOUNTS,
        objective="cost",
        review_cost=200.0,
    )

    assert 0.9 < choice.threshold
    assert 0 == choice.alerts
    assert 165.0 == choice.value


def test_cost_alerts_every_transaction_sharing_the_cut_score() -> None:
    """A cut at 0.9 alerts both 0.9s (15 missed + 2 x 10 = 35), so alerting all (30) wins.

    Counting only the fraud among the tied 0.9s would wrongly price that cut at 15 + 10 = 25.
    """
    choice = choose_threshold(
        labels=[1, 0, 1],
        scores=[0.9, 0.9, 0.5],
        amounts=[100.0, 1.0, 15.0],
        objective="cost",
        review_cost=10.0,
    )

    assert (0.5, 3, 30.0) == (choice.threshold, choice.alerts, choice.value)


@pytest.mark.parametrize("objective", ["f1", "cost"])
def test_choice_does_not_depend_on_input_order(objective: str) -> None:
    """Any permutation of the validation rows gives the same threshold and value."""
    rng = np.random.default_rng(5)
    labels = rng.random(300) < 0.2
    scores = np.round(rng.random(300) + labels * 0.3, 2)  # rounded: many equal scores
    amounts = np.round(rng.exponential(80.0, 300), 2)
    order = rng.permutation(300)

    choices = [
        choose_threshold(
            labels=labels[rows],
            scores=scores[rows],
            amounts=amounts[rows],
            objective=objective,  # type: ignore[arg-type]
            review_cost=5.0,
        )
        for rows in (np.arange(300), order, order[::-1])
    ]

    assert choices[0] == choices[1] == choices[2]


@pytest.mark.parametrize("objective", ["f1", "cost"])
def test_no_fraud_falls_back_to_the_default(objective: str) -> None:
    """Without fraud nothing can be learnt: the default threshold, flagged as such."""
    choice = choose_threshold(
        labels=[0, 0, 0],
        scores=[0.2, 0.4, 0.7],
        amounts=[1.0, 2.0, 3.0],
        objective=objective,  # type: ignore[arg-type]
    )

    assert DEFAULT_THRESHOLD == choice.threshold
    assert choice.is_default
    assert "no fraud" in choice.reason
    assert 1 == choice.alerts


def test_cost_objective_needs_amounts() -> None:
    """Choosing for cost without amounts is refused."""
    with pytest.raises(ValueError, match="needs the transaction amounts"):
        choose_threshold(labels=[0, 1], scores=[0.1, 0.9], objective="cost")
