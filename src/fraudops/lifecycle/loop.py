"""The closed loop's two scheduled jobs, shared by `fraudops up`, the demo and the DAGs.

`monitor(as_of)` runs monitoring and, when the policy asks for it, trains a challenger on the
most recent labelled data. It does not train again while a challenger that already learnt
from the window that raised the alarm waits for its comparison. `challenge(as_of)` runs the
champion/challenger job: compare on data neither model learnt from, promote with evidence,
replace the loser. Both take the event-time moment they are due for.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from fraudops.config import Settings
from fraudops.lifecycle.compare import CompareOptions, run_champion_challenger
from fraudops.lifecycle.notify import notify_service
from fraudops.lifecycle.retrain import RetrainError, RetrainOptions, retrain
from fraudops.monitoring.monitor import run_monitor
from fraudops.monitoring.policy import Policy
from fraudops.registry import CHALLENGER, ModelNotFoundError, ModelRegistry
from fraudops.storage import Warehouse

log = structlog.get_logger(__name__)


@dataclass
class LoopStep:
    """What one run of a job found and did, in words for the status line and the logs."""

    job: str
    as_of: datetime
    findings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The findings on one line."""
        return "; ".join(self.findings)


@dataclass(kw_only=True)
class Lifecycle:
    """The loop's jobs over one warehouse and registry, under one policy."""

    settings: Settings
    warehouse: Warehouse
    registry: ModelRegistry
    policy: Policy
    report_dir: Path | None = None
    out_dir: Path | None = None
    actor: str = "scheduler"

    def monitor(self, as_of: datetime) -> LoopStep:
        """Monitor; retrain when the policy says so and no suitable challenger waits."""
        step = LoopStep(job="monitor", as_of=as_of)
        result = run_monitor(
            warehouse=self.warehouse,
            registry=self.registry,
            policy=self.policy,
            as_of=as_of,
            report_dir=self.report_dir,
            trigger="schedule",
            actor=self.actor,
        )
        verdict = result.verdict
        if not verdict.retrain:
            step.findings.append("ok" if not verdict.reasons else ", ".join(verdict.reasons))
            return step
        reasons = "+".join(verdict.reasons)
        step.findings.append(f"retrain needed: {reasons}")
        waiting = waiting_challenger(self.registry, self.policy, as_of)
        if waiting is not None:
            step.findings.append(f"challenger v{waiting} already learnt from that window")
            return step
        try:
            trained = retrain(
                warehouse=self.warehouse,
                registry=self.registry,
                options=RetrainOptions.from_policy(self.policy),
                as_of=as_of,
                trigger=reasons,
                actor=self.actor,
                out_dir=None
                if self.out_dir is None
                else self.out_dir / f"retrain-{as_of:%Y%m%dT%H%M}",
            )
        except RetrainError as error:  # audited by retrain(); the next alarm tries again
            step.findings.append(f"retraining failed: {error}")
            return step
        step.findings.append(f"trained v{trained.version} as {trained.alias}")
        step.findings.append(f"service: {notify_service(self.settings)}")
        return step

    def challenge(self, as_of: datetime) -> LoopStep:
        """Compare champion and challenger; promote with evidence, replace the loser."""
        step = LoopStep(job="champion-challenger", as_of=as_of)
        outcome = run_champion_challenger(
            warehouse=self.warehouse,
            registry=self.registry,
            options=CompareOptions.from_policy(self.policy),
            retrain_options=RetrainOptions.from_policy(self.policy),
            as_of=as_of,
            actor=self.actor,
            settings=self.settings,
            out_dir=self.out_dir,
        )
        step.findings.append(outcome.summary())
        return step


def waiting_challenger(registry: ModelRegistry, policy: Policy, as_of: datetime) -> int | None:
    """The challenger, if it is recent enough to be the answer to the alarm raised now.

    Recent means trained on data up to two monitoring windows (each a label delay plus a
    performance window) back: it learnt from the days that raised the alarm, or from the
    days just before, and its comparison needs about one window of matured labels after its
    training to decide. Training another now would only restart that comparison. The DAGs
    apply the same rule through `fraudops monitor --json`.
    """
    try:
        challenger = registry.resolve(CHALLENGER)
    except ModelNotFoundError:
        return None
    trained_until = registry.load_version(challenger.version).trained_until
    if trained_until is None:
        return None
    window_start = as_of - 2 * timedelta(
        days=policy.label_delay_days + policy.performance_window_days
    )
    return challenger.version if trained_until >= window_start else None
