"""The decision threshold, chosen on validation data for F1 or for the lowest fraud cost.

A transaction is alerted when its score is at or above the threshold. Candidates are the
distinct scores themselves, so the choice does not depend on the order of the input.
"""

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from sklearn.metrics import precision_recall_curve

from fraudops.training.metrics import (
    DEFAULT_REVIEW_COST,
    binary_labels,
    confusion,
    cost_savings,
    finite_values,
)

ThresholdObjective = Literal["f1", "cost"]

DEFAULT_THRESHOLD = 0.5
"""Threshold used when the data cannot decide one (no fraud to find)."""

# Objective values closer than this (relative) are ties, so float summation order cannot
# change the choice; a tie goes to the highest threshold, the one with the fewest alerts.
_RELATIVE_TIE = 1e-9


@dataclass(frozen=True, kw_only=True)
class ThresholdChoice:
    """A chosen threshold, the objective's value there and what it does on the data."""

    threshold: float
    objective: ThresholdObjective
    value: float
    """F1 (objective f1) or fraud amount missed plus review cost (objective cost)."""
    precision: float
    recall: float
    alerts: int
    is_default: bool
    reason: str


def choose_threshold(
    *,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    amounts: npt.ArrayLike | None = None,
    objective: ThresholdObjective = "f1",
    review_cost: float = DEFAULT_REVIEW_COST,
    default: float = DEFAULT_THRESHOLD,
) -> ThresholdChoice:
    """Threshold maximising F1, or minimising missed fraud amount plus review_cost per alert.

    With no fraud in the data nothing can be learnt, so `default` is returned with
    `is_default` set. Among equally good thresholds the highest (fewest alerts) wins.
    """
    if objective not in get_args(ThresholdObjective):
        raise ValueError(f"objective must be one of {get_args(ThresholdObjective)}")
    truth = binary_labels(labels)
    values = finite_values(scores, name="scores", size=truth.size)
    money = None
    if objective == "cost":
        if amounts is None:
            raise ValueError("the cost objective needs the transaction amounts")
        money = finite_values(amounts, name="amounts", size=truth.size)

    if not truth.any():
        threshold = default
        is_default = True
        reason = f"no fraud in the data: default threshold {default}"
    elif money is None:
        threshold = _f1_optimal(truth, values)
        is_default = False
        reason = f"maximises F1 over {truth.size} transactions"
    else:
        threshold = _cost_optimal(truth, values, money, review_cost)
        is_default = False
        reason = (
            f"minimises missed fraud amount plus {review_cost} per alert"
            f" over {truth.size} transactions"
        )

    alerts = values >= threshold
    counts = confusion(truth, alerts)
    if money is None:
        value = counts.f1
    else:
        value = cost_savings(
            amounts=money, labels=truth, alerts=alerts, review_cost=review_cost
        ).model_cost
    return ThresholdChoice(
        threshold=threshold,
        objective=objective,
        value=value,
        precision=counts.precision,
        recall=counts.recall,
        alerts=counts.alerts,
        is_default=is_default,
        reason=reason,
    )


def _f1_optimal(truth: npt.NDArray[np.bool_], values: npt.NDArray[np.float64]) -> float:
    """Score threshold of the precision-recall curve with the highest F1 (data has fraud)."""
    precision, recall, thresholds = precision_recall_curve(truth, values)
    # The curve's last point (precision 1, recall 0) has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    best = np.flatnonzero(f1 >= f1.max() * (1 - _RELATIVE_TIE))[-1]
    return float(thresholds[best])


def _cost_optimal(
    truth: npt.NDArray[np.bool_],
    values: npt.NDArray[np.float64],
    money: npt.NDArray[np.float64],
    review_cost: float,
) -> float:
    """Score threshold with the lowest missed fraud amount plus review cost, or none alerted."""
    order = np.argsort(-values, kind="stable")
    ranked = values[order]
    caught = np.cumsum(np.where(truth, money, 0.0)[order])
    alerted = np.arange(1, ranked.size + 1)
    # Alerting at a score alerts every transaction with that score: keep each group's end.
    group_end = np.r_[ranked[1:] != ranked[:-1], True]
    total = float(money[truth].sum())
    # The first candidate alerts nothing; then thresholds descend, so alerts grow.
    thresholds = np.r_[np.nextafter(ranked[0], math.inf), ranked[group_end]]
    costs = np.r_[total, total - caught[group_end] + review_cost * alerted[group_end]]
    tolerance = _RELATIVE_TIE * max(1.0, abs(total))
    best = np.flatnonzero(costs <= costs.min() + tolerance)[0]
    return float(thresholds[best])


@dataclass(frozen=True, kw_only=True)
class CapacityChoice:
    """The review threshold that fits an alert budget, and the alerts per day it gives."""

    threshold: float
    capacity: float  # alerts per day the analysts can review
    days: float  # length of the data the rate was measured on
    alerts: int  # transactions of that data at or above the threshold

    @property
    def alerts_per_day(self) -> float:
        """Expected alerts per day at this threshold."""
        return self.alerts / self.days


def capacity_threshold(*, scores: npt.ArrayLike, days: float, capacity: float) -> CapacityChoice:
    """The lowest threshold whose alerts per day on the data stay within `capacity`.

    Every transaction scoring at or above the threshold is an alert (a review or a decline).
    Ties are alerted together, so the budget may be under-used by a tie at its edge; with
    more capacity than transactions, every transaction is alerted.
    """
    if not days > 0 or not capacity >= 0:
        msg = f"capacity needs days > 0 and capacity >= 0, got {days} and {capacity}"
        raise ValueError(msg)
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        msg = "cannot fit a review threshold to an alert budget without scores"
        raise ValueError(msg)
    ranked = np.sort(values)[::-1]
    budget = math.floor(capacity * days + 1e-9)
    # Alerting at ranked[i] alerts everything scoring at least as much: i + 1 at a group's end.
    group_end = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
    fitting = group_end[group_end + 1 <= budget]
    if fitting.size == 0:
        threshold = float(np.nextafter(ranked[0], math.inf))
        alerts = 0
    else:
        threshold = float(ranked[fitting[-1]])
        alerts = int(fitting[-1]) + 1
    return CapacityChoice(threshold=threshold, capacity=capacity, days=days, alerts=alerts)
