"""When to retrain, and how to judge a challenger: one policy, read from TOML, and its rules.

Retrain when F1 or average precision is below its floor with confidence (the interval's
upper bound under the floor, on a window with enough frauds), when the features or the
score distribution drift significantly, when the champion is older than a maximum age, or
when the alerts per day have overrun the analysts' review capacity for several days.
Ages and windows are measured in event time, so a replayed stream is judged as if live.
"""

import fnmatch
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fraudops.config import Settings
from fraudops.monitoring.budget import AlertBudget
from fraudops.monitoring.drift import FeatureDrift
from fraudops.monitoring.performance import WindowPerformance, finite_or_none

POLICY_FILE_NAME = "policy.toml"
REASONS = (
    "f1_below_floor",
    "average_precision_below_floor",
    "feature_drift",
    "score_drift",
    "schedule",
    "alerts_over_capacity",
)
FloorMetric = Literal["f1", "average_precision"]
FLOOR_METRICS: tuple[FloorMetric, ...] = ("f1", "average_precision")
VerdictStatus = Literal["retrain", "ok", "insufficient_evidence"]


class PolicyError(ValueError):
    """A policy file that cannot be read, or a setting in it that is unknown or out of range."""


class Policy(BaseModel):
    """The monitoring, retraining and promotion policy; every field has a working default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label_delay_days: float = Field(
        default=7.0,
        ge=0.0,
        description="Days until most labels are known: performance is measured on the window "
        "that ends this long before as_of.",
    )
    performance_window_days: float = Field(
        default=7.0, gt=0.0, description="Length of the labelled window performance is read on."
    )
    drift_window_days: float = Field(
        default=1.0,
        gt=0.0,
        description="Length of the window of served transactions compared with the "
        "champion's training reference.",
    )
    min_frauds: int = Field(
        default=20,
        ge=1,
        description="Frauds a labelled window needs before its performance can trigger anything.",
    )
    confidence: float = Field(
        default=0.95, gt=0.0, lt=1.0, description="Confidence level of the metric intervals."
    )
    f1_floor: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Absolute F1 floor; unset: relative_floor times the champion's validation F1.",
    )
    average_precision_floor: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Absolute average-precision floor; unset: relative_floor times the "
        "champion's validation average precision.",
    )
    relative_floor: float = Field(
        default=0.7,
        gt=0.0,
        le=1.0,
        description="Share of the champion's own validation metric used as floor when no "
        "absolute floor is set (0.7: an alarm needs a third less, with confidence; a few "
        "days of validation are themselves a noisy estimate).",
    )
    drift_alpha: float = Field(
        default=0.01,
        gt=0.0,
        lt=1.0,
        description="False-discovery rate of the drift tests (Benjamini-Hochberg adjusted).",
    )
    drift_min_psi: float = Field(
        default=0.2,
        ge=0.0,
        description="PSI a significant change must also reach to count as drift (the usual "
        "reading: below 0.1 stable, 0.1-0.2 moderate, above 0.2 a real shift; daily windows "
        "of weekly-cyclic spending reach 0.1 with no drift at all).",
    )
    min_drifted_features: int = Field(
        default=1, ge=1, description="Drifted features needed for a feature_drift verdict."
    )
    score_drift: bool = Field(
        default=True, description="Whether drift of the score distribution triggers retraining."
    )
    drift_ignore_features: tuple[str, ...] = Field(
        default=("weekday", "is_weekend", "merchant_*"),
        description="Features (shell patterns) left out of the drift tests. Calendar features "
        "cannot match a multi-week reference in a window shorter than a week; per-merchant "
        "features take one value per merchant, so a window's transactions are not the "
        "independent draws the tests assume (and merchant risk moves with the fraud itself, "
        "which the labelled performance measures).",
    )
    max_model_age_days: float | None = Field(
        default=None,
        gt=0.0,
        description="Retrain on a schedule: when the champion's data ends more than this many "
        "days before as_of. Unset: no schedule.",
    )
    bootstrap_resamples: int = Field(
        default=500, ge=20, description="Resamples of the F1 and average-precision intervals."
    )
    precision_k: int = Field(default=100, ge=1, description="k of card precision@k.")
    promotion_metric: FloorMetric = Field(
        default="average_precision",
        description="Metric a challenger must beat the champion on to be promoted.",
    )
    promotion_margin: float = Field(
        default=0.0,
        ge=0.0,
        description="How much better (absolute) the challenger's promotion metric must be.",
    )
    retrain_history_days: float = Field(
        default=28.0, gt=0.0, description="Days of labelled history a retrained model learns from."
    )
    retrain_validation_days: float = Field(
        default=3.0,
        gt=0.0,
        description="Latest days of that history kept for validation and the threshold.",
    )
    alert_budget_tolerance: float = Field(
        default=0.2,
        ge=0.0,
        description="How far above the review capacity (0.2: 20 %) a day's alerts may go "
        "before the day counts as over capacity.",
    )
    alert_budget_days: int = Field(
        default=3,
        ge=1,
        description="Latest full days in a row over capacity that trigger retraining (the "
        "review threshold is fitted again on recent data); one busy day does not.",
    )
    retrain_trials: int = Field(
        default=5,
        ge=0,
        description="Hyper-parameter trials when retraining (0: the default parameters).",
    )

    def ignores_feature(self, name: str) -> bool:
        """Whether a feature is left out of the drift tests."""
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.drift_ignore_features)


def policy_from_file(path: Path) -> Policy:
    """The policy of a TOML file of top-level `key = value` settings."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyError(f"cannot read the policy file {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"policy file {path} is not valid TOML: {error}") from error
    try:
        return Policy.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(_problem(detail) for detail in error.errors())
        raise PolicyError(f"policy file {path}: {problems}") from error


def _problem(detail: Mapping[str, Any]) -> str:
    """One validation error in words, naming the key and the value given."""
    key = ".".join(str(part) for part in detail["loc"])
    if detail["type"] == "extra_forbidden":
        return f"unknown setting {key!r} (settings: {', '.join(Policy.model_fields)})"
    return f"{key} = {detail['input']!r}: {detail['msg']}"


def load_policy(settings: Settings) -> Policy:
    """The settings' policy file, else HOME/policy.toml when it exists, else the defaults."""
    if settings.policy_file is not None:
        return policy_from_file(settings.policy_file)
    default = settings.home / POLICY_FILE_NAME
    return policy_from_file(default) if default.is_file() else Policy()


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Whether to retrain, the reason codes why, and the evidence weighed."""

    retrain: bool
    reasons: list[str]
    enough_evidence: bool
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> VerdictStatus:
        """retrain; ok; or insufficient_evidence when performance could not be judged."""
        if self.retrain:
            return "retrain"
        return "ok" if self.enough_evidence else "insufficient_evidence"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "retrain": self.retrain,
            "status": self.status,
            "reasons": list(self.reasons),
            "enough_evidence": self.enough_evidence,
            "detail": self.detail,
        }


def performance_floor(
    policy: Policy, metric: FloorMetric, *, champion_metrics: Mapping[str, float]
) -> tuple[float | None, str]:
    """The floor of a metric and where it comes from; None when there is none to apply."""
    absolute = policy.f1_floor if metric == "f1" else policy.average_precision_floor
    if absolute is not None:
        return absolute, "absolute"
    validation = champion_metrics.get(f"validation_{metric}")
    if validation is None or not math.isfinite(validation):
        return None, f"no absolute floor and no validation_{metric} of the champion"
    return (
        policy.relative_floor * validation,
        f"{policy.relative_floor:g} x validation {validation:.4f}",
    )


def decide(
    *,
    policy: Policy,
    as_of: datetime,
    performance: WindowPerformance | None,
    feature_drift: Sequence[FeatureDrift] = (),
    score_drift: FeatureDrift | None = None,
    champion_metrics: Mapping[str, float] | None = None,
    trained_until: datetime | None = None,
    alert_budget: AlertBudget | None = None,
) -> Verdict:
    """Apply the policy to a monitoring run's evidence (pure: no I/O)."""
    reasons: list[str] = []
    enough = performance is not None and performance.enough_evidence
    floors: dict[str, Any] = {}
    for metric in FLOOR_METRICS:
        floor, source = performance_floor(policy, metric, champion_metrics=champion_metrics or {})
        estimate = None if performance is None else performance.estimates()[metric]
        high = math.nan if estimate is None else estimate.high
        below = enough and floor is not None and math.isfinite(high) and high < floor
        floors[metric] = {
            "floor": floor,
            "source": source,
            "value": None if estimate is None else finite_or_none(estimate.value),
            "high": finite_or_none(high),
            "below": below,
        }
        if below:
            reasons.append(f"{metric}_below_floor")
    drifted = [d.feature for d in feature_drift if d.drifted]
    if len(drifted) >= policy.min_drifted_features:
        reasons.append("feature_drift")
    if policy.score_drift and score_drift is not None and score_drift.drifted:
        reasons.append("score_drift")
    age_days = None
    if trained_until is not None:
        age_days = (as_of - trained_until).total_seconds() / 86_400
        if policy.max_model_age_days is not None and age_days > policy.max_model_age_days:
            reasons.append("schedule")
    if alert_budget is not None and alert_budget.overrun:
        reasons.append("alerts_over_capacity")
    detail = {
        "frauds": None if performance is None else performance.frauds,
        "min_frauds": policy.min_frauds,
        "floors": floors,
        "drifted_features": drifted,
        "score_psi": None if score_drift is None else finite_or_none(score_drift.psi),
        "score_drifted": None if score_drift is None else score_drift.drifted,
        "model_age_days": age_days,
        "max_model_age_days": policy.max_model_age_days,
        "alert_budget": None if alert_budget is None else alert_budget.to_dict(),
    }
    return Verdict(retrain=bool(reasons), reasons=reasons, enough_evidence=enough, detail=detail)
