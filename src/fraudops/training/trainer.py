"""The standard training recipe: point-in-time features, delayed split, tuning, threshold.

Features are computed once over the whole frame (each row sees only its past), the feature
vocabularies are learned from the training rows only, the model is fitted on the training
period, tuned and early-stopped on the validation period, and its decision threshold is
chosen on validation. With `refit`, the model is then fitted again, with the parameters
found, on training and validation together: what retraining after a drift needs, since the
newest labelled days would otherwise only ever validate. Same data, config and seed give
the same model.
"""

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import optuna
import pandas as pd
import structlog
from sklearn.metrics import average_precision_score

from fraudops.data.profiles import DatasetProfile
from fraudops.features.batch import batch_features
from fraudops.features.labels import has_label_times, label_arrival
from fraudops.features.spec import DEFAULT_FEATURE_GROUPS, MS_PER_DAY, fit_feature_spec
from fraudops.progress import ProgressCallback, silent_progress
from fraudops.training.bundle import REFERENCE_ROWS, ModelBundle, TrainingReference
from fraudops.training.metrics import EvaluationResult, evaluate
from fraudops.training.models import (
    Labels,
    Matrix,
    ModelType,
    default_params,
    feature_importance,
    fit_model,
    suggest_params,
)
from fraudops.training.splits import TimeSplit, prequential_splits, whole_period_split
from fraudops.training.threshold import (
    CapacityChoice,
    ThresholdChoice,
    capacity_threshold,
    choose_threshold,
)

log = structlog.get_logger(__name__)


class TrainingError(ValueError):
    """Data that cannot train a model (no labels, no fraud in a period, ...)."""


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """How to train: model, periods, tuning budget and threshold objective."""

    model_type: ModelType = "xgboost"
    delay_days: float = 7.0
    validation_days: float = 7.0
    train_start: datetime | None = None
    labelled_end: datetime | None = None
    trials: int = 15
    tune_timeout_s: float | None = None
    folds: int = 1
    threshold_objective: Literal["f1", "cost"] = "f1"
    review_cost: float = 5.0
    precision_k: int = 100
    seed: int = 42
    max_tuning_negatives: int = 100_000
    refit: bool = False
    feature_groups: frozenset[str] = DEFAULT_FEATURE_GROUPS
    # With label times in the frame, the labels learnt from are those known by then
    # (default: the end of the labelled data plus the delay, when a model would be trained).
    labels_known_by: datetime | None = None
    holdout: bool = True
    """Validate on a later period than the training one; without, the model is fitted with
    default parameters and no early stopping, and its threshold is chosen on its training
    period (the Fraud Detection Handbook's backtests: train one week, delay, test)."""
    review_capacity: float | None = None
    """Alerts per day the analysts can review: sets the review threshold (None: half the
    decision threshold at serving time, as before)."""
    label_window_lag_days: float | None = None
    """Where the label windows of merchant risk and the card's fraud history end, in days
    before each transaction (None: at it where the data's labels arrive before the delay,
    else `delay_days` before: features.labels.label_window_lag_ms)."""

    @property
    def delay(self) -> timedelta:
        """The label delay as a timedelta."""
        return timedelta(days=self.delay_days)


@dataclass(frozen=True, kw_only=True)
class TrainingResult:
    """The trained bundle with its split, validation metrics and how it was found."""

    bundle: ModelBundle
    split: TimeSplit
    validation: EvaluationResult
    validation_scores: npt.NDArray[np.float64] = field(repr=False)
    threshold: ThresholdChoice
    importance: dict[str, float]
    review: CapacityChoice | None = None  # the review threshold fitted to review_capacity
    features: Matrix = field(repr=False)
    trials_run: int
    best_tuning_score: float | None
    seconds: dict[str, float]


def train(
    frame: pd.DataFrame,
    profile: DatasetProfile,
    config: TrainingConfig,
    *,
    progress: ProgressCallback | None = None,
) -> TrainingResult:
    """Train the standard recipe on a loaded frame (readers' output, with event_time)."""
    report = progress or silent_progress
    if profile.label is None or profile.label not in frame.columns:
        msg = f"profile {profile.name!r} data has no label column; cannot train"
        raise TrainingError(msg)
    times = frame["event_time"]
    splits = _splits(config, times)
    split = splits[0]
    labels = training_labels(
        frame,
        profile,
        known_by=config.labels_known_by or split.validation_end + config.delay,
        label_delay_ms=int(config.delay_days * MS_PER_DAY),
    )
    train_mask, validation_mask = split.masks(times)
    _check_period(labels[train_mask], "training", split.train_start, split.train_end)
    _check_period(
        labels[validation_mask], "validation", split.validation_start, split.validation_end
    )
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    report("computing features", 0.0)
    spec = fit_feature_spec(
        frame.loc[train_mask],
        profile,
        label_delay_ms=int(config.delay_days * MS_PER_DAY),
        groups=config.feature_groups,
        label_window_lag_ms=(
            None
            if config.label_window_lag_days is None
            else int(config.label_window_lag_days * MS_PER_DAY)
        ),
    )
    features = batch_features(frame, spec)
    seconds["features"] = time.perf_counter() - started

    started = time.perf_counter()
    report("tuning", 0.3)
    params, trials_run, best = _tune(
        features=features, labels=labels, times=times, splits=splits, config=config
    )
    seconds["tuning"] = time.perf_counter() - started

    started = time.perf_counter()
    report("fitting", 0.8)
    estimator, used = fit_model(
        config.model_type,
        params,
        features=features[train_mask],
        labels=labels[train_mask],
        seed=config.seed,
        eval_set=(features[validation_mask], labels[validation_mask]) if config.holdout else None,
    )
    seconds["fit"] = time.perf_counter() - started

    report("choosing threshold", 0.95)
    bundle_without_threshold = ModelBundle(
        spec=spec, estimator=estimator, threshold=0.5, model_type=config.model_type
    )
    validation_scores = bundle_without_threshold.score_features(features[validation_mask])
    amounts = frame[profile.amount].to_numpy(dtype=np.float64)
    choice = choose_threshold(
        labels=labels[validation_mask],
        scores=validation_scores,
        amounts=amounts[validation_mask],
        objective=config.threshold_objective,
        review_cost=config.review_cost,
    )
    validation = evaluate_rows(
        frame=frame,
        profile=profile,
        rows=validation_mask,
        scores=validation_scores,
        threshold=choice.threshold,
        config=config,
    )
    review = fit_review_capacity(
        validation_scores, split=split, capacity=config.review_capacity, decline=choice.threshold
    )
    trained_rows = train_mask | validation_mask
    threshold = choice.threshold
    review_threshold = None if review is None else review.threshold
    if config.refit:
        started = time.perf_counter()
        report("refitting on training and validation", 0.97)
        refitted, _ = fit_model(
            config.model_type,
            used,
            features=features[trained_rows],
            labels=labels[trained_rows],
            seed=config.seed,
        )
        carry = partial(
            carried_threshold,
            before=bundle_without_threshold.score_features(features[train_mask]),
            after=np.asarray(refitted.predict_proba(features[train_mask])[:, 1], dtype=np.float64),
        )
        threshold = carry(threshold)
        review_threshold = None if review_threshold is None else carry(review_threshold)
        estimator = refitted
        seconds["refit"] = time.perf_counter() - started
    fitted = ModelBundle(
        spec=spec,
        estimator=estimator,
        threshold=threshold,
        model_type=config.model_type,
        params=used,
        metrics={f"validation_{k}": v for k, v in validation.to_dict().items()},
        training=split.to_dict()
        | {
            "profile": profile.name,
            "seed": str(config.seed),
            "refit": str(config.refit).lower(),
            # The last moment whose labelled data the model learnt from or was tuned on.
            "trained_until": split.validation_end.isoformat(),
        }
        | review_training_entries(review, review_threshold),
    )
    bundle = replace(
        fitted,
        reference=training_reference(fitted, features, validation_mask, split, seed=config.seed),
    )
    report("trained", 1.0)
    log.info(
        "model trained",
        model_type=config.model_type,
        rows_train=int(train_mask.sum()),
        rows_validation=int(validation_mask.sum()),
        validation_average_precision=round(validation.average_precision, 4),
        threshold=round(choice.threshold, 4),
        trials=trials_run,
        **{f"seconds_{k}": round(v, 1) for k, v in seconds.items()},
    )
    return TrainingResult(
        bundle=bundle,
        split=split,
        validation=validation,
        validation_scores=validation_scores,
        threshold=choice,
        review=review,
        importance=feature_importance(estimator, spec.names),
        features=features,
        trials_run=trials_run,
        best_tuning_score=best,
        seconds=seconds,
    )


def _splits(config: TrainingConfig, times: "pd.Series[pd.Timestamp]") -> list[TimeSplit]:
    """The config's delayed splits, or its one period trained and validated on."""
    labelled_end = config.labelled_end or _after(times.max())
    train_start = config.train_start or times.min().to_pydatetime()
    if config.holdout:
        return prequential_splits(
            labelled_end=labelled_end,
            delay=config.delay,
            validation_days=config.validation_days,
            train_start=train_start,
            folds=config.folds,
        )
    if config.trials > 0 or config.folds > 1:
        msg = "tuning needs a hold-out validation period: without one, use 0 trials and 1 fold"
        raise TrainingError(msg)
    return [
        whole_period_split(labelled_end=labelled_end, delay=config.delay, train_start=train_start)
    ]


def training_labels(
    frame: pd.DataFrame, profile: DatasetProfile, *, known_by: datetime, label_delay_ms: int
) -> Labels:
    """The labels a model learns from: as known by `known_by` where the frame has label
    times (reported values, unlabelled counting as legitimate), else the profile's label."""
    assert profile.label is not None  # noqa: S101 - checked by the callers
    if not has_label_times(frame):
        return frame[profile.label].to_numpy(dtype=np.int8)
    arrival = label_arrival(frame, profile, label_delay_ms=label_delay_ms)
    by_ms = int(pd.Timestamp(known_by).value // 1_000_000)
    return arrival.known_by(by_ms).astype(np.int8)


def fit_review_capacity(
    scores: npt.NDArray[np.float64],
    *,
    split: TimeSplit,
    capacity: float | None,
    decline: float,
) -> CapacityChoice | None:
    """The review threshold whose validation alerts per day match the capacity, if one is set."""
    if capacity is None:
        return None
    days = (split.validation_end - split.validation_start).total_seconds() / 86_400
    review = capacity_threshold(scores=scores, days=days, capacity=capacity)
    if review.threshold > decline:
        # Declines alone exceed the budget; the service clips review to decline.
        log.warning(
            "review_capacity_below_declines",
            capacity=capacity,
            review_threshold=round(review.threshold, 4),
            decline_threshold=round(decline, 4),
        )
    return review


def review_training_entries(
    review: CapacityChoice | None, threshold: float | None
) -> dict[str, str]:
    """What a bundle records of its alert budget: capacity, threshold, validation rate."""
    if review is None or threshold is None:
        return {}
    return {
        "review_capacity": repr(review.capacity),
        "review_threshold": repr(threshold),
        "validation_alerts_per_day": repr(round(review.alerts_per_day, 4)),
    }


def carried_threshold(
    threshold: float, *, before: npt.NDArray[np.float64], after: npt.NDArray[np.float64]
) -> float:
    """The refitted model's threshold that alerts on the same share of the training rows.

    A threshold chosen on validation belongs to the model scored there; the model refitted
    on more data scores on another scale. Both models learnt from the training rows, so the
    share of them the first alerts on is the like-for-like target for the second.
    """
    share = float(np.mean(before >= threshold)) if before.size else 0.0
    if share <= 0.0 or after.size == 0:
        return threshold
    return float(np.quantile(after, 1.0 - share, method="higher"))


def training_reference(
    bundle: ModelBundle,
    features: Matrix,
    rows: npt.NDArray[np.bool_],
    split: TimeSplit,
    *,
    seed: int,
) -> TrainingReference:
    """A seeded sample of the model's validation rows, with the model's scores on them.

    The latest labelled days, not the whole training period: their rolling-window features
    are as warm as the ones the service computes, while the first days of a training frame
    have 7- and 30-day windows that are still filling up and would look like drift forever.
    """
    positions = np.flatnonzero(rows)
    if len(positions) > REFERENCE_ROWS:
        rng = np.random.default_rng(seed)
        positions = np.sort(rng.choice(positions, REFERENCE_ROWS, replace=False))
    sample = np.asarray(features[positions], dtype=np.float64)
    return TrainingReference(
        features=pd.DataFrame(sample, columns=list(bundle.feature_names)),
        scores=bundle.score_features(sample),
        start=split.validation_start.isoformat(),
        end=split.validation_end.isoformat(),
        rows=int(rows.sum()),
    )


def evaluate_rows(
    *,
    frame: pd.DataFrame,
    profile: DatasetProfile,
    rows: npt.NDArray[np.bool_],
    scores: npt.NDArray[np.float64],
    threshold: float,
    config: TrainingConfig,
) -> EvaluationResult:
    """All evaluation metrics of some rows' scores (card precision@k where cards exist)."""
    assert profile.label is not None  # noqa: S101 - checked by the callers
    subset = frame.loc[rows]
    has_card = profile.card_id is not None
    return evaluate(
        labels=subset[profile.label].to_numpy(dtype=np.int8),
        scores=scores,
        threshold=threshold,
        amounts=subset[profile.amount].to_numpy(dtype=np.float64),
        days=subset["event_time"].dt.floor("D").to_numpy() if has_card else None,
        cards=subset[profile.card_id].to_numpy() if has_card else None,
        k=config.precision_k,
        review_cost=config.review_cost,
    )


def _tune(
    *,
    features: Matrix,
    labels: Labels,
    times: "pd.Series[pd.Timestamp]",
    splits: list[TimeSplit],
    config: TrainingConfig,
) -> tuple[dict[str, Any], int, float | None]:
    """Search hyperparameters on validation average precision within the trial budget."""
    if config.trials <= 0:
        return default_params(config.model_type), 0, None
    folds = [
        _tuning_rows(split=split, labels=labels, times=times, config=config) for split in splits
    ]

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial, config.model_type)
        values = []
        for train_rows, validation_rows in folds:
            model, _ = fit_model(
                config.model_type,
                params,
                features=features[train_rows],
                labels=labels[train_rows],
                seed=config.seed,
                eval_set=(features[validation_rows], labels[validation_rows]),
            )
            scores = model.predict_proba(features[validation_rows])[:, 1]
            values.append(float(average_precision_score(labels[validation_rows], scores)))
        return float(np.mean(values))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed)
    )
    study.enqueue_trial(
        {k: v for k, v in default_params(config.model_type).items() if k != "n_estimators"},
        skip_if_exists=True,
    )
    study.optimize(objective, n_trials=config.trials, timeout=config.tune_timeout_s)
    best = study.best_trial
    params = suggest_params(optuna.trial.FixedTrial(best.params), config.model_type)
    return params, len(study.trials), float(best.value) if best.value is not None else None


def _tuning_rows(
    *,
    split: TimeSplit,
    labels: Labels,
    times: "pd.Series[pd.Timestamp]",
    config: TrainingConfig,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Rows of one fold: every fraud and at most max_tuning_negatives legitimate rows."""
    train_mask, validation_mask = split.masks(times)
    train_rows = np.flatnonzero(train_mask)
    negatives = train_rows[labels[train_rows] == 0]
    if len(negatives) > config.max_tuning_negatives:
        rng = np.random.default_rng(config.seed)
        keep = rng.choice(negatives, size=config.max_tuning_negatives, replace=False)
        train_rows = np.sort(np.concatenate([train_rows[labels[train_rows] == 1], keep]))
    return train_rows, np.flatnonzero(validation_mask)


def _check_period(labels: Labels, name: str, start: datetime, end: datetime) -> None:
    """A period must hold both classes to fit or to validate on."""
    if len(labels) == 0 or labels.sum() == 0 or labels.sum() == len(labels):
        msg = (
            f"the {name} period {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} has "
            f"{len(labels)} transactions of which {int(labels.sum())} fraud; it needs both "
            "fraud and legitimate ones (widen the period or check the dates)"
        )
        raise TrainingError(msg)


def _after(moment: pd.Timestamp) -> datetime:
    """Just after the last transaction, so that it falls inside a half-open period."""
    return (moment + pd.Timedelta(seconds=1)).to_pydatetime()
