"""The loop's monitor job: retrain when the policy asks, not again while a challenger waits."""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from fraudops.config import Settings
from fraudops.lifecycle.facade import Lifecycle
from fraudops.lifecycle.loop import waiting_challenger
from fraudops.monitoring.policy import Policy
from fraudops.registry import CHALLENGER, InMemoryRegistry
from fraudops.storage import Warehouse
from fraudops.training.bundle import ModelBundle

START = datetime(2024, 1, 1)  # as in the `simulated` fixture
# A champion older than a day of event time is due for retraining: the "schedule" reason.
POLICY = Policy(
    label_delay_days=2.0,
    performance_window_days=3.0,
    max_model_age_days=1.0,
    retrain_history_days=14.0,
    retrain_validation_days=5.0,
    retrain_trials=0,
    min_frauds=5,
    bootstrap_resamples=50,
)


def test_the_monitor_job_retrains_once_then_lets_the_challenger_wait(
    history: Warehouse, train_bundle: Callable[..., ModelBundle], tmp_path: Path
) -> None:
    """First alarm: a challenger is trained; same alarm a day later: it waits its comparison."""
    first = history.history_frame(START, START + timedelta(days=8), labels_known_by=START)
    champion = replace(
        train_bundle(first, threshold=0.5, seed=1),
        training={"trained_until": (START + timedelta(days=8)).isoformat()},
    )
    registry = InMemoryRegistry()
    registry.log_training(champion, input_example=None, dataset_fingerprint="t")  # type: ignore[arg-type]
    loop = Lifecycle(
        settings=Settings(home=tmp_path),
        warehouse=history,
        registry=registry,
        policy=POLICY,
        actor="test",
    )
    as_of = START + timedelta(days=16)
    step = loop.monitor_job(as_of)
    assert "retrain needed: schedule" in step.summary()
    assert "trained v2 as challenger" in step.summary()
    assert registry.resolve(CHALLENGER).version == 2
    assert waiting_challenger(registry, POLICY, as_of + timedelta(days=1)) == 2

    again = loop.monitor_job(as_of + timedelta(days=1))
    assert "challenger v2 already learnt from that window" in again.summary()
    assert [v.version for v in registry.versions()] == [2, 1]
    retrains = [e for e in history.events() if e.kind == "retrain"]
    assert [(e.trigger, e.verdict, e.actor) for e in retrains] == [
        ("schedule", "registered", "test")
    ]
    # Long after, the waiting challenger is stale: a new alarm would train a new one.
    assert waiting_challenger(registry, POLICY, as_of + timedelta(days=30)) is None
