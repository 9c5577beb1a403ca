"""The review threshold fitted to an alert budget: alerts per day within review_capacity."""

import dataclasses

import numpy as np
import pytest

from fraudops.config import Settings
from fraudops.scoring.serving import decision_thresholds
from fraudops.training.bundle import ModelBundle
from fraudops.training.threshold import CapacityChoice, capacity_threshold
from fraudops.training.trainer import TrainingResult, fit_review_capacity
from fraudops.training.workflow import review_context


def test_the_threshold_alerts_the_capacity_times_the_days() -> None:
    """10 alerts a day over 5 days of distinct scores: exactly the top 50 are alerted."""
    scores = np.random.default_rng(1).random(10_000)
    choice = capacity_threshold(scores=scores, days=5.0, capacity=10.0)
    assert 50 == choice.alerts == int((scores >= choice.threshold).sum())
    assert 10.0 == choice.alerts_per_day
    assert np.sort(scores)[-50] == choice.threshold


def test_a_tie_at_the_edge_of_the_budget_is_left_out_whole() -> None:
    """Alerting a tied score alerts all of it, so a tie crossing the budget stays below it."""
    scores = [0.9, 0.8, 0.7, 0.7, 0.7, 0.1]
    choice = capacity_threshold(scores=scores, days=1.0, capacity=3.0)
    assert (0.8, 2) == (choice.threshold, choice.alerts)


def test_no_budget_alerts_nothing_and_a_large_one_alerts_everything() -> None:
    """Capacity 0 puts the threshold above every score; more capacity than rows alerts all."""
    scores = [0.2, 0.5, 0.9]
    nothing = capacity_threshold(scores=scores, days=1.0, capacity=0.0)
    assert 0 == nothing.alerts
    assert nothing.threshold > 0.9
    everything = capacity_threshold(scores=scores, days=1.0, capacity=100.0)
    assert (0.2, 3) == (everything.threshold, everything.alerts)


@pytest.mark.parametrize(("days", "capacity"), [(0.0, 1.0), (1.0, -1.0)])
def test_impossible_budgets_are_refused(days: float, capacity: float) -> None:
    """Days must be positive and capacity not negative."""
    with pytest.raises(ValueError, match="capacity needs"):
        capacity_threshold(scores=[0.5], days=days, capacity=capacity)


def test_training_fits_the_review_threshold_on_the_validation_days(
    default_training: TrainingResult,
) -> None:
    """On the validation period the fitted threshold gives at most, and about, the capacity."""
    result = default_training
    review = fit_review_capacity(
        result.validation_scores, split=result.split, capacity=40.0, decline=1.0
    )
    assert review is not None
    days = (result.split.validation_end - result.split.validation_start).total_seconds() / 86_400
    alerted = int((result.validation_scores >= review.threshold).sum())
    assert alerted == review.alerts
    assert 38.0 <= alerted / days <= 40.0
    assert (
        fit_review_capacity(
            result.validation_scores, split=result.split, capacity=None, decline=1.0
        )
        is None
    )


def test_the_service_reviews_from_the_fitted_threshold_unless_a_setting_says_otherwise(
    default_training: TrainingResult,
) -> None:
    """A fitted review threshold is the review threshold; FRAUDOPS_REVIEW_THRESHOLD overrides it."""
    plain = default_training.bundle
    fitted = ModelBundle(
        spec=plain.spec,
        estimator=plain.estimator,
        threshold=0.6,
        model_type=plain.model_type,
        training={"review_capacity": "40.0", "review_threshold": "0.05"},
    )
    assert (0.05, 0.6) == decision_thresholds(fitted, Settings())
    assert (0.1, 0.6) == decision_thresholds(fitted, Settings(review_threshold=0.1))
    assert 40.0 == fitted.review_capacity
    assert (plain.threshold / 2, plain.threshold) == decision_thresholds(plain, Settings())
    assert plain.review_capacity is None


def test_the_training_report_states_the_alert_budget(default_training: TrainingResult) -> None:
    """The report lists capacity, review threshold and validation alerts a day; none without."""
    bundle = dataclasses.replace(
        default_training.bundle, training={"review_capacity": "40.0", "review_threshold": "0.05"}
    )
    budgeted = dataclasses.replace(
        default_training,
        bundle=bundle,
        review=CapacityChoice(threshold=0.05, capacity=40.0, days=7.0, alerts=273),
    )
    assert {
        "review capacity (alerts per day)": "40",
        "review threshold": "0.05",
        "validation alerts per day": "39.0",
    } == review_context(budgeted)
    assert {} == review_context(default_training)
