"""Champion against challenger on the most recent labelled data that neither was trained on.

`compare_champion_challenger` judges the two; `run_champion_challenger`, the scheduled job,
audits that judgement (also as tags on both versions), promotes the challenger when it is
better with evidence (the service is told to reload), and on "promote" or "keep_champion"
replaces the loser with a model retrained on the most recent data, the next challenger. On
"insufficient_evidence" nothing changes: the window grows until a later run can decide.

The window runs from the later of the two models' `trained_until` (the last moment of data
either learnt from or was tuned on) to `as_of` minus the maturity age (older transactions
count as matured: unlabelled ones are legitimate), with labels as known at `as_of`. The age
is the label delay, or longer where the fraud labels known by `as_of` show they take longer
(monitoring.maturity, the rule monitoring and retraining use); the younger transactions are
counted as left out, immature. Both
bundles score the same frame, loaded with enough history before the window for their
point-in-time features; the verdict comes from a paired bootstrap (`evidence`).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import structlog

from fraudops.config import Settings
from fraudops.features.batch import batch_features
from fraudops.features.labels import DEFAULT_MATURITY_QUANTILE, LabelMaturity
from fraudops.features.spec import CARD_WINDOWS, MERCHANT_WINDOWS, FeatureSpec
from fraudops.lifecycle.audit import (
    TAG_LAST_COMPARE_AS_OF,
    TAG_LAST_COMPARE_DIFFERENCE,
    TAG_LAST_COMPARE_INTERVAL,
    TAG_LAST_COMPARE_METRIC,
    TAG_LAST_COMPARE_ROLE,
    TAG_LAST_COMPARE_VERDICT,
    record_decision,
    registry_name,
    version_with_alias,
)
from fraudops.lifecycle.evidence import (
    PROMOTION_METRICS,
    PairedEvidence,
    PromotionMetric,
    Verdict,
    paired_bootstrap,
    promotion_verdict,
)
from fraudops.lifecycle.models import ChampionChange, change_champion
from fraudops.lifecycle.notify import notify_service
from fraudops.lifecycle.retrain import (
    LOSER_REPLACED,
    RetrainOptions,
    RetrainResult,
    retrain,
    retrain_folder,
)
from fraudops.monitoring.maturity import observed_label_maturity
from fraudops.registry.base import CHALLENGER, CHAMPION, ModelNotFoundError, ModelRegistry
from fraudops.storage.base import LifecycleEvent
from fraudops.storage.warehouse import Warehouse
from fraudops.times import utc_naive
from fraudops.training.bundle import ModelBundle

log = structlog.get_logger(__name__)


class ComparisonError(LookupError):
    """There is nothing to compare: no champion, no challenger, or no data at all."""


@dataclass(frozen=True, kw_only=True)
class CompareOptions:
    """How champion and challenger are judged: label maturity, evidence needed, metric, margin."""

    label_delay_days: float = 7.0
    maturity_quantile: float = DEFAULT_MATURITY_QUANTILE
    min_frauds: int = 20
    confidence: float = 0.95
    resamples: int = 500
    metric: PromotionMetric = "average_precision"
    margin: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse a metric the bootstrap does not know."""
        if self.metric not in PROMOTION_METRICS:
            msg = f"promotion metric must be one of {', '.join(PROMOTION_METRICS)}"
            raise ValueError(msg)

    @classmethod
    def from_policy(
        cls, policy: Any, *, maturity_quantile: float = DEFAULT_MATURITY_QUANTILE
    ) -> "CompareOptions":
        """The options a monitoring policy names (label delay, min_frauds, promotion_*)."""
        return cls(
            label_delay_days=float(policy.label_delay_days),
            maturity_quantile=maturity_quantile,
            min_frauds=int(policy.min_frauds),
            confidence=float(policy.confidence),
            resamples=int(policy.bootstrap_resamples),
            metric=cast("PromotionMetric", policy.promotion_metric),
            margin=float(policy.promotion_margin),
        )

    @property
    def label_delay(self) -> timedelta:
        """The label delay as a timedelta."""
        return timedelta(days=self.label_delay_days)


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """The champion and the challenger judged on one window, and the verdict."""

    model_name: str | None
    champion_version: int
    challenger_version: int
    champion_trained_until: datetime
    challenger_trained_until: datetime
    champion_threshold: float
    challenger_threshold: float
    as_of: datetime
    window_start: datetime
    window_end: datetime
    maturity: LabelMaturity  # how old the window's transactions are: as_of - window_end
    immature: int  # transactions younger than that, left out
    rows: int
    frauds: int
    metric: PromotionMetric
    margin: float
    confidence: float
    min_frauds: int
    evidence: PairedEvidence | None  # None when there was too little to bootstrap
    verdict: Verdict
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: window, rows, frauds, both metrics and the difference with intervals."""
        evidence = None if self.evidence is None else self.evidence.to_dict()
        return {
            "model_name": self.model_name,
            "champion_version": self.champion_version,
            "challenger_version": self.challenger_version,
            "champion_trained_until": self.champion_trained_until.isoformat(),
            "challenger_trained_until": self.challenger_trained_until.isoformat(),
            "champion_threshold": self.champion_threshold,
            "challenger_threshold": self.challenger_threshold,
            "as_of": self.as_of.isoformat(),
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "maturity": self.maturity.to_dict() | {"immature": self.immature},
            "rows": self.rows,
            "frauds": self.frauds,
            "metric": self.metric,
            "margin": self.margin,
            "confidence": self.confidence,
            "min_frauds": self.min_frauds,
            "champion": None if evidence is None else evidence["champion"],
            "challenger": None if evidence is None else evidence["challenger"],
            "difference": None if evidence is None else evidence["difference"],
            "resamples": None if self.evidence is None else self.evidence.resamples,
            "verdict": self.verdict,
            "reason": self.reason,
        }

    def summary(self) -> str:
        """One line: versions, window, verdict and why; the immature left out."""
        return (
            f"champion v{self.champion_version} vs challenger v{self.challenger_version} on "
            f"{self.window_start:%Y-%m-%d %H:%M} .. {self.window_end:%Y-%m-%d %H:%M} "
            f"({self.rows} transactions, {self.frauds} frauds): {self.verdict}: {self.reason}; "
            f"{self.immature} younger transactions left out as immature "
            f"({self.maturity.age / timedelta(days=1):.2f} days, from the {self.maturity.source})"
        )


def compare_champion_challenger(
    *,
    warehouse: Warehouse,
    registry: ModelRegistry,
    options: CompareOptions,
    as_of: datetime | None = None,
) -> Comparison:
    """Score champion and challenger on the window neither was trained on and judge them."""
    versions = {alias: _resolve(registry, alias) for alias in (CHAMPION, CHALLENGER)}
    bundles = {alias: registry.load_version(v) for alias, v in versions.items()}
    trained_until = {alias: trained_until_of(b) for alias, b in bundles.items()}
    moment = _as_of(warehouse, as_of)
    window_start = max(trained_until.values())
    maturity = observed_label_maturity(
        warehouse, as_of=moment, delay=options.label_delay, quantile=options.maturity_quantile
    )
    window_end = moment - maturity.age
    labels, scores = _window_scores(
        warehouse, bundles, start=window_start, end=window_end, labels_known_by=moment
    )
    frauds = int(labels.sum())
    evidence = None
    if labels.size and frauds >= max(options.min_frauds, 1):
        evidence = paired_bootstrap(
            metric=options.metric,
            labels=labels,
            champion_scores=scores[CHAMPION],
            challenger_scores=scores[CHALLENGER],
            champion_threshold=bundles[CHAMPION].threshold,
            challenger_threshold=bundles[CHALLENGER].threshold,
            resamples=options.resamples,
            confidence=options.confidence,
            seed=options.seed,
        )
    verdict, reason = promotion_verdict(
        evidence, frauds=frauds, min_frauds=options.min_frauds, margin=options.margin
    )
    if window_start >= window_end:
        reason = (
            f"no matured data newer than both models' training yet (the window would run "
            f"from {window_start:%Y-%m-%d %H:%M} to {window_end:%Y-%m-%d %H:%M})"
        )
    comparison = Comparison(
        model_name=registry_name(registry),
        champion_version=versions[CHAMPION],
        challenger_version=versions[CHALLENGER],
        champion_trained_until=trained_until[CHAMPION],
        challenger_trained_until=trained_until[CHALLENGER],
        champion_threshold=bundles[CHAMPION].threshold,
        challenger_threshold=bundles[CHALLENGER].threshold,
        as_of=moment,
        window_start=window_start,
        window_end=window_end,
        maturity=maturity,
        immature=warehouse.count_between(window_end, moment),
        rows=int(labels.size),
        frauds=frauds,
        metric=options.metric,
        margin=options.margin,
        confidence=options.confidence,
        min_frauds=options.min_frauds,
        evidence=evidence,
        verdict=verdict,
        reason=reason,
    )
    log.info(
        "champion and challenger compared",
        champion_version=comparison.champion_version,
        challenger_version=comparison.challenger_version,
        rows=comparison.rows,
        frauds=frauds,
        immature=comparison.immature,
        maturity_days=maturity.age / timedelta(days=1),
        verdict=verdict,
    )
    return comparison


def _window_scores(
    warehouse: Warehouse,
    bundles: dict[str, ModelBundle],
    *,
    start: datetime,
    end: datetime,
    labels_known_by: datetime,
) -> tuple[npt.NDArray[np.int8], dict[str, npt.NDArray[np.float64]]]:
    """The window's labels and each bundle's scores of its transactions.

    Each bundle scores its own features over the same frame, which starts early enough
    for the longest feature window, so the window's first transactions see their history.
    Bundles with equal feature specs (a retraining keeps the spec unless the vocabularies
    changed) share one computation of them.
    """
    if start >= end:
        return np.zeros(0, dtype=np.int8), {}
    # Both read the served profile's transactions (a promotion never mixes two schemas).
    profile = next(iter(bundles.values())).spec.profile if bundles else None
    frame = warehouse.history_frame(
        start - feature_history(bundles.values()),
        end,
        labels_known_by=labels_known_by,
        profile=profile,
    )
    if frame.empty:
        return np.zeros(0, dtype=np.int8), {}
    in_window = (frame["event_time"] >= start).to_numpy()
    labels = frame.loc[in_window, "is_fraud"].to_numpy(dtype=np.int8)
    computed: list[tuple[FeatureSpec, npt.NDArray[np.float64]]] = []

    def features_of(spec: FeatureSpec) -> npt.NDArray[np.float64]:
        # Specs hold dicts (the vocabularies), so they are compared, not hashed.
        matrix = next((m for known, m in computed if known == spec), None)
        if matrix is None:
            matrix = batch_features(frame, spec)
            computed.append((spec, matrix))
        return matrix

    return labels, {
        alias: b.score_features(features_of(b.spec))[in_window] for alias, b in bundles.items()
    }


def trained_until_of(bundle: ModelBundle) -> datetime:
    """The last moment of data a bundle learnt from or was tuned on (its validation end)."""
    if bundle.trained_until is None:
        msg = "the model records no training period (trained_until); it cannot be compared"
        raise ComparisonError(msg)
    return bundle.trained_until


def feature_history(bundles: Iterable[ModelBundle]) -> timedelta:
    """How much history before a window the bundles' point-in-time features read."""
    longest = max(*CARD_WINDOWS.values(), *MERCHANT_WINDOWS.values())
    # Label windows end up to the label delay or the label lag before t, as the engines keep.
    lag = max(max(b.spec.label_delay_ms, b.spec.label_lag_ms) for b in bundles)
    return timedelta(milliseconds=longest + lag)


def _resolve(registry: ModelRegistry, alias: str) -> int:
    """The version an alias points at; ComparisonError when none does."""
    try:
        return registry.resolve(alias).version
    except ModelNotFoundError as error:
        msg = f"no {alias} to compare: {error}"
        raise ComparisonError(msg) from error


def _as_of(warehouse: Warehouse, as_of: datetime | None) -> datetime:
    """The moment given, or the warehouse's event clock."""
    if as_of is not None:
        return utc_naive(as_of)
    latest = warehouse.event_clock()
    if latest is None:
        msg = "the warehouse holds no transactions: nothing to compare on"
        raise ComparisonError(msg)
    return utc_naive(latest)


@dataclass(frozen=True, kw_only=True)
class ChallengeOutcome:
    """What one champion/challenger run found and did."""

    verdict: str  # promote, keep_champion, insufficient_evidence, no_challenger, no_champion
    message: str
    comparison: Comparison | None = None
    compare_event: LifecycleEvent | None = None
    promotion: ChampionChange | None = None
    replacement: RetrainResult | None = None
    replacement_error: str | None = None
    notified: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "verdict": self.verdict,
            "message": self.message,
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "compare_event_id": None if self.compare_event is None else self.compare_event.id,
            "promotion": None if self.promotion is None else self.promotion.to_dict(),
            "replacement": None if self.replacement is None else self.replacement.to_dict(),
            "replacement_error": self.replacement_error,
            "notified": list(self.notified),
        }

    def summary(self) -> str:
        """A few lines for people: the verdict, and what was done about it."""
        lines = [self.message if self.comparison is None else self.comparison.summary()]
        if self.promotion is not None:
            lines.append(self.promotion.summary())
        if self.replacement is not None:
            lines.append(f"loser replaced: {self.replacement.note}")
        if self.replacement_error is not None:
            lines.append(f"loser not replaced: {self.replacement_error}")
        return "\n".join(lines)


def run_champion_challenger(
    *,
    warehouse: Warehouse,
    registry: ModelRegistry,
    options: CompareOptions,
    retrain_options: RetrainOptions,
    as_of: datetime | None = None,
    actor: str,
    trigger: str = "schedule",
    settings: Settings | None = None,
    out_dir: Path | None = None,
) -> ChallengeOutcome:
    """Compare, audit, promote the challenger if it is better with evidence, replace the loser."""
    if version_with_alias(registry, CHAMPION) is None:
        return _nothing("no_champion", "no champion registered: nothing to compare")
    if version_with_alias(registry, CHALLENGER) is None:
        return _nothing("no_challenger", "no challenger registered: nothing to compare")
    comparison = compare_champion_challenger(
        warehouse=warehouse, registry=registry, options=options, as_of=as_of
    )
    compare_event = _audit_comparison(warehouse, registry, comparison, trigger=trigger, actor=actor)
    if comparison.verdict == "insufficient_evidence":
        return ChallengeOutcome(
            verdict=comparison.verdict,
            message=comparison.reason,
            comparison=comparison,
            compare_event=compare_event,
        )
    notified: list[str] = []
    promotion = None
    if comparison.verdict == "promote":
        promotion = change_champion(
            comparison.challenger_version,
            action="promote",
            registry=registry,
            warehouse=warehouse,
            trigger="compare",
            actor=actor,
            detail={
                "reason": comparison.reason,
                "compare_event_id": compare_event.id,
                "comparison": comparison.to_dict(),
            },
            settings=settings,
            as_of=comparison.as_of,
        )
        notified.append(promotion.notified)
    replacement, error = _replace_loser(
        warehouse=warehouse,
        registry=registry,
        options=retrain_options,
        as_of=comparison.as_of,
        actor=actor,
        out_dir=out_dir,
    )
    if replacement is not None and settings is not None:
        notified.append(notify_service(settings))  # so the new challenger is shadow-scored
    return ChallengeOutcome(
        verdict=comparison.verdict,
        message=comparison.reason,
        comparison=comparison,
        compare_event=compare_event,
        promotion=promotion,
        replacement=replacement,
        replacement_error=error,
        notified=tuple(notified),
    )


def _audit_comparison(
    warehouse: Warehouse,
    registry: ModelRegistry,
    comparison: Comparison,
    *,
    trigger: str,
    actor: str,
) -> LifecycleEvent:
    """The comparison as an audit event and as tags on both versions."""
    event = record_decision(
        warehouse,
        LifecycleEvent(
            kind="compare",
            trigger=trigger,
            actor=actor,
            verdict=comparison.verdict,
            detail=comparison.to_dict(),
            model_name=comparison.model_name,
            champion_version=str(comparison.champion_version),
            challenger_version=str(comparison.challenger_version),
            as_of=comparison.as_of,
        ),
    )
    tags = {
        TAG_LAST_COMPARE_VERDICT: comparison.verdict,
        TAG_LAST_COMPARE_AS_OF: comparison.as_of.isoformat(),
        TAG_LAST_COMPARE_METRIC: comparison.metric,
    }
    if comparison.evidence is not None:
        difference = comparison.evidence.difference
        tags[TAG_LAST_COMPARE_DIFFERENCE] = f"{difference.estimate:.6f}"
        tags[TAG_LAST_COMPARE_INTERVAL] = f"[{difference.low:.6f}, {difference.high:.6f}]"
    for role, version in (
        (CHAMPION, comparison.champion_version),
        (CHALLENGER, comparison.challenger_version),
    ):
        registry.set_version_tags(version, tags | {TAG_LAST_COMPARE_ROLE: role})
    return event


def _replace_loser(
    *,
    warehouse: Warehouse,
    registry: ModelRegistry,
    options: RetrainOptions,
    as_of: datetime,
    actor: str,
    out_dir: Path | None,
) -> tuple[RetrainResult | None, str | None]:
    """Retrain on the most recent data as the next challenger; a failure is reported, not raised.

    The retraining audits its own failure; the decision already taken stands either way. Its
    report goes to a folder of its own under out_dir.
    """
    folder = (
        None if out_dir is None else retrain_folder(out_dir, as_of=as_of, trigger=LOSER_REPLACED)
    )
    try:
        result = retrain(
            warehouse=warehouse,
            registry=registry,
            options=options,
            as_of=as_of,
            trigger=LOSER_REPLACED,
            actor=actor,
            out_dir=folder,
        )
    except Exception as error:  # reported in the outcome and audited by retrain
        log.exception("replacing the loser failed")
        return None, f"{type(error).__name__}: {error}"
    return result, None


def _nothing(verdict: str, message: str) -> ChallengeOutcome:
    """An outcome with nothing compared (and nothing audited: no decision was taken)."""
    log.info("champion/challenger skipped", reason=message)
    return ChallengeOutcome(verdict=verdict, message=message)
