"""How well the champion did on a labelled window, with the uncertainty that a few frauds leave.

Precision and recall are proportions of a count (alerts, frauds): Wilson score intervals.
F1 and average precision are not, so they get a stratified percentile bootstrap (frauds and
legitimate transactions resampled apart, keeping the fraud count). A window with fewer frauds
than `min_frauds` says so (`enough_evidence` is False) rather than letting a policy act on it.
An alert is a transaction the caller flagged (in fraudops: score at or above the threshold).
"""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from fraudops.training.metrics import (
    BoolArray,
    RankedScores,
    WeightedMetric,
    binary_labels,
    card_precision_at_k,
    confusion,
    finite_values,
    weighted_bootstrap_ci,
)

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 500
DEFAULT_MIN_FRAUDS = 20
DEFAULT_K = 100
# Fixed so that the same window always gives the same interval.
BOOTSTRAP_SEED = 0


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """A metric on a window and its confidence interval; NaN where the data cannot say."""

    value: float
    low: float
    high: float
    confidence: float
    method: Literal["wilson", "bootstrap"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; NaN becomes None."""
        return {
            "value": finite_or_none(self.value),
            "low": finite_or_none(self.low),
            "high": finite_or_none(self.high),
            "confidence": self.confidence,
            "method": self.method,
        }


@dataclass(frozen=True, kw_only=True)
class WindowPerformance:
    """The champion's decisions and ranking on one labelled window."""

    transactions: int
    frauds: int
    alerts: int
    true_positives: int
    min_frauds: int
    precision: Estimate
    recall: Estimate
    f1: Estimate
    average_precision: Estimate
    card_precision_at_k: float  # mean over the window's days
    card_precision_best_possible: float
    k: int
    start: datetime | None = None
    end: datetime | None = None

    @property
    def enough_evidence(self) -> bool:
        """Whether the window holds enough frauds for a decision to rest on."""
        return self.frauds >= self.min_frauds

    def estimates(self) -> dict[str, Estimate]:
        """The metrics with intervals, by their stable names."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "average_precision": self.average_precision,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO strings, NaN as None)."""
        return {
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "transactions": self.transactions,
            "frauds": self.frauds,
            "alerts": self.alerts,
            "true_positives": self.true_positives,
            "min_frauds": self.min_frauds,
            "enough_evidence": self.enough_evidence,
            **{name: estimate.to_dict() for name, estimate in self.estimates().items()},
            "card_precision_at_k": finite_or_none(self.card_precision_at_k),
            "card_precision_best_possible": finite_or_none(self.card_precision_best_possible),
            "k": self.k,
        }


def finite_or_none(value: float) -> float | None:
    """A float for JSON: NaN and infinities become None."""
    return float(value) if math.isfinite(value) else None


def wilson_interval(
    successes: int, trials: int, *, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """Wilson score interval of a proportion; NaN bounds with no trial."""
    if trials == 0:
        return math.nan, math.nan
    interval = stats.binomtest(successes, trials).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return float(interval.low), float(interval.high)


def _proportion(successes: int, trials: int, *, value: float, confidence: float) -> Estimate:
    """A proportion's estimate (as the training metrics define it) with its Wilson interval."""
    low, high = wilson_interval(successes, trials, confidence=confidence)
    return Estimate(value=value, low=low, high=high, confidence=confidence, method="wilson")


def _bootstrap(
    metric: WeightedMetric,
    labels: BoolArray,
    *,
    confidence: float,
    resamples: int,
) -> Estimate:
    """Stratified bootstrap interval of a weighted metric; NaN throughout without any fraud."""
    if not labels.any():
        nan = math.nan
        return Estimate(value=nan, low=nan, high=nan, confidence=confidence, method="bootstrap")
    interval = weighted_bootstrap_ci(
        metric, labels=labels, n=resamples, seed=BOOTSTRAP_SEED, alpha=1 - confidence
    )
    return Estimate(
        value=interval.estimate,
        low=interval.low,
        high=interval.high,
        confidence=confidence,
        method="bootstrap",
    )


def window_performance(
    *,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    alerts: npt.ArrayLike,
    days: npt.ArrayLike | None = None,
    cards: npt.ArrayLike | None = None,
    k: int = DEFAULT_K,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    min_frauds: int = DEFAULT_MIN_FRAUDS,
    start: datetime | None = None,
    end: datetime | None = None,
) -> WindowPerformance:
    """Precision, recall (Wilson), F1, average precision (bootstrap), card precision@k.

    Card precision@k needs the transactions' days (timestamps are truncated to days) and
    cards; without them it is NaN. An empty window gives NaN metrics and no evidence.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    truth = binary_labels(labels)
    values = finite_values(scores, name="scores", size=truth.size)
    flagged = np.asarray(alerts, dtype=np.bool_)
    if flagged.shape != truth.shape:
        raise ValueError(f"alerts must have shape {truth.shape} like the labels")
    counts = confusion(truth, flagged)
    card_mean = card_best = math.nan
    if days is not None and cards is not None and truth.size:
        cards_result = card_precision_at_k(days=days, cards=cards, scores=values, labels=truth, k=k)
        card_mean, card_best = cards_result.mean, cards_result.best_possible
    return WindowPerformance(
        transactions=int(truth.size),
        frauds=counts.frauds,
        alerts=counts.alerts,
        true_positives=counts.true_positives,
        min_frauds=min_frauds,
        precision=_proportion(
            counts.true_positives, counts.alerts, value=counts.precision, confidence=confidence
        ),
        recall=_proportion(
            counts.true_positives, counts.frauds, value=counts.recall, confidence=confidence
        ),
        f1=_bootstrap(
            RankedScores(truth, flagged.astype(np.float64)).f1,
            truth,
            confidence=confidence,
            resamples=resamples,
        ),
        average_precision=_bootstrap(
            RankedScores(truth, values).average_precision,
            truth,
            confidence=confidence,
            resamples=resamples,
        ),
        card_precision_at_k=card_mean,
        card_precision_best_possible=card_best,
        k=k,
        start=start,
        end=end,
    )


DAILY_COLUMNS = (
    "date",
    "transactions",
    "frauds",
    "alerts",
    "enough_evidence",
    *(
        f"{metric}{suffix}"
        for metric in ("precision", "recall", "f1", "average_precision")
        for suffix in ("", "_low", "_high")
    ),
)


def daily_performance(
    *,
    times: npt.ArrayLike,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    alerts: npt.ArrayLike,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = 200,
    min_frauds: int = 5,
) -> pd.DataFrame:
    """One row per calendar day of `times` (days without a transaction left out), in order.

    Columns: date, transactions, frauds, alerts, enough_evidence, and each of precision,
    recall, f1, average_precision with its `_low` and `_high` bounds.
    """
    truth = binary_labels(labels)
    values = finite_values(scores, name="scores", size=truth.size)
    flagged = np.asarray(alerts, dtype=np.bool_)
    day = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]")).normalize()
    if day.size != truth.size or flagged.shape != truth.shape:
        raise ValueError("times, labels, scores and alerts must have the same length")
    rows: list[dict[str, Any]] = []
    for date in day.unique().sort_values():
        rows_of_day = np.asarray(day == date)
        result = window_performance(
            labels=truth[rows_of_day],
            scores=values[rows_of_day],
            alerts=flagged[rows_of_day],
            confidence=confidence,
            resamples=resamples,
            min_frauds=min_frauds,
        )
        row: dict[str, Any] = {
            "date": date.date(),
            "transactions": result.transactions,
            "frauds": result.frauds,
            "alerts": result.alerts,
            "enough_evidence": result.enough_evidence,
        }
        for name, estimate in result.estimates().items():
            row |= {
                name: estimate.value,
                f"{name}_low": estimate.low,
                f"{name}_high": estimate.high,
            }
        rows.append(row)
    return pd.DataFrame(rows, columns=list(DAILY_COLUMNS))
