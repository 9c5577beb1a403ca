"""evaluate, cost_savings and bootstrap_ci against hand-computed values and degenerate inputs."""

import math

import numpy as np
import pytest

from fraudops.training.metrics import (
    RankedScores,
    average_precision,
    bootstrap_ci,
    confusion,
    cost_savings,
    evaluate,
    roc_auc,
    weighted_bootstrap_ci,
)

# Ranked by score: 0.9 F, 0.8 L, 0.7 F, 0.4 L, 0.35 F, 0.2 L, 0.1 L, 0.05 L.
# ROC AUC: frauds beat 5 + 4 + 3 of the 15 fraud-legit pairs = 12/15 = 0.8.
# AP: recall steps of 1/3 at precisions 1, 2/3, 3/5 -> (1 + 2/3 + 3/5) / 3 = 34/45.
# At 0.5: alerts 0.9, 0.8, 0.7 -> TP 2, FP 1, FN 1, TN 4.
LABELS = np.array([0, 0, 1, 0, 1, 1, 0, 0])
SCORES = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.7, 0.2, 0.05])
AMOUNTS = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0])


def test_cost_savings_hand_example() -> None:
    """Baseline 155 lost; the model misses 55 and pays 2 x 2 for reviews, saving 96."""
    result = cost_savings(
        amounts=[100.0, 50.0, 20.0, 10.0, 5.0],
        labels=[1, 1, 0, 0, 1],
        alerts=[True, False, True, False, False],
        review_cost=2.0,
    )

    assert 155.0 == result.baseline_cost
    assert 55.0 == result.missed_fraud_amount
    assert 4.0 == result.review_cost_total
    assert 59.0 == result.model_cost
    assert 96.0 == result.savings
    assert pytest.approx(96 / 155) == result.savings_ratio


def test_cost_savings_without_fraud_has_zero_ratio_and_negative_savings() -> None:
    """With no fraud, reviews are pure cost and the ratio is 0 rather than a division by 0."""
    result = cost_savings(amounts=[10.0, 20.0], labels=[0, 0], alerts=[True, False], review_cost=3)

    assert -3.0 == result.savings
    assert 0.0 == result.savings_ratio


def test_evaluate_matches_hand_numbers() -> None:
    """AUC 0.8, AP 34/45, precision = recall = F1 = 2/3 and the confusion counts at 0.5."""
    result = evaluate(labels=LABELS, scores=SCORES, threshold=0.5)

    assert pytest.approx(0.8) == result.roc_auc
    assert pytest.approx(34 / 45) == result.average_precision
    assert pytest.approx(2 / 3) == result.precision
    assert pytest.approx(2 / 3) == result.recall
    assert pytest.approx(2 / 3) == result.f1
    assert (2, 1, 1, 4) == (
        result.confusion.true_positives,
        result.confusion.false_positives,
        result.confusion.false_negatives,
        result.confusion.true_negatives,
    )


def test_evaluate_cost_and_card_precision() -> None:
    """Frauds worth 140, 30 missed plus 3 alerts at 5: savings 95; card precision@2 over 2 days."""
    result = evaluate(
        labels=LABELS,
        scores=SCORES,
        threshold=0.5,
        amounts=AMOUNTS,
        days=[1, 1, 1, 1, 2, 2, 2, 2],
        cards=["a", "b", "c", "d", "a", "e", "f", "g"],
        k=2,
        review_cost=5.0,
    )
    metrics = result.to_dict()

    assert 95.0 == metrics["cost_savings"]
    assert pytest.approx(95 / 140) == metrics["cost_savings_ratio"]
    # Day 1: d 0.8 legit, b 0.4 legit -> 0; day 2: a 0.9 fraud, e 0.7 fraud -> 1.
    assert 0.5 == metrics["card_precision_at_2"]


def test_to_dict_has_stable_metric_names() -> None:
    """The metric names logged to MLflow are fixed, card precision named after k."""
    result = evaluate(
        labels=LABELS, scores=SCORES, threshold=0.5, amounts=AMOUNTS, days=LABELS, cards=LABELS
    )

    assert [
        "roc_auc",
        "average_precision",
        "precision",
        "recall",
        "f1",
        "threshold",
        "transactions",
        "frauds",
        "alerts",
        "true_positives",
        "false_positives",
        "false_negatives",
        "true_negatives",
        "card_precision_at_100",
        "card_precision_at_100_best_possible",
        "cost_baseline",
        "cost_model",
        "cost_savings",
        "cost_savings_ratio",
    ] == list(result.to_dict())


def test_to_dict_leaves_out_parts_not_computed() -> None:
    """Without days, cards and amounts there is no card precision and no cost."""
    metrics = evaluate(labels=LABELS, scores=SCORES, threshold=0.5).to_dict()

    assert not any(name.startswith(("card_", "cost_")) for name in metrics)


def test_all_legitimate_gives_undefined_ranking_and_recall() -> None:
    """No fraud: AUC, AP, recall and F1 are NaN, precision 0, and no warning escapes."""
    result = evaluate(labels=[0, 0, 0], scores=[0.1, 0.6, 0.9], threshold=0.5)

    assert math.isnan(result.roc_auc)
    assert math.isnan(result.average_precision)
    assert math.isnan(result.recall)
    assert math.isnan(result.f1)
    assert 0.0 == result.precision
    assert 2 == result.confusion.alerts


def test_all_fraud_has_perfect_average_precision_and_undefined_auc() -> None:
    """Only frauds: AP is 1, AUC is NaN, and recall counts the alerted ones."""
    result = evaluate(labels=[1, 1, 1, 1], scores=[0.1, 0.6, 0.9, 0.7], threshold=0.5)

    assert math.isnan(result.roc_auc)
    assert 1.0 == result.average_precision
    assert 1.0 == result.precision
    assert 0.75 == result.recall


def test_constant_scores_rank_at_chance() -> None:
    """Equal scores: AUC 0.5, AP the fraud rate; above them no alert, precision and F1 0."""
    result = evaluate(labels=[0, 1, 0, 0], scores=[0.3] * 4, threshold=0.5)

    assert 0.5 == result.roc_auc
    assert 0.25 == result.average_precision
    assert 0 == result.confusion.alerts
    assert (0.0, 0.0, 0.0) == (result.precision, result.recall, result.f1)


def test_empty_input_is_all_undefined() -> None:
    """No transactions at all: no crash, NaN ranking metrics and zero counts."""
    result = evaluate(labels=[], scores=[], threshold=0.5)

    assert math.isnan(result.roc_auc)
    assert 0 == result.transactions


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([0, 2], [0.1, 0.2], "labels must be 0 or 1"),
        ([0, 1], [0.1], "scores must have shape"),
        ([0, 1], [0.1, math.nan], "scores must be finite"),
    ],
)
def test_rejects_malformed_inputs(labels: list[int], scores: list[float], message: str) -> None:
    """Labels other than 0/1, mismatched lengths and NaN scores are refused by name."""
    with pytest.raises(ValueError, match=message):
        evaluate(labels=labels, scores=scores, threshold=0.5)


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible() -> None:
    """The interval holds the full-data AUC and the same seed gives the same interval."""
    rng = np.random.default_rng(1)
    labels = rng.random(400) < 0.1
    scores = rng.random(400) + labels * 0.5

    first = bootstrap_ci(roc_auc, labels=labels, scores=scores, n=100, seed=3)
    second = bootstrap_ci(roc_auc, labels=labels, scores=scores, n=100, seed=3)

    assert first == second
    assert first.low < first.estimate < first.high
    assert 100 == first.resamples
    assert 0.95 == first.confidence


def test_bootstrap_of_a_perfect_ranking_is_a_point() -> None:
    """Stratified resamples of separable scores always have AUC 1."""
    ci = bootstrap_ci(roc_auc, labels=[0, 0, 0, 1, 1], scores=[0.1, 0.2, 0.3, 0.8, 0.9], n=50)

    assert (1.0, 1.0, 1.0) == (ci.estimate, ci.low, ci.high)


def test_bootstrap_leaves_out_resamples_where_the_metric_is_undefined() -> None:
    """Unstratified resamples of one fraud in ten often lack it; those do not count."""
    labels = [1] + [0] * 9
    scores = np.linspace(1.0, 0.1, 10)

    ci = bootstrap_ci(
        average_precision, labels=labels, scores=scores, n=200, seed=0, stratified=False
    )

    assert 0 < ci.resamples < 200
    assert 1.0 == ci.high


def test_weighted_bootstrap_gives_the_intervals_of_the_resampled_rows() -> None:
    """Row counts as weights: the same average precision and F1 intervals as scikit-learn's
    metrics on the duplicated rows of the same resamples, with tied scores among them."""
    rng = np.random.default_rng(5)
    labels = rng.random(3_000) < 0.02
    scores = np.round(rng.random(3_000) * 0.6 + labels * rng.random(3_000) * 0.4, 2)
    alerts = (scores >= 0.5).astype(np.float64)
    ranked, flagged = RankedScores(labels, scores), RankedScores(labels, alerts)

    def f1_of_alerts(truth: np.ndarray, values: np.ndarray) -> float:
        return confusion(truth, values >= 0.5).f1

    pairs = (
        (ranked.average_precision, average_precision, scores),
        (flagged.f1, f1_of_alerts, alerts),
    )
    for weighted, on_rows, values in pairs:
        fast = weighted_bootstrap_ci(weighted, labels=labels, n=60, seed=2)
        slow = bootstrap_ci(on_rows, labels=labels, scores=values, n=60, seed=2)
        assert fast.resamples == slow.resamples == 60
        for mine, theirs in ((fast.estimate, slow.estimate), (fast.low, slow.low)):
            assert mine == pytest.approx(theirs, rel=1e-12)
        assert fast.high == pytest.approx(slow.high, rel=1e-12)
        assert fast.low < fast.estimate < fast.high
