"""Evaluation metrics of a fraud model: ranking quality, decisions at a threshold, cards, cost.

Every function is pure over arrays. An alert is a transaction whose score is at or above the
threshold (`score >= threshold`), everywhere in fraudops. Undefined values are NaN, never a
warning: ROC AUC needs both classes, average precision and recall need at least one fraud.
Precision with no alert is 0 (the model found nothing), as scikit-learn's `zero_division=0`.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, roc_auc_score

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

DEFAULT_REVIEW_COST = 5.0
"""Cost of an analyst reviewing one alert, in the currency of the amounts."""


def binary_labels(labels: npt.ArrayLike) -> BoolArray:
    """Labels as a boolean array (True is fraud), refusing anything but 0/1 or booleans."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {array.shape}")
    if array.dtype == np.bool_:
        return array
    if array.size and not np.isin(array, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return array.astype(np.bool_)


def finite_values(values: npt.ArrayLike, *, name: str, size: int) -> FloatArray:
    """Values as float64, checking they are finite and as many as the labels."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},) like the labels, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite (no NaN or infinity)")
    return array


@dataclass(frozen=True, kw_only=True)
class Confusion:
    """Counts of a decision against the labels, and the rates derived from them."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def alerts(self) -> int:
        """Transactions flagged as fraud."""
        return self.true_positives + self.false_positives

    @property
    def frauds(self) -> int:
        """Transactions labelled fraud."""
        return self.true_positives + self.false_negatives

    @property
    def precision(self) -> float:
        """Share of alerts that are fraud; 0 with no alert."""
        return self.true_positives / self.alerts if self.alerts else 0.0

    @property
    def recall(self) -> float:
        """Share of frauds alerted; NaN with no fraud."""
        return self.true_positives / self.frauds if self.frauds else math.nan

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; NaN with no fraud, 0 when both are 0."""
        if not self.frauds:
            return math.nan
        tp = self.true_positives
        return 2 * tp / (2 * tp + self.false_positives + self.false_negatives)


def confusion(labels: npt.ArrayLike, alerts: npt.ArrayLike) -> Confusion:
    """Confusion counts of boolean alerts against 0/1 labels."""
    truth = binary_labels(labels)
    flagged = np.asarray(alerts, dtype=np.bool_)
    if flagged.shape != truth.shape:
        raise ValueError(f"alerts must have shape {truth.shape} like the labels")
    tp = int(np.count_nonzero(truth & flagged))
    fp = int(np.count_nonzero(~truth & flagged))
    fn = int(np.count_nonzero(truth & ~flagged))
    return Confusion(
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        true_negatives=truth.size - tp - fp - fn,
    )


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve; NaN unless both classes are present."""
    truth = binary_labels(labels)
    values = finite_values(scores, name="scores", size=truth.size)
    if truth.all() or not truth.any():
        return math.nan
    return float(roc_auc_score(truth, values))


def average_precision(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Average precision (area under the precision-recall curve); NaN with no fraud."""
    truth = binary_labels(labels)
    values = finite_values(scores, name="scores", size=truth.size)
    if not truth.any():
        return math.nan
    return float(average_precision_score(truth, values))


@dataclass(frozen=True, kw_only=True)
class CardPrecisionResult:
    """Daily card precision@k: the share of the k most suspicious cards that are compromised."""

    k: int
    days: tuple[object, ...]
    per_day: tuple[float, ...]
    compromised_cards_per_day: tuple[int, ...]
    detected_cards_per_day: tuple[int, ...]

    @property
    def mean(self) -> float:
        """Mean of the daily values; NaN with no day."""
        return float(np.mean(self.per_day)) if self.per_day else math.nan

    @property
    def best_possible(self) -> float:
        """The mean a perfect ranking would reach: few compromised cards a day cap it below 1."""
        if not self.per_day:
            return math.nan
        return float(np.mean([min(n, self.k) / self.k for n in self.compromised_cards_per_day]))


def _day_labels(days: npt.ArrayLike) -> npt.NDArray[np.generic]:
    """Days as an array, timestamps truncated to their calendar day."""
    array = np.asarray(days)
    if np.issubdtype(array.dtype, np.datetime64):
        return array.astype("datetime64[D]")
    return array


def card_precision_at_k(
    *,
    days: npt.ArrayLike,
    cards: npt.ArrayLike,
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    k: int = 100,
) -> CardPrecisionResult:
    """Card precision@k per day as the Fraud Detection Handbook defines it.

    Each day, a card scores the maximum of its transactions' scores and is compromised if any
    of them is fraud; the day's value is the number of compromised cards among its k highest
    scores divided by k, even on a day with fewer than k cards (the handbook's choice: the
    investigators could have checked k cards). A card found compromised in a day's top k
    leaves the pool for the following days. Equal scores rank in the order of the card ids.
    Timestamps (datetime64) are truncated to their day.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    truth = binary_labels(labels)
    values = finite_values(scores, name="scores", size=truth.size)
    day_values = _day_labels(days)
    card_values = np.asarray(cards)
    if day_values.shape != truth.shape or card_values.shape != truth.shape:
        raise ValueError("days, cards, scores and labels must have the same length")

    unique_days, day_codes = np.unique(day_values, return_inverse=True)
    unique_cards, card_codes = np.unique(card_values, return_inverse=True)
    # One row per (day, card): max score, any fraud. Sorting by day, then card makes each
    # group contiguous and each day's cards ordered by id for tie-breaking.
    order = np.lexsort((card_codes, day_codes))
    pair_keys = day_codes[order].astype(np.int64) * unique_cards.size + card_codes[order]
    starts = np.flatnonzero(np.r_[True, pair_keys[1:] != pair_keys[:-1]])
    pair_day = day_codes[order][starts]
    pair_card = card_codes[order][starts]
    pair_score = np.maximum.reduceat(values[order], starts) if starts.size else values[:0]
    pair_fraud = np.logical_or.reduceat(truth[order], starts) if starts.size else truth[:0]

    detected = np.zeros(unique_cards.size, dtype=np.bool_)
    day_starts = np.searchsorted(pair_day, np.arange(unique_days.size), side="left")
    day_ends = np.r_[day_starts[1:], pair_day.size]
    per_day: list[float] = []
    compromised: list[int] = []
    found: list[int] = []
    for start, end in zip(day_starts, day_ends, strict=True):
        in_pool = ~detected[pair_card[start:end]]
        day_cards = pair_card[start:end][in_pool]
        day_fraud = pair_fraud[start:end][in_pool]
        # A stable sort on the negated score keeps the card-id order among equal scores.
        top = np.argsort(-pair_score[start:end][in_pool], kind="stable")[:k]
        hits = day_cards[top][day_fraud[top]]
        detected[hits] = True
        per_day.append(hits.size / k)
        compromised.append(int(np.count_nonzero(day_fraud)))
        found.append(int(hits.size))
    return CardPrecisionResult(
        k=k,
        days=tuple(unique_days.tolist()),
        per_day=tuple(per_day),
        compromised_cards_per_day=tuple(compromised),
        detected_cards_per_day=tuple(found),
    )


@dataclass(frozen=True, kw_only=True)
class CostResult:
    """What fraud costs without a model and with it (missed fraud plus alert reviews)."""

    baseline_cost: float
    missed_fraud_amount: float
    review_cost_total: float
    alerts: int

    @property
    def model_cost(self) -> float:
        """Fraud amount missed plus the cost of reviewing every alert."""
        return self.missed_fraud_amount + self.review_cost_total

    @property
    def savings(self) -> float:
        """Baseline cost minus the model's cost (negative when the model costs more)."""
        return self.baseline_cost - self.model_cost

    @property
    def savings_ratio(self) -> float:
        """Savings as a share of the baseline cost; 0 with no fraud."""
        return self.savings / self.baseline_cost if self.baseline_cost > 0 else 0.0


def cost_savings(
    *,
    amounts: npt.ArrayLike,
    labels: npt.ArrayLike,
    alerts: npt.ArrayLike,
    review_cost: float = DEFAULT_REVIEW_COST,
) -> CostResult:
    """Cost of fraud with the model's alerts against the baseline of losing every fraud."""
    truth = binary_labels(labels)
    money = finite_values(amounts, name="amounts", size=truth.size)
    flagged = np.asarray(alerts, dtype=np.bool_)
    if flagged.shape != truth.shape:
        raise ValueError(f"alerts must have shape {truth.shape} like the labels")
    if review_cost < 0:
        raise ValueError(f"review_cost must not be negative, got {review_cost}")
    alert_count = int(np.count_nonzero(flagged))
    return CostResult(
        baseline_cost=float(money[truth].sum()),
        missed_fraud_amount=float(money[truth & ~flagged].sum()),
        review_cost_total=review_cost * alert_count,
        alerts=alert_count,
    )


@dataclass(frozen=True, kw_only=True)
class EvaluationResult:
    """A model's scores judged against labels: ranking, decisions at a threshold, cards, cost."""

    threshold: float
    transactions: int
    roc_auc: float
    average_precision: float
    confusion: Confusion
    card_precision: CardPrecisionResult | None = None
    cost: CostResult | None = None

    @property
    def precision(self) -> float:
        """Share of alerts that are fraud at the threshold."""
        return self.confusion.precision

    @property
    def recall(self) -> float:
        """Share of frauds alerted at the threshold."""
        return self.confusion.recall

    @property
    def f1(self) -> float:
        """F1 score at the threshold."""
        return self.confusion.f1

    def to_dict(self) -> dict[str, float]:
        """Metrics under stable snake_case names (MLflow metric names); absent parts omitted."""
        metrics: dict[str, float] = {
            "roc_auc": self.roc_auc,
            "average_precision": self.average_precision,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "threshold": self.threshold,
            "transactions": self.transactions,
            "frauds": self.confusion.frauds,
            "alerts": self.confusion.alerts,
            "true_positives": self.confusion.true_positives,
            "false_positives": self.confusion.false_positives,
            "false_negatives": self.confusion.false_negatives,
            "true_negatives": self.confusion.true_negatives,
        }
        if self.card_precision is not None:
            metrics[f"card_precision_at_{self.card_precision.k}"] = self.card_precision.mean
            metrics[f"card_precision_at_{self.card_precision.k}_best_possible"] = (
                self.card_precision.best_possible
            )
        if self.cost is not None:
            metrics["cost_baseline"] = self.cost.baseline_cost
            metrics["cost_model"] = self.cost.model_cost
            metrics["cost_savings"] = self.cost.savings
            metrics["cost_savings_ratio"] = self.cost.savings_ratio
        return metrics


def evaluate(
    *,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    threshold: float,
    amounts: npt.ArrayLike | None = None,
    days: npt.ArrayLike | None = None,
    cards: npt.ArrayLike | None = None,
    k: int = 100,
    review_cost: float = DEFAULT_REVIEW_COST,
) -> EvaluationResult:
    """Every metric of a scored, labelled set; card precision needs days and cards, cost amounts."""
    truth = binary_labels(labels)
    values = finite_values(scores, name="scores", size=truth.size)
    alerts = values >= threshold
    card_result = None
    if (days is None) != (cards is None):
        raise ValueError("card precision needs both days and cards")
    if days is not None and cards is not None:
        card_result = card_precision_at_k(days=days, cards=cards, scores=values, labels=truth, k=k)
    cost_result = None
    if amounts is not None:
        cost_result = cost_savings(
            amounts=amounts, labels=truth, alerts=alerts, review_cost=review_cost
        )
    return EvaluationResult(
        threshold=float(threshold),
        transactions=int(truth.size),
        roc_auc=roc_auc(truth, values),
        average_precision=average_precision(truth, values),
        confusion=confusion(truth, alerts),
        card_precision=card_result,
        cost=cost_result,
    )


@dataclass(frozen=True, kw_only=True)
class ConfidenceInterval:
    """A metric's value on the data and its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    resamples: int
    """Resamples on which the metric was defined (NaN results are left out)."""


MetricFunction = Callable[[BoolArray, FloatArray], float]
WeightedMetric = Callable[[FloatArray], float]
"""A metric of fixed labels and scores for any row weights (a resample's row counts)."""


class RankedScores:
    """One model's scores sorted once: average precision and F1 for any row weights.

    A bootstrap resample is a vector of row counts; with those counts as weights the metrics
    equal scikit-learn's on the duplicated rows, in a few array passes instead of a sort
    and a validation per resample.
    """

    def __init__(self, truth: BoolArray, scores: FloatArray, threshold: float = 0.5) -> None:
        self.order = np.argsort(-scores, kind="stable")
        ranked = scores[self.order]
        # The last row of each run of equal scores: one point of the precision-recall curve.
        self.ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
        self.fraud_ranked = truth[self.order].astype(np.float64)
        self.truth = truth
        self.alerts = scores >= threshold

    def average_precision(self, weights: FloatArray) -> float:
        """Weighted average precision, as scikit-learn computes it with sample weights."""
        w = weights[self.order]
        frauds = np.cumsum(w * self.fraud_ranked)[self.ends]
        flagged = np.cumsum(w)[self.ends]
        total = frauds[-1] if frauds.size else 0.0
        if total <= 0:
            return math.nan
        precision = np.divide(frauds, flagged, out=np.zeros_like(frauds), where=flagged > 0)
        recall_steps = np.diff(frauds, prepend=0.0) / total
        return float(np.sum(recall_steps * precision))

    def f1(self, weights: FloatArray) -> float:
        """Weighted F1 of the alerts (scores at or above the threshold); NaN with no fraud."""
        truth = self.truth
        true_positive = float(weights[truth & self.alerts].sum())
        false_positive = float(weights[~truth & self.alerts].sum())
        false_negative = float(weights[truth & ~self.alerts].sum())
        if true_positive + false_negative <= 0:
            return math.nan
        return 2 * true_positive / (2 * true_positive + false_positive + false_negative)


def bootstrap_counts(
    truth: BoolArray, *, n: int, rng: np.random.Generator, stratified: bool = True
) -> Iterator[FloatArray]:
    """The row counts of `n` bootstrap resamples, one at a time (n x rows at once would take
    hundreds of MB). Stratified: frauds and legitimate transactions are drawn apart, so each
    resample keeps the fraud count (rare frauds would otherwise leave resamples without any).
    """
    groups = (
        [g for g in (np.flatnonzero(truth), np.flatnonzero(~truth)) if g.size]
        if stratified
        else [np.arange(truth.size)]
    )
    for _ in range(n):
        rows = np.concatenate([rng.choice(group, size=group.size) for group in groups])
        yield np.bincount(rows, minlength=truth.size).astype(np.float64)


def weighted_bootstrap_ci(
    metric: WeightedMetric,
    *,
    labels: npt.ArrayLike,
    n: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    stratified: bool = True,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of a weighted metric (e.g. `RankedScores(...).f1`) over
    the labels' rows: `metric(counts)` for each resample's row counts, `metric(ones)` for the
    estimate. Resamples where the metric is NaN are left out; with none left the bounds are
    NaN."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    truth = binary_labels(labels)
    if not truth.size:
        raise ValueError("a bootstrap needs at least one transaction")
    rng = np.random.default_rng(seed)
    estimates = np.array(
        [metric(counts) for counts in bootstrap_counts(truth, n=n, rng=rng, stratified=stratified)]
    )
    defined = estimates[~np.isnan(estimates)]
    low, high = (
        np.quantile(defined, [alpha / 2, 1 - alpha / 2]) if defined.size else (math.nan,) * 2
    )
    return ConfidenceInterval(
        estimate=float(metric(np.ones(truth.size))),
        low=float(low),
        high=float(high),
        confidence=1 - alpha,
        resamples=int(defined.size),
    )


def bootstrap_ci(
    metric_fn: MetricFunction,
    *,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    n: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    stratified: bool = True,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of `metric_fn(labels, scores)`, computed on each
    resample's rows (`weighted_bootstrap_ci` with the rows repeated as counted): for metrics
    that have no weighted form. Average precision and F1 have one (`RankedScores`), much
    quicker.
    """
    truth = binary_labels(labels)
    values = finite_values(scores, name="scores", size=truth.size)
    positions = np.arange(truth.size)

    def on_rows(counts: FloatArray) -> float:
        rows = np.repeat(positions, counts.astype(np.intp))
        return metric_fn(truth[rows], values[rows])

    return weighted_bootstrap_ci(
        on_rows, labels=truth, n=n, seed=seed, alpha=alpha, stratified=stratified
    )
