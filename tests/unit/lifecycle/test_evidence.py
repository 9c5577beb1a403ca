"""The paired bootstrap and the promotion rule, on synthetic scores."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from fraudops.lifecycle.evidence import (
    Interval,
    PairedEvidence,
    paired_bootstrap,
    promotion_verdict,
    weighted_metric,
)
from fraudops.training.metrics import confusion


def scored_window(
    *, rows: int = 4_000, frauds: int = 60, champion_lift: float, challenger_lift: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models' scores: each fraud's score is lifted by the model's skill."""
    rng = np.random.default_rng(7)
    labels = np.zeros(rows, dtype=np.int8)
    labels[rng.choice(rows, frauds, replace=False)] = 1
    noise = rng.random(rows)
    champion = noise + champion_lift * labels + 0.1 * rng.random(rows)
    challenger = noise + challenger_lift * labels + 0.1 * rng.random(rows)
    return labels, champion, challenger


def evidence_with(low: float, high: float) -> PairedEvidence:
    """Evidence whose difference interval is [low, high]."""
    middle = (low + high) / 2
    return PairedEvidence(
        metric="average_precision",
        champion=Interval(estimate=0.5, low=0.4, high=0.6),
        challenger=Interval(estimate=0.5 + middle, low=0.4, high=0.7),
        difference=Interval(estimate=middle, low=low, high=high),
        confidence=0.95,
        resamples=500,
    )


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.booleans(), st.integers(0, 20), st.integers(0, 3)), min_size=1, max_size=60
    )
)
def test_weighted_average_precision_equals_it_on_repeated_rows(
    data: list[tuple[bool, int, int]],
) -> None:
    """Counting a row w times gives scikit-learn's average precision of the repeated rows."""
    labels = np.array([d[0] for d in data])
    scores = np.array([d[1] / 20 for d in data])  # few distinct values: ties on purpose
    weights = np.array([d[2] for d in data])
    repeated = np.repeat(labels, weights)
    expected = (
        average_precision_score(repeated, np.repeat(scores, weights))
        if repeated.any()
        else math.nan
    )

    actual = weighted_metric(
        "average_precision", labels=labels, scores=scores, weights=weights.astype(float)
    )

    assert expected == pytest.approx(actual, nan_ok=True)


def test_f1_is_taken_at_the_models_own_threshold() -> None:
    """F1 with unit weights is the confusion F1 at `score >= threshold`."""
    labels, scores, _ = scored_window(champion_lift=0.5, challenger_lift=0.5)
    expected = confusion(labels, scores >= 0.9).f1

    assert expected == pytest.approx(
        weighted_metric("f1", labels=labels, scores=scores, threshold=0.9)
    )


def test_a_clearly_better_challenger_has_a_difference_interval_above_zero() -> None:
    """A challenger that lifts frauds higher wins: interval above 0, verdict promote."""
    labels, champion, challenger = scored_window(champion_lift=0.3, challenger_lift=0.9)

    evidence = paired_bootstrap(
        metric="average_precision",
        labels=labels,
        champion_scores=champion,
        challenger_scores=challenger,
        resamples=300,
    )

    assert evidence.difference.low > 0
    assert evidence.champion.estimate == pytest.approx(average_precision_score(labels, champion))
    assert evidence.difference.estimate == pytest.approx(
        evidence.challenger.estimate - evidence.champion.estimate
    )
    assert evidence.champion.low <= evidence.champion.estimate <= evidence.champion.high
    assert 300 == evidence.resamples
    verdict, _ = promotion_verdict(evidence, frauds=60, min_frauds=20, margin=0.0)
    assert "promote" == verdict


def test_pairing_makes_the_difference_antisymmetric() -> None:
    """Swapping the two models negates the difference interval exactly (same resampled rows)."""
    labels, first, second = scored_window(champion_lift=0.5, challenger_lift=0.6)

    forward = paired_bootstrap(
        metric="f1",
        labels=labels,
        champion_scores=first,
        challenger_scores=second,
        champion_threshold=1.0,
        challenger_threshold=1.05,
        resamples=200,
        seed=3,
    )
    backward = paired_bootstrap(
        metric="f1",
        labels=labels,
        champion_scores=second,
        challenger_scores=first,
        champion_threshold=1.05,
        challenger_threshold=1.0,
        resamples=200,
        seed=3,
    )

    assert forward.difference.low == pytest.approx(-backward.difference.high)
    assert forward.difference.high == pytest.approx(-backward.difference.low)


def test_identical_models_differ_by_exactly_nothing() -> None:
    """The same scores twice: every paired resample differs by 0, so nothing is decided."""
    labels, scores, _ = scored_window(champion_lift=0.5, challenger_lift=0.5)

    evidence = paired_bootstrap(
        metric="average_precision",
        labels=labels,
        champion_scores=scores,
        challenger_scores=scores,
        resamples=100,
    )

    assert (0.0, 0.0, 0.0) == (
        evidence.difference.estimate,
        evidence.difference.low,
        evidence.difference.high,
    )
    verdict, reason = promotion_verdict(evidence, frauds=60, min_frauds=20, margin=0.0)
    assert "insufficient_evidence" == verdict
    assert "contains the margin" in reason


def test_the_same_seed_gives_the_same_intervals() -> None:
    """The bootstrap is deterministic for a seed."""
    labels, champion, challenger = scored_window(champion_lift=0.4, challenger_lift=0.5)
    runs = [
        paired_bootstrap(
            metric="average_precision",
            labels=labels,
            champion_scores=champion,
            challenger_scores=challenger,
            resamples=50,
            seed=11,
        )
        for _ in range(2)
    ]

    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    ("low", "high", "margin", "frauds", "expected"),
    [
        (0.02, 0.10, 0.0, 40, "promote"),
        (0.02, 0.10, 0.05, 40, "insufficient_evidence"),  # better, but not by the margin surely
        (0.06, 0.10, 0.05, 40, "promote"),
        (-0.10, -0.01, 0.0, 40, "keep_champion"),
        (-0.03, 0.04, 0.05, 40, "keep_champion"),  # surely not better by the margin
        (-0.03, 0.04, 0.0, 40, "insufficient_evidence"),
        (0.02, 0.10, 0.0, 19, "insufficient_evidence"),  # too few frauds to judge
        (0.0, 0.0, 0.0, 40, "insufficient_evidence"),
    ],
)
def test_promotion_needs_the_whole_interval_above_the_margin(
    low: float, high: float, margin: float, frauds: int, expected: str
) -> None:
    """Promote above the margin, keep the champion below it, wait when it straddles or is thin."""
    verdict, reason = promotion_verdict(
        evidence_with(low, high), frauds=frauds, min_frauds=20, margin=margin
    )

    assert expected == verdict
    assert reason


def test_without_evidence_the_verdict_waits_and_says_why() -> None:
    """No bootstrap at all (no fraud in the window): insufficient evidence, with the count."""
    verdict, reason = promotion_verdict(None, frauds=0, min_frauds=20, margin=0.0)

    assert "insufficient_evidence" == verdict
    assert "0 fraud(s) in the window, fewer than the 20 needed" in reason


def test_evidence_is_json_ready_with_undefined_values_as_null() -> None:
    """to_dict survives json.dumps with allow_nan=False; NaN bounds become null."""
    evidence = evidence_with(math.nan, math.nan)

    document = json.loads(json.dumps(evidence.to_dict(), allow_nan=False))

    assert {"estimate": None, "low": None, "high": None} == document["difference"]
    assert {"estimate": 0.5, "low": 0.4, "high": 0.6} == document["champion"]
    verdict, reason = promotion_verdict(evidence, frauds=40, min_frauds=20, margin=0.0)
    assert "insufficient_evidence" == verdict
    assert "undefined" in reason


def test_bad_requests_are_refused() -> None:
    """An unknown metric, no fraud at all, or no resamples is a ValueError naming the problem."""
    labels, champion, challenger = scored_window(champion_lift=0.5, challenger_lift=0.5)
    common = {"champion_scores": champion, "challenger_scores": challenger}
    with pytest.raises(ValueError, match="promotion metric"):
        paired_bootstrap(metric="recall", labels=labels, **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one fraud"):
        paired_bootstrap(metric="f1", labels=np.zeros_like(labels), **common)
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap(metric="f1", labels=labels, resamples=0, **common)
