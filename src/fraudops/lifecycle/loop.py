"""The closed loop's pieces that are not the facade: a job's findings and the waiting rule.

The loop's two scheduled jobs are `Lifecycle.monitor_job` and `Lifecycle.challenge_job`
(`fraudops.lifecycle.facade`), shared by `fraudops up`, the demo and, through
`fraudops monitor --json`, the DAGs.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fraudops.monitoring.policy import Policy
from fraudops.registry.base import CHALLENGER, ModelNotFoundError, ModelRegistry


@dataclass
class LoopStep:
    """What one run of a job found and did, in words for the status line and the logs."""

    job: str
    as_of: datetime
    findings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The findings on one line."""
        return "; ".join(self.findings)


def waiting_challenger(registry: ModelRegistry, policy: Policy, as_of: datetime) -> int | None:
    """The challenger, if it is recent enough to be the answer to the alarm raised now.

    Recent means trained on data up to two monitoring windows (each a label delay plus a
    performance window) back: it learnt from the days that raised the alarm, or from the
    days just before, and its comparison needs about one window of matured labels after its
    training to decide. Training another now would only restart that comparison. The DAGs
    read the same decision from `fraudops monitor --json`.
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
