"""The lifecycle's one facade: monitor, retrain, challenge, promote, roll back, check quality.

The CLI, the HTTP API, `fraudops up`, the demo and (through the CLI) the Airflow DAGs all
act on the loop through `Lifecycle`, so that each action is wired once: the same policy,
the same report and model folders (HOME/reports, HOME/models), the same retraining rule.
`monitor_job` and `challenge_job` are the scheduled jobs of the in-process loop.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import structlog

from fraudops.config import Settings
from fraudops.data.profiles import DatasetProfile
from fraudops.lifecycle.compare import ChallengeOutcome, CompareOptions, run_champion_challenger
from fraudops.lifecycle.loop import LoopStep, waiting_challenger
from fraudops.lifecycle.models import ChampionChange, ModelRow, list_models, promote, rollback
from fraudops.lifecycle.notify import notify_service
from fraudops.lifecycle.retrain import (
    RetrainError,
    RetrainOptions,
    RetrainResult,
    retrain,
    retrain_as_of,
    retrain_folder,
    served_profile,
)
from fraudops.monitoring.monitor import MonitorResult, record_monitor_run, run_monitor
from fraudops.monitoring.policy import Policy, load_policy
from fraudops.monitoring.quality import QualityReport, run_quality
from fraudops.monitoring.report import write_report
from fraudops.registry.base import CHAMPION, ModelNotFoundError, ModelRegistry
from fraudops.storage import Warehouse

log = structlog.get_logger(__name__)

REPORTS = "reports"
MODELS = "models"


@dataclass(frozen=True, kw_only=True)
class MonitorDecision:
    """A monitoring run and the loop's decision on it: retrain now, or why not."""

    result: MonitorResult
    challenger_waiting: int | None  # a challenger that already learnt from the alarm's window

    @property
    def retrain(self) -> bool:
        """Whether to train a challenger now: the policy asks and no suitable one waits."""
        return self.result.verdict.retrain and self.challenger_waiting is None

    @property
    def trigger(self) -> str:
        """The retraining's trigger: the verdict's reasons joined by `+`."""
        return "+".join(self.result.verdict.reasons) or "monitor"

    def to_dict(self) -> dict[str, Any]:
        """The run's document, with the decision that `fraudops monitor --json` carries."""
        return self.result.to_dict() | {
            "challenger_waiting": self.challenger_waiting,
            "decision": {
                "run_id": self.result.run_id,
                "as_of": self.result.as_of.isoformat(),
                "retrain": self.retrain,
                "reasons": list(self.result.verdict.reasons),
                "challenger_waiting": self.challenger_waiting,
                "trigger": self.trigger,
            },
        }


@dataclass(kw_only=True)
class Lifecycle:
    """The loop's actions over one warehouse and registry, under one policy."""

    settings: Settings
    warehouse: Warehouse
    registry: ModelRegistry
    policy: Policy
    report_dir: Path | None = None
    models_dir: Path | None = None
    actor: str = "scheduler"

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        warehouse: Warehouse,
        *,
        registry: ModelRegistry,
        actor: str,
        policy: Policy | None = None,
        folder: Path | None = None,
    ) -> Self:
        """The lifecycle the settings describe; reports and models under `folder` (HOME)."""
        base = settings.home if folder is None else folder
        return cls(
            settings=settings,
            warehouse=warehouse,
            registry=registry,
            policy=load_policy(settings) if policy is None else policy,
            report_dir=base / REPORTS,
            models_dir=base / MODELS,
            actor=actor,
        )

    @classmethod
    @contextmanager
    def opened(cls, settings: Settings, *, actor: str) -> Iterator[Self]:
        """The settings' warehouse (migrated) and MLflow registry, the warehouse closed after."""
        from fraudops.registry.tracking import MlflowRegistry  # noqa: PLC0415 - MLflow is heavy

        warehouse = Warehouse.from_settings(settings)
        try:
            warehouse.migrate()
            yield cls.from_settings(
                settings, warehouse, registry=MlflowRegistry(settings), actor=actor
            )
        finally:
            warehouse.dispose()

    @property
    def retrain_options(self) -> RetrainOptions:
        """How retraining reads and splits history: the policy's fields, the settings' label
        maturity quantile and the alert budget to fit the review threshold to."""
        options = RetrainOptions.from_policy(
            self.policy, maturity_quantile=self.settings.label_maturity_quantile
        )
        return replace(options, review_capacity=self._review_capacity())

    @property
    def compare_options(self) -> CompareOptions:
        """How champion and challenger are judged: the policy's fields and the settings' label
        maturity quantile, so the comparison window matures as monitoring's does."""
        return CompareOptions.from_policy(
            self.policy, maturity_quantile=self.settings.label_maturity_quantile
        )

    # --- the actions ---------------------------------------------------------------------------

    def monitor(self, as_of: datetime | None = None, *, trigger: str = "manual") -> MonitorDecision:
        """Monitor the champion, write the HTML report, store the run; the loop's decision."""
        result = run_monitor(
            warehouse=self.warehouse,
            registry=self.registry,
            policy=self.policy,
            as_of=as_of,
            store=False,
            maturity_quantile=self.settings.label_maturity_quantile,
            review_capacity=self.settings.review_capacity,
        )
        if self.report_dir is not None:
            path = write_report(
                result,
                self.report_dir,
                reference_scores=result.reference_scores,
                current_scores=result.current_scores,
            )
            result = replace(result, report_path=path)  # stored with the run and its event
        result = record_monitor_run(self.warehouse, result, trigger=trigger, actor=self.actor)
        waiting = waiting_challenger(self.registry, self.policy, result.as_of)
        return MonitorDecision(result=result, challenger_waiting=waiting)

    def retrain(self, as_of: datetime | None = None, *, trigger: str = "manual") -> RetrainResult:
        """Train on the most recent labelled data and register it (champion, else challenger)."""
        # An empty warehouse leaves no moment: retrain() then fails, and audits the failure.
        moment = self.warehouse.event_clock() if as_of is None else as_of
        folder = None
        if self.models_dir is not None and moment is not None:
            moment = retrain_as_of(self.warehouse, moment)
            folder = retrain_folder(self.models_dir, as_of=moment, trigger=trigger)
        return retrain(
            warehouse=self.warehouse,
            registry=self.registry,
            options=self.retrain_options,
            as_of=moment,
            trigger=trigger,
            actor=self.actor,
            out_dir=folder,
        )

    def quality(
        self,
        as_of: datetime | None = None,
        *,
        days: float = 7.0,
        profile: DatasetProfile | None = None,
    ) -> QualityReport:
        """The data-quality checks of the `days` before as_of, of the served profile (else
        `profile`), label coverage judged on transactions past the maturity age."""
        return run_quality(
            self.warehouse,
            as_of=as_of,
            days=days,
            label_delay_days=self.policy.label_delay_days,
            maturity_quantile=self.settings.label_maturity_quantile,
            profile=served_profile(self.registry) if profile is None else profile,
        )

    def _review_capacity(self) -> float | None:
        """The settings' review capacity, else the one the champion was fitted to (kept)."""
        if self.settings.review_capacity is not None:
            return self.settings.review_capacity
        try:
            champion = self.registry.load_version(self.registry.resolve(CHAMPION).version)
        except ModelNotFoundError:
            return None
        return champion.review_capacity

    def challenge(
        self, as_of: datetime | None = None, *, trigger: str = "schedule"
    ) -> ChallengeOutcome:
        """Compare champion and challenger; promote with evidence, replace the loser."""
        return run_champion_challenger(
            warehouse=self.warehouse,
            registry=self.registry,
            options=self.compare_options,
            retrain_options=self.retrain_options,
            as_of=as_of,
            actor=self.actor,
            trigger=trigger,
            settings=self.settings,
            out_dir=self.models_dir,
        )

    def promote(self, version: int, *, reason: str, change_schema: bool = False) -> ChampionChange:
        """Make a version the champion now, audited; the service is told to reload.

        A version of another profile than the champion's needs `change_schema`.
        """
        return promote(
            version,
            registry=self.registry,
            warehouse=self.warehouse,
            actor=self.actor,
            reason=reason,
            settings=self.settings,
            change_schema=change_schema,
        )

    def rollback(self, *, reason: str, change_schema: bool = False) -> ChampionChange:
        """Give the champion alias back to the previous champion; the service is told."""
        return rollback(
            registry=self.registry,
            warehouse=self.warehouse,
            actor=self.actor,
            reason=reason,
            settings=self.settings,
            change_schema=change_schema,
        )

    def models(self) -> list[ModelRow]:
        """Every registered version with its metrics and latest audited decision."""
        return list_models(self.registry, self.warehouse)

    def notify_service(self) -> str:
        """Tell the running service (FRAUDOPS_SERVICE_URL) to reload its models."""
        return notify_service(self.settings)

    # --- the in-process loop's scheduled jobs ------------------------------------------------

    def monitor_job(self, as_of: datetime) -> LoopStep:
        """Monitor; retrain when the policy says so and no suitable challenger waits."""
        step = LoopStep(job="monitor", as_of=as_of)
        decision = self.monitor(as_of, trigger="schedule")
        verdict = decision.result.verdict
        if not verdict.retrain:
            step.findings.append("ok" if not verdict.reasons else ", ".join(verdict.reasons))
            return step
        step.findings.append(f"retrain needed: {decision.trigger}")
        if decision.challenger_waiting is not None:
            step.findings.append(
                f"challenger v{decision.challenger_waiting} already learnt from that window"
            )
            return step
        try:
            trained = self.retrain(as_of, trigger=decision.trigger)
        except RetrainError as error:  # audited by retrain(); the next alarm tries again
            step.findings.append(f"retraining failed: {error}")
            return step
        step.findings.append(f"trained v{trained.version} as {trained.alias}")
        step.findings.append(f"service: {self.notify_service()}")
        return step

    def challenge_job(self, as_of: datetime) -> LoopStep:
        """The champion/challenger job, its outcome in a line."""
        step = LoopStep(job="champion-challenger", as_of=as_of)
        step.findings.append(self.challenge(as_of).summary())
        return step
