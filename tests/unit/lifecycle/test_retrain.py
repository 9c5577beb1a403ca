"""Retraining's edges: options from the policy, and failures that are audited and explained."""

from datetime import datetime, timedelta

import pandas as pd
import pytest

from fraudops.lifecycle.compare import CompareOptions
from fraudops.lifecycle.retrain import RetrainError, RetrainOptions, retrain
from fraudops.monitoring.policy import Policy
from fraudops.registry import InMemoryRegistry
from fraudops.simulate import SimulationConfig, simulate
from fraudops.storage import Warehouse
from fraudops.training.trainer import TrainingError
from warehouse_fill import store_served


def test_options_are_read_from_the_policy() -> None:
    """Both option sets take the policy's label delay and their own fields by name."""
    policy = Policy(
        label_delay_days=5,
        min_frauds=30,
        confidence=0.9,
        bootstrap_resamples=200,
        promotion_metric="f1",
        promotion_margin=0.01,
        retrain_history_days=35,
        retrain_validation_days=4,
        retrain_trials=2,
    )

    assert RetrainOptions(
        label_delay_days=5, history_days=35, validation_days=4, trials=2
    ) == RetrainOptions.from_policy(policy)
    assert CompareOptions(
        label_delay_days=5,
        min_frauds=30,
        confidence=0.9,
        resamples=200,
        metric="f1",
        margin=0.01,
    ) == CompareOptions.from_policy(policy)


def test_an_unknown_promotion_metric_is_refused() -> None:
    """Only average precision and F1 can decide a promotion."""
    with pytest.raises(ValueError, match="promotion metric"):
        CompareOptions(metric="recall")  # type: ignore[arg-type]


def test_retraining_an_empty_warehouse_fails_clearly_and_is_audited(warehouse: Warehouse) -> None:
    """No transactions at all: RetrainError (a TrainingError) and a "failed" retrain event."""
    registry = InMemoryRegistry()

    with pytest.raises(RetrainError, match="the warehouse holds no transactions") as raised:
        retrain(
            warehouse=warehouse,
            registry=registry,
            options=RetrainOptions(trials=1),
            trigger="schedule",
            actor="scheduler",
        )

    assert isinstance(raised.value, TrainingError)
    event = warehouse.events()[0]
    assert ("retrain", "schedule", "scheduler", "failed", None) == (
        event.kind,
        event.trigger,
        event.actor,
        event.verdict,
        event.as_of,
    )
    assert "RetrainError" == event.detail["error_type"]
    assert [] == registry.versions()


def test_a_history_too_short_for_the_split_names_the_periods(
    history: Warehouse, simulated: pd.DataFrame
) -> None:
    """History shorter than validation plus the delay leaves no training period: said so."""
    with pytest.raises(RetrainError, match="no training period left"):
        retrain(
            warehouse=history,
            registry=InMemoryRegistry(),
            options=RetrainOptions(trials=1, history_days=9, validation_days=3),
            trigger="manual",
            actor="test",
        )

    event = history.events()[0]
    assert "failed" == event.verdict
    clock = history.event_clock()
    assert clock is not None
    assert clock.isoformat() == event.detail["as_of"]  # as of the warehouse's event clock
    assert simulated["trans_date_trans_time"].max().replace(" ", "T") >= event.detail["as_of"]
    assert "SplitError" == event.detail["error_type"]


def test_slow_fraud_labels_move_the_labelled_end_and_the_young_are_counted_immature(
    warehouse: Warehouse,
) -> None:
    """Frauds reported 5 days late under a 2-day delay: the last 5 days are immature, left
    out and counted, and the retraining says where its maturity age came from."""
    simulated = simulate(SimulationConfig(days=21, cards=100, seed=5, fraud_rate=0.02))
    store_served(warehouse, simulated, label_days=5)
    as_of = datetime(2024, 1, 21)
    result = retrain(
        warehouse=warehouse,
        registry=InMemoryRegistry(),
        options=RetrainOptions(label_delay_days=2, history_days=14, validation_days=5, trials=0),
        as_of=as_of,
        trigger="manual",
        actor="test",
    )

    times = pd.to_datetime(simulated["trans_date_trans_time"])
    assert as_of - timedelta(days=5) == result.labelled_end
    assert int(((times >= result.labelled_end) & (times < as_of)).sum()) == result.immature
    assert result.immature > 0
    assert (5.0, 2.0, "observed") == (
        result.maturity["age_days"],
        result.maturity["delay_days"],
        result.maturity["source"],
    )
    assert f"{result.immature} younger transactions left out as immature" in result.summary()
    assert result.maturity == result.event.detail["maturity"]
