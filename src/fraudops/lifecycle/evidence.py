"""Evidence that one model beats another: a paired, stratified bootstrap of a metric's difference.

Both models are judged on the same labelled transactions; every resample draws the same rows
for both (paired), frauds and legitimate transactions separately so that each resample keeps
the window's fraud count (stratified). A resample is a vector of row counts, and the metrics
are computed with those counts as weights: the same values as on the duplicated rows, in a
few array passes instead of a sort per resample.

The promotion rule is one small pure function, `promotion_verdict`, documented there.
"""

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from fraudops.training.metrics import (
    RankedScores,
    binary_labels,
    bootstrap_counts,
    finite_values,
)

PromotionMetric = Literal["average_precision", "f1"]
Verdict = Literal["promote", "keep_champion", "insufficient_evidence"]
PROMOTION_METRICS: tuple[PromotionMetric, ...] = ("average_precision", "f1")
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Interval:
    """A metric's value on the window and its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready (NaN as null)."""
        return {
            "estimate": _finite(self.estimate),
            "low": _finite(self.low),
            "high": _finite(self.high),
        }


@dataclass(frozen=True, kw_only=True)
class PairedEvidence:
    """Both models' metric and the challenger's lead over the champion, with intervals."""

    metric: PromotionMetric
    champion: Interval
    challenger: Interval
    difference: Interval  # challenger minus champion
    confidence: float
    resamples: int  # resamples on which both metrics were defined

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "metric": self.metric,
            "champion": self.champion.to_dict(),
            "challenger": self.challenger.to_dict(),
            "difference": self.difference.to_dict(),
            "confidence": self.confidence,
            "resamples": self.resamples,
        }


def weighted_metric(
    metric: PromotionMetric,
    *,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    threshold: float = 0.5,
) -> float:
    """A promotion metric of scores against labels, each row counted `weights` times."""
    truth = binary_labels(labels)
    values = finite_values(scores, name="scores", size=truth.size)
    counts = (
        np.ones(truth.size)
        if weights is None
        else finite_values(weights, name="weights", size=truth.size)
    )
    ranked = RankedScores(truth, values, threshold)
    if metric == "average_precision":
        return ranked.average_precision(counts)
    return ranked.f1(counts)


def paired_bootstrap(
    *,
    metric: PromotionMetric,
    labels: npt.ArrayLike,
    champion_scores: npt.ArrayLike,
    challenger_scores: npt.ArrayLike,
    champion_threshold: float = 0.5,
    challenger_threshold: float = 0.5,
    resamples: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedEvidence:
    """Percentile intervals of both models' metric and of their difference, on paired resamples.

    F1 is taken at each model's own threshold; average precision ignores thresholds.
    """
    if metric not in PROMOTION_METRICS:
        msg = f"promotion metric must be one of {', '.join(PROMOTION_METRICS)}, not {metric!r}"
        raise ValueError(msg)
    if resamples < 1:
        msg = f"resamples must be at least 1, not {resamples}"
        raise ValueError(msg)
    if not 0 < confidence < 1:
        msg = f"confidence must be in (0, 1), not {confidence}"
        raise ValueError(msg)
    truth = binary_labels(labels)
    if not truth.any():
        msg = "a paired bootstrap needs at least one fraud in the window"
        raise ValueError(msg)
    models = [
        RankedScores(truth, finite_values(scores, name=name, size=truth.size), threshold)
        for scores, name, threshold in (
            (champion_scores, "champion scores", champion_threshold),
            (challenger_scores, "challenger scores", challenger_threshold),
        )
    ]
    compute = [
        model.average_precision if metric == "average_precision" else model.f1 for model in models
    ]
    estimates = [fn(np.ones(truth.size)) for fn in compute]
    rng = np.random.default_rng(seed)
    values = np.array(
        [[fn(counts) for fn in compute] for counts in bootstrap_counts(truth, n=resamples, rng=rng)]
    )
    values = values[~np.isnan(values).any(axis=1)]
    alpha = 1 - confidence

    def interval(estimate: float, draws: FloatArray) -> Interval:
        if not draws.size:
            return Interval(estimate=estimate, low=math.nan, high=math.nan)
        low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
        return Interval(estimate=estimate, low=float(low), high=float(high))

    return PairedEvidence(
        metric=metric,
        champion=interval(estimates[0], values[:, 0]),
        challenger=interval(estimates[1], values[:, 1]),
        difference=interval(estimates[1] - estimates[0], values[:, 1] - values[:, 0]),
        confidence=confidence,
        resamples=len(values),
    )


def promotion_verdict(
    evidence: PairedEvidence | None, *, frauds: int, min_frauds: int, margin: float
) -> tuple[Verdict, str]:
    """The champion/challenger verdict and why, from the interval of challenger minus champion.

    - promote: the whole interval lies above the margin: the challenger is better by more
      than the margin, with the confidence asked for (a one-sided test at half the
      two-sided level, e.g. 2.5 % for a 95 % interval).
    - keep_champion: the whole interval lies below the margin: the challenger is, with that
      confidence, not better by the margin (the champion stays; the challenger lost).
    - insufficient_evidence: fewer frauds than `min_frauds` in the window, or an interval
      that contains the margin: nothing changes and the next run, on a longer window,
      decides. The burden of proof is on the challenger either way.
    """
    needed = max(min_frauds, 1)
    if evidence is None or frauds < needed:
        return (
            "insufficient_evidence",
            f"{frauds} fraud(s) in the window, fewer than the {needed} needed to judge",
        )
    difference = evidence.difference
    span = (
        f"{evidence.metric} difference {difference.estimate:+.4f} "
        f"({evidence.confidence:.0%} interval {difference.low:+.4f} .. {difference.high:+.4f})"
    )
    if math.isnan(difference.low) or math.isnan(difference.high):
        return "insufficient_evidence", f"{span}: the interval is undefined"
    if difference.low > margin:
        return "promote", f"{span} lies above the margin {margin:g}: the challenger is better"
    if difference.high < margin:
        return (
            "keep_champion",
            f"{span} lies below the margin {margin:g}: the challenger is not better",
        )
    return (
        "insufficient_evidence",
        f"{span} contains the margin {margin:g}: waiting for more labelled data",
    )


def _finite(value: float) -> float | None:
    """A float for JSON: NaN and infinities as None."""
    return value if math.isfinite(value) else None
