"""One monitoring run: the champion's drift and performance as of a moment, and the verdict.

Drift compares the transactions the champion served in the last `drift_window_days` with the
training reference inside its bundle: every feature (one-hot columns gathered back into
their categorical feature, for a chi-squared test) and the score distribution. Performance
reads the labelled window that ends the maturity age before as_of (`label_delay_days`, or
longer where the fraud labels known by as_of show they take longer: monitoring.maturity),
with the labels known by as_of, so that a run can be replayed later and see what it saw
then; the younger transactions are counted as left out, immature.
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from fraudops.features.labels import DEFAULT_MATURITY_QUANTILE, LabelMaturity
from fraudops.monitoring.budget import AlertBudget, alert_budget, checked_days
from fraudops.monitoring.drift import FeatureDrift, drift_report
from fraudops.monitoring.maturity import observed_label_maturity
from fraudops.monitoring.performance import WindowPerformance, finite_or_none, window_performance
from fraudops.monitoring.policy import Policy, Verdict, decide
from fraudops.registry.base import CHAMPION, ModelNotFoundError, ModelRegistry
from fraudops.storage import LifecycleEvent, MonitorRun, Warehouse
from fraudops.times import utc_naive, utc_now
from fraudops.training.bundle import ModelBundle

__all__ = [
    "MAX_DRIFT_ROWS",
    "OTHER_CATEGORY",
    "DriftResult",
    "MonitorResult",
    "NoChampionError",
    "budget_line",
    "categorical_view",
    "feature_drift_dict",
    "measure_alert_budget",
    "measure_drift",
    "measure_performance",
    "record_monitor_run",
    "run_monitor",
]

log = structlog.get_logger(__name__)

MAX_DRIFT_ROWS = 20_000
"""The latest served transactions a drift test reads at most (as many as the reference)."""
OTHER_CATEGORY = "<other>"
"""A category the model did not learn (all its one-hot columns are 0)."""
SCORE = "score"


class NoChampionError(LookupError):
    """There is no champion to monitor."""


@dataclass(frozen=True, kw_only=True)
class DriftResult:
    """The served window compared with the champion's training reference."""

    start: datetime
    end: datetime
    rows: int  # champion-scored transactions compared (the latest MAX_DRIFT_ROWS at most)
    other_version_rows: int  # transactions of the window scored by another version, left out
    reference_rows: int = 0
    features: tuple[FeatureDrift, ...] = ()
    score: FeatureDrift | None = None
    ignored: tuple[str, ...] = ()  # left out by the policy
    skipped: str | None = None  # why drift was not measured, if it was not

    @property
    def drifted(self) -> list[str]:
        """Names of the drifted features."""
        return [d.feature for d in self.features if d.drifted]

    def ranked(self) -> list[FeatureDrift]:
        """Features drifted first, then by adjusted p-value and larger PSI."""
        return sorted(
            self.features, key=lambda d: (not d.drifted, d.adjusted_p_value, -d.psi, d.feature)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, features ranked."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "other_version_rows": self.other_version_rows,
            "reference_rows": self.reference_rows,
            "skipped": self.skipped,
            "ignored": list(self.ignored),
            "drifted": self.drifted,
            "score": None if self.score is None else feature_drift_dict(self.score),
            "features": [feature_drift_dict(d) for d in self.ranked()],
        }


def feature_drift_dict(drift: FeatureDrift) -> dict[str, Any]:
    """A feature's drift test as JSON-ready fields (NaN as None)."""
    return {
        "feature": drift.feature,
        "kind": drift.kind,
        "test": drift.test,
        "statistic": finite_or_none(drift.statistic),
        "p_value": finite_or_none(drift.p_value),
        "adjusted_p_value": finite_or_none(drift.adjusted_p_value),
        "psi": finite_or_none(drift.psi),
        "reference_rows": drift.reference_rows,
        "current_rows": drift.current_rows,
        "drifted": drift.drifted,
    }


@dataclass(frozen=True, kw_only=True)
class MonitorResult:
    """Everything one monitoring run found and decided."""

    as_of: datetime
    model_name: str
    champion_version: str
    threshold: float
    performance: WindowPerformance
    excluded_labelled: int  # labelled transactions of the window not scored by the champion
    drift: DriftResult
    verdict: Verdict
    policy: Policy
    maturity: LabelMaturity | None = None  # how old the labelled window's transactions are
    immature: int = 0  # transactions younger than that, left out of performance
    alert_budget: AlertBudget | None = None  # None when no review capacity is set
    report_path: Path | None = None
    run_id: int | None = None
    # The score samples drift compared, for the report's plot (not part of the document).
    reference_scores: npt.NDArray[np.float64] | None = field(
        default=None, repr=False, compare=False
    )
    current_scores: npt.NDArray[np.float64] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The result document as stored with the run and answered as JSON."""
        return {
            "as_of": self.as_of.isoformat(),
            "model_name": self.model_name,
            "champion_version": self.champion_version,
            "threshold": self.threshold,
            "run_id": self.run_id,
            "report_path": None if self.report_path is None else str(self.report_path),
            # The verdict's gist at the top too, for scripts and DAGs branching on it.
            "retrain": self.verdict.retrain,
            "reasons": list(self.verdict.reasons),
            "status": self.verdict.status,
            "verdict": self.verdict.to_dict(),
            "performance": self.performance.to_dict()
            | {"excluded_labelled": self.excluded_labelled},
            "drift": self.drift.to_dict(),
            "alert_budget": None if self.alert_budget is None else self.alert_budget.to_dict(),
            "policy": self.policy.model_dump(mode="json"),
            "maturity": None
            if self.maturity is None
            else self.maturity.to_dict() | {"immature": self.immature},
        }

    def __str__(self) -> str:
        """A few plain lines: the verdict, the performance intervals, the drifted features."""
        verdict = self.verdict
        why = f" ({', '.join(verdict.reasons)})" if verdict.reasons else ""
        lines = [
            f"{self.model_name} v{self.champion_version} as of {self.as_of:%Y-%m-%d %H:%M}: "
            f"{verdict.status}{why}",
            f"labelled window: {self.performance.transactions} transactions, "
            f"{self.performance.frauds} frauds (at least {self.performance.min_frauds} needed)",
        ]
        if self.maturity is not None:
            lines.append(
                f"{self.immature} younger transactions left out as immature, {self.maturity}"
            )
        for name, estimate in self.performance.estimates().items():
            lines.append(
                f"  {name}: {_number(estimate.value)} "
                f"[{_number(estimate.low)}, {_number(estimate.high)}]"
            )
        if self.drift.skipped:
            lines.append(f"drift not measured: {self.drift.skipped}")
        else:
            drifted = ", ".join(self.drift.drifted) or "none"
            score_psi = None if self.drift.score is None else self.drift.score.psi
            lines.append(f"drifted features: {drifted}; score PSI {_number(score_psi)}")
        if self.alert_budget is not None:
            lines.append(budget_line(self.alert_budget))
        return "\n".join(lines)


def budget_line(budget: AlertBudget) -> str:
    """The alert budget in one line: alerts per day against capacity, days over."""
    return (
        f"alerts per day: {budget.alerts_per_day:,.1f} over the last {len(budget.days)} days "
        f"against a capacity of {budget.capacity:g} (limit {budget.limit:,.1f}); "
        f"{budget.over_days} latest day(s) over, {budget.required_days} overrun it"
    )


def _number(value: float | None) -> str:
    """A metric in 3 decimals, or n/a."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def run_monitor(
    *,
    warehouse: Warehouse,
    registry: ModelRegistry,
    policy: Policy,
    as_of: datetime | None = None,
    store: bool = True,
    trigger: str = "manual",
    actor: str = "cli",
    maturity_quantile: float = DEFAULT_MATURITY_QUANTILE,
    review_capacity: float | None = None,
) -> MonitorResult:
    """Monitor the champion as of a moment (default: the warehouse's event clock).

    The alert budget is checked against `review_capacity`, else the capacity the champion's
    review threshold was fitted to; with neither it is not checked.

    Stores the run and an audit event unless `store` is False; writes no report (the caller
    does, see `fraudops.lifecycle.facade`). Raises NoChampionError when no version is champion.
    """
    try:
        info = registry.resolve(CHAMPION)
    except ModelNotFoundError as error:
        raise NoChampionError(f"no champion to monitor: {error}") from error
    bundle = registry.load_version(info.version)
    version = str(info.version)
    moment = _moment(as_of, warehouse)
    bound = log.bind(model_version=version, as_of=moment.isoformat())

    drift_start = moment - timedelta(days=policy.drift_window_days)
    drift, current_scores = measure_drift(
        bundle=bundle,
        served=warehouse.served_between(drift_start, moment, limit=MAX_DRIFT_ROWS),
        version=version,
        policy=policy,
        start=drift_start,
        end=moment,
    )
    maturity = observed_label_maturity(
        warehouse,
        as_of=moment,
        delay=timedelta(days=policy.label_delay_days),
        quantile=maturity_quantile,
    )
    end = moment - maturity.age
    start = end - timedelta(days=policy.performance_window_days)
    learnt_until = bundle.trained_until
    if learnt_until is not None and learnt_until > start:
        # Data the champion learnt from (or was tuned on) would flatter it: left out.
        start = min(learnt_until, end)
    labelled = warehouse.labelled_between(start, end, labels_known_by=moment)
    performance, excluded = measure_performance(
        labelled=labelled,
        version=version,
        threshold=bundle.threshold,
        policy=policy,
        start=start,
        end=end,
    )
    capacity = review_capacity if review_capacity is not None else bundle.review_capacity
    budget = None
    if capacity is not None:
        budget = measure_alert_budget(warehouse, capacity=capacity, policy=policy, as_of=moment)
    verdict = decide(
        policy=policy,
        as_of=moment,
        performance=performance,
        feature_drift=drift.features,
        score_drift=drift.score,
        champion_metrics=bundle.metrics or info.metrics,
        trained_until=learnt_until,
        alert_budget=budget,
    )
    result = MonitorResult(
        as_of=moment,
        model_name=info.name,
        champion_version=version,
        threshold=float(bundle.threshold),
        performance=performance,
        excluded_labelled=excluded,
        drift=drift,
        verdict=verdict,
        policy=policy,
        maturity=maturity,
        immature=warehouse.count_between(end, moment),
        alert_budget=budget,
        reference_scores=None
        if bundle.drift_reference is None
        else np.asarray(bundle.drift_reference.scores, dtype=np.float64),
        current_scores=None
        if current_scores is None
        else np.asarray(current_scores, dtype=np.float64),
    )
    if store:
        result = record_monitor_run(warehouse, result, trigger=trigger, actor=actor)
    bound.info(
        "monitored",
        verdict=verdict.status,
        reasons=verdict.reasons,
        frauds=performance.frauds,
        drifted=len(drift.drifted),
    )
    return result


def measure_alert_budget(
    warehouse: Warehouse, *, capacity: float, policy: Policy, as_of: datetime
) -> AlertBudget:
    """The champion's alerts of the last full event days against the capacity."""
    start, end = checked_days(as_of, policy.alert_budget_days)
    per_day = {d.day: d.reviews + d.declines for d in warehouse.alerts_per_day(start, end)}
    return alert_budget(
        capacity=capacity,
        alerts=per_day,
        start=start,
        end=end,
        tolerance=policy.alert_budget_tolerance,
        required_days=policy.alert_budget_days,
    )


def _moment(as_of: datetime | None, warehouse: Warehouse) -> datetime:
    """as_of as a naive UTC time; by default the warehouse's event clock (else now)."""
    if as_of is None:
        as_of = warehouse.event_clock() or utc_now()
    return utc_naive(as_of)


def measure_drift(
    *,
    bundle: ModelBundle,
    served: pd.DataFrame,
    version: str,
    policy: Policy,
    start: datetime,
    end: datetime,
) -> tuple[DriftResult, npt.NDArray[np.float64] | None]:
    """Drift of the champion's served features and scores; also the served scores compared."""
    mine = served["model_version"].astype(str) == version
    current = served.loc[mine].reset_index(drop=True)
    window = DriftResult(
        start=start, end=end, rows=len(current), other_version_rows=int((~mine).sum())
    )
    reference = bundle.drift_reference
    if reference is None:
        skipped = f"champion v{version} carries no training reference (trained before they existed)"
        return dataclasses.replace(window, skipped=skipped), None
    window = dataclasses.replace(window, reference_rows=len(reference.features))
    if current.empty:
        skipped = f"no transaction scored by champion v{version} in [{start}, {end})"
        return dataclasses.replace(window, skipped=skipped), None
    reference_view, categorical = categorical_view(reference.features, bundle.spec.vocabularies)
    current_view, _ = categorical_view(
        current.reindex(columns=list(bundle.feature_names)), bundle.spec.vocabularies
    )
    tested = [name for name in reference_view.columns if not policy.ignores_feature(name)]
    ignored = tuple(name for name in reference_view.columns if policy.ignores_feature(name))
    features = drift_report(
        reference_view,
        current_view,
        features=tested,
        categorical=categorical,
        alpha=policy.drift_alpha,
        min_psi=policy.drift_min_psi,
    )
    current_scores = current["fraud_probability"].to_numpy(dtype=np.float64)
    (score,) = drift_report(
        pd.DataFrame({SCORE: reference.scores}),
        pd.DataFrame({SCORE: current_scores}),
        alpha=policy.drift_alpha,
        min_psi=policy.drift_min_psi,
    )
    result = dataclasses.replace(window, features=tuple(features), score=score, ignored=ignored)
    return result, current_scores


def categorical_view(
    features: pd.DataFrame, vocabularies: Mapping[str, Sequence[str]]
) -> tuple[pd.DataFrame, set[str]]:
    """Features with each one-hot group (`column=value`) gathered back into one category column.

    A row with none of its group's columns set has a category the model did not learn
    (OTHER_CATEGORY); a row with the whole group missing has a missing category.
    """
    view = features.copy()
    categorical: set[str] = set()
    for column, values in vocabularies.items():
        names = [f"{column}={value}" for value in values]
        if not names or not set(names) <= set(view.columns):
            continue
        block = view[names].to_numpy(dtype=np.float64)
        missing = np.isnan(block).all(axis=1)
        filled = np.nan_to_num(block, nan=0.0)
        known = filled.max(axis=1) >= 0.5
        labels = np.asarray(values, dtype=object)[filled.argmax(axis=1)]
        category = np.where(known, labels, OTHER_CATEGORY).astype(object)
        category[missing] = None
        position = view.columns.get_loc(names[0])
        view = view.drop(columns=names)
        view.insert(int(position), column, category)  # type: ignore[arg-type]
        categorical.add(column)
    return view, categorical


def measure_performance(
    *,
    labelled: pd.DataFrame,
    version: str,
    threshold: float,
    policy: Policy,
    start: datetime,
    end: datetime,
) -> tuple[WindowPerformance, int]:
    """Performance of the champion's own scores on a labelled window; rows left out counted."""
    probability = pd.to_numeric(labelled["fraud_probability"], errors="coerce")
    mine = (labelled["model_version"].astype(str) == version) & probability.notna()
    rows = labelled.loc[mine]
    scores = probability.loc[mine].to_numpy(dtype=np.float64)
    performance = window_performance(
        labels=rows["is_fraud"].to_numpy(dtype=np.int64),
        scores=scores,
        alerts=scores >= threshold,
        days=pd.to_datetime(rows["event_time"]).to_numpy(dtype="datetime64[ns]"),
        cards=rows["cc_num"].astype(str).to_numpy() if "cc_num" in rows else None,
        k=policy.precision_k,
        confidence=policy.confidence,
        resamples=policy.bootstrap_resamples,
        min_frauds=policy.min_frauds,
        start=start,
        end=end,
    )
    return performance, int((~mine).sum())


def record_monitor_run(
    warehouse: Warehouse, result: MonitorResult, *, trigger: str, actor: str
) -> MonitorResult:
    """Keep the run and audit the decision; the result with its run id."""
    verdict = result.verdict
    run = warehouse.store_monitor_run(
        MonitorRun(
            as_of=result.as_of,
            model_name=result.model_name,
            model_version=result.champion_version,
            retrain=verdict.retrain,
            reasons=list(verdict.reasons),
            result=result.to_dict(),
        )
    )
    stored = dataclasses.replace(result, run_id=run.id)
    performance = result.performance
    warehouse.record_event(
        LifecycleEvent(
            kind="monitor",
            trigger=trigger,
            actor=actor,
            verdict=verdict.status,
            model_name=result.model_name,
            champion_version=result.champion_version,
            as_of=result.as_of,
            detail={
                "run_id": run.id,
                "reasons": list(verdict.reasons),
                "transactions": performance.transactions,
                "frauds": performance.frauds,
                **{
                    name: estimate.to_dict()
                    for name, estimate in performance.estimates().items()
                    if name in {"f1", "average_precision"}
                },
                "drifted_features": result.drift.drifted,
                "score_psi": None
                if result.drift.score is None
                else finite_or_none(result.drift.score.psi),
                "report_path": None if result.report_path is None else str(result.report_path),
            },
        )
    )
    return stored
