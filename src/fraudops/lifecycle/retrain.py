"""Retraining from the warehouse: the standard recipe on the most recent labelled data.

Transactions older than the maturity age count as matured: those without a fraud label are
legitimate. The age is the label delay, or longer where the warehouse's fraud labels show
they take longer to arrive (monitoring.maturity); younger transactions are left out as
immature, and the result says how many. The model is tuned and thresholded on the last
`validation_days` of matured data, then refitted on training and validation together, so
the newest labelled days are learnt and not only validated on. The new version is
registered as challenger (champion if there is none yet), and the decision is audited
whether it succeeded or not.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import structlog

from fraudops.data.profiles import BUILTIN_PROFILES, SPARKOV, DatasetProfile
from fraudops.features.labels import DEFAULT_MATURITY_QUANTILE
from fraudops.lifecycle.audit import (
    TAG_ACTOR,
    TAG_AS_OF,
    TAG_DATA_SOURCE,
    TAG_TRAINED_UNTIL,
    TAG_TRIGGER,
    record_decision,
    registry_name,
    version_with_alias,
)
from fraudops.lifecycle.registration import register_training
from fraudops.monitoring.maturity import observed_label_maturity
from fraudops.registry.base import (
    CHALLENGER,
    CHAMPION,
    ModelNotFoundError,
    ModelRegistry,
    RegisteredVersion,
)
from fraudops.storage.base import LifecycleEvent
from fraudops.storage.warehouse import Warehouse
from fraudops.times import utc_naive
from fraudops.training.splits import SplitError
from fraudops.training.trainer import TrainingConfig, TrainingError, TrainingResult, train

log = structlog.get_logger(__name__)

DATA_SOURCE = "warehouse"
LOSER_REPLACED = "loser_replaced"
"""The trigger of a retraining that replaces the loser of a champion/challenger comparison."""


class RetrainError(TrainingError):
    """Retraining could not produce a model: no data, too little labelled data, no fraud."""


@dataclass(frozen=True, kw_only=True)
class RetrainOptions:
    """How much history a retraining reads and how it splits and tunes it."""

    label_delay_days: float = 7.0
    history_days: float = 28.0
    validation_days: float = 3.0
    trials: int = 5
    seed: int = 42
    maturity_quantile: float = DEFAULT_MATURITY_QUANTILE
    # Extra days read before the history so that 7- and 30-day window features are warm on
    # the first training day, as they are in service; those days are not trained on.
    warm_up_days: float = 30.0
    review_capacity: float | None = None  # alerts per day: fits the review threshold

    @classmethod
    def from_policy(
        cls, policy: Any, *, maturity_quantile: float = DEFAULT_MATURITY_QUANTILE
    ) -> "RetrainOptions":
        """The options a monitoring policy names (label_delay_days, retrain_* fields)."""
        return cls(
            label_delay_days=float(policy.label_delay_days),
            history_days=float(policy.retrain_history_days),
            validation_days=float(policy.retrain_validation_days),
            trials=int(policy.retrain_trials),
            maturity_quantile=maturity_quantile,
        )

    @property
    def label_delay(self) -> timedelta:
        """The label delay as a timedelta."""
        return timedelta(days=self.label_delay_days)


@dataclass(frozen=True, kw_only=True)
class RetrainResult:
    """A registered retraining: the version, what it learnt from, how it validated."""

    registered: RegisteredVersion
    as_of: datetime
    history_start: datetime
    labelled_end: datetime
    rows: int  # transactions learnt from (training and validation periods)
    frauds: int  # frauds among them
    immature: int  # transactions younger than the maturity age, left out
    maturity: dict[str, Any]  # LabelMaturity.to_dict(): the age and where it comes from
    split: dict[str, str]
    validation: dict[str, float]
    threshold: float
    trigger: str
    actor: str
    event: LifecycleEvent
    review_threshold: float | None = None  # fitted to the review capacity, if one is set
    artifacts: dict[str, Path] = field(default_factory=dict)

    @property
    def version(self) -> int:
        """The registered version number."""
        return self.registered.version

    @property
    def alias(self) -> str:
        """The alias the new version was given (challenger, or champion if there was none)."""
        return self.registered.alias

    @property
    def note(self) -> str:
        """What became of the new version, in words."""
        if self.alias == CHALLENGER:
            return f"version {self.version} is the new challenger"
        if self.alias == CHAMPION:
            return f"version {self.version} became champion: there was no champion yet"
        return f"version {self.version} was registered with alias {self.alias}"

    def summary(self) -> str:
        """A few lines for people: the version, what it learnt from, how it validated."""
        metrics = ", ".join(
            f"{name.removeprefix('validation_')} {self.validation[name]:.4f}"
            for name in ("validation_average_precision", "validation_f1")
            if name in self.validation
        )
        return (
            f"{self.note}\n"
            f"learnt from {self.history_start:%Y-%m-%d %H:%M} .. {self.labelled_end:%Y-%m-%d %H:%M}"
            f" ({self.rows} transactions, {self.frauds} frauds), as of {self.as_of:%Y-%m-%d %H:%M}"
            f"\n{self.immature} younger transactions left out as immature "
            f"({self.maturity['age_days']:.2f} days, from the {self.maturity['source']})"
            f"\nvalidation: {metrics or 'no metrics'}; threshold {self.threshold:.4f}"
            + (
                ""
                if self.review_threshold is None
                else f"; review from {self.review_threshold:.4f} (alert budget)"
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (what the API job returns and the CLI prints)."""
        return {
            "model_name": self.registered.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.registered.run_id,
            "note": self.note,
            "as_of": self.as_of.isoformat(),
            "history_start": self.history_start.isoformat(),
            "labelled_end": self.labelled_end.isoformat(),
            "rows": self.rows,
            "frauds": self.frauds,
            "immature": self.immature,
            "maturity": self.maturity,
            "split": self.split,
            "validation": self.validation,
            "threshold": self.threshold,
            "review_threshold": self.review_threshold,
            "trigger": self.trigger,
            "actor": self.actor,
            "event_id": self.event.id,
            "artifacts": {name: str(path) for name, path in self.artifacts.items()},
        }


def retrain(
    *,
    warehouse: Warehouse,
    registry: ModelRegistry,
    options: RetrainOptions,
    as_of: datetime | None = None,
    trigger: str,
    actor: str,
    out_dir: Path | None = None,
) -> RetrainResult:
    """Train on the warehouse's most recent labelled data, register it, audit the decision.

    `as_of` (default: the warehouse's event clock) is the moment the retraining looks
    from: labels known by then, matured up to `as_of` minus the label delay. Raises
    RetrainError, after auditing the failure, when the data cannot train a model.
    """
    inputs: dict[str, Any] = {
        "history_days": options.history_days,
        "label_delay_days": options.label_delay_days,
        "validation_days": options.validation_days,
        "trials": options.trials,
        "data_source": DATA_SOURCE,
    }
    moment: datetime | None = None
    try:
        moment = retrain_as_of(warehouse, as_of)
        start = moment - timedelta(days=options.history_days)
        maturity = observed_label_maturity(
            warehouse,
            as_of=moment,
            delay=options.label_delay,
            quantile=options.maturity_quantile,
        )
        labelled_end = moment - maturity.age
        inputs |= {
            "as_of": moment.isoformat(),
            "history_start": start.isoformat(),
            "labelled_end": labelled_end.isoformat(),
            "maturity": maturity.to_dict(),
        }
        profile = served_profile(registry)
        inputs["data_profile"] = profile.name
        frame = warehouse.history_frame(
            start - timedelta(days=options.warm_up_days),
            moment,
            labels_known_by=moment,
            profile=profile,
        )
        result = _train(
            frame,
            profile,
            options=options,
            start=start,
            labelled_end=labelled_end,
            as_of=moment,
        )
        artifacts = {} if out_dir is None else _write_evaluation(frame, result, out_dir, inputs)
        registered = register_training(
            registry,
            frame=frame,
            profile=profile,
            result=result,
            data_source=DATA_SOURCE,
            artifacts=artifacts,
            tags={
                TAG_TRIGGER: trigger,
                TAG_ACTOR: actor,
                TAG_AS_OF: moment.isoformat(),
                TAG_TRAINED_UNTIL: result.bundle.training["trained_until"],
                TAG_DATA_SOURCE: DATA_SOURCE,
            },
        )
    except Exception as error:
        _record_failure(
            warehouse, registry, error, trigger=trigger, actor=actor, as_of=moment, inputs=inputs
        )
        if isinstance(error, (TrainingError, SplitError)) and not isinstance(error, RetrainError):
            raise RetrainError(str(error)) from error
        raise
    learnt = np.logical_or(*result.split.masks(frame["event_time"]))
    learnt_from: dict[str, Any] = {
        "rows": int(learnt.sum()),
        "frauds": int(frame.loc[learnt, "is_fraud"].sum()),
        "immature": int((frame["event_time"] >= labelled_end).sum()),
        "maturity": maturity.to_dict(),
        "split": result.split.to_dict(),
        "validation": {k: v for k, v in result.bundle.metrics.items() if pd.notna(v)},
        "threshold": result.bundle.threshold,
        "review_threshold": result.bundle.review_threshold,
    }
    event = _record_registration(
        warehouse,
        registry,
        registered,
        trigger=trigger,
        actor=actor,
        as_of=moment,
        detail=inputs
        | learnt_from
        | {"run_id": registered.run_id, "trained_until": result.bundle.training["trained_until"]},
    )
    retrained = RetrainResult(
        registered=registered,
        as_of=moment,
        history_start=start,
        labelled_end=labelled_end,
        trigger=trigger,
        actor=actor,
        event=event,
        artifacts=artifacts,
        **learnt_from,
    )
    log.info("retrained", note=retrained.note, trigger=trigger, as_of=moment.isoformat())
    return retrained


def _record_registration(
    warehouse: Warehouse,
    registry: ModelRegistry,
    registered: RegisteredVersion,
    *,
    trigger: str,
    actor: str,
    as_of: datetime,
    detail: dict[str, Any],
) -> LifecycleEvent:
    """Audit a registered retraining: the version, its alias, what it learnt from."""
    return record_decision(
        warehouse,
        LifecycleEvent(
            kind="retrain",
            trigger=trigger,
            actor=actor,
            verdict="registered",
            detail=detail | {"version": registered.version, "alias": registered.alias},
            model_name=registered.name,
            champion_version=_version_of(registry, CHAMPION),
            challenger_version=str(registered.version) if registered.alias == CHALLENGER else None,
            as_of=as_of,
        ),
    )


def _record_failure(
    warehouse: Warehouse,
    registry: ModelRegistry,
    error: Exception,
    *,
    trigger: str,
    actor: str,
    as_of: datetime | None,
    inputs: dict[str, Any],
) -> LifecycleEvent:
    """Audit a failed retraining with its inputs and the error."""
    return record_decision(
        warehouse,
        LifecycleEvent(
            kind="retrain",
            trigger=trigger,
            actor=actor,
            verdict="failed",
            detail=inputs | {"error": str(error), "error_type": type(error).__name__},
            model_name=registry_name(registry),
            champion_version=_version_of(registry, CHAMPION),
            challenger_version=_version_of(registry, CHALLENGER),
            as_of=as_of,
        ),
    )


def retrain_folder(models_dir: Path, *, as_of: datetime, trigger: str) -> Path:
    """Where a retraining's evaluation report goes: one naming for every caller.

    `retrain-<as_of>` (event time), `loser_replaced-<as_of>` for a loser's replacement; a
    second retraining from the same moment gets `-2`, `-3`, ... so nothing is overwritten.
    """
    kind = LOSER_REPLACED if trigger == LOSER_REPLACED else "retrain"
    folder = models_dir / f"{kind}-{as_of:%Y%m%dT%H%M%S}"
    number = 1
    while folder.exists():
        number += 1
        folder = models_dir / f"{kind}-{as_of:%Y%m%dT%H%M%S}-{number}"
    return folder


def retrain_as_of(warehouse: Warehouse, as_of: datetime | None) -> datetime:
    """The moment given, or the warehouse's event clock; RetrainError if none."""
    if as_of is not None:
        return utc_naive(as_of)
    latest = warehouse.event_clock()
    if latest is None:
        msg = "the warehouse holds no transactions: nothing to retrain on"
        raise RetrainError(msg)
    return utc_naive(latest)


def served_profile(registry: ModelRegistry) -> DatasetProfile:
    """The profile the champion was trained on (the one in service); Sparkov without one.

    A built-in profile is known from the version's tags; any other is read from its bundle.
    """
    try:
        info = registry.resolve(CHAMPION)
    except ModelNotFoundError:
        return SPARKOV
    builtin = BUILTIN_PROFILES.get(info.tags.get("data_profile", ""))
    if builtin is not None and info.tags.get("data_profile_digest") == builtin.digest:
        return builtin
    return registry.load_version(info.version).spec.profile


def _train(
    frame: pd.DataFrame,
    profile: DatasetProfile,
    *,
    options: RetrainOptions,
    start: datetime,
    labelled_end: datetime,
    as_of: datetime,
) -> TrainingResult:
    """The standard recipe on the labels known as of then, refitted on training and
    validation together."""
    if frame.empty:
        msg = (
            f"the warehouse holds no transactions between {start:%Y-%m-%d %H:%M} and "
            f"{as_of:%Y-%m-%d %H:%M}"
        )
        raise TrainingError(msg)
    config = TrainingConfig(
        delay_days=options.label_delay_days,
        validation_days=options.validation_days,
        train_start=start,
        labelled_end=labelled_end,
        labels_known_by=as_of,
        trials=options.trials,
        seed=options.seed,
        refit=True,
        review_capacity=options.review_capacity,
    )
    return train(frame, profile, config)


def _write_evaluation(
    frame: pd.DataFrame, result: TrainingResult, out_dir: Path, inputs: dict[str, Any]
) -> dict[str, Path]:
    """Validation plots and report of the retraining under out_dir."""
    from fraudops.training.workflow import write_evaluation  # noqa: PLC0415 - plotting is heavy

    _, validation_rows = result.split.masks(frame["event_time"])
    return write_evaluation(
        out_dir=out_dir,
        title="fraudops retraining on the warehouse (validation period)",
        evaluation=result.validation,
        labels=frame.loc[validation_rows, "is_fraud"].to_numpy(dtype="int8"),
        scores=result.validation_scores,
        result=result,
        context={key: str(value) for key, value in inputs.items()} | result.split.to_dict(),
    )


def _version_of(registry: ModelRegistry, alias: str) -> str | None:
    """The version an alias points at, as text, or None (also when the registry is down)."""
    try:
        version = version_with_alias(registry, alias)
    except Exception:  # the audit must be written even when the registry is what failed
        log.warning("registry unavailable while auditing", alias=alias)
        return None
    return None if version is None else str(version)
