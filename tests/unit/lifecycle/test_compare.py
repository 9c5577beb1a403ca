"""Champion against challenger on a SQLite warehouse of simulated history."""

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from fraudops.features.spec import FEATURE_GROUPS
from fraudops.lifecycle.compare import (
    CompareOptions,
    ComparisonError,
    compare_champion_challenger,
    feature_history,
    run_champion_challenger,
)
from fraudops.lifecycle.retrain import RetrainOptions
from fraudops.registry import CHALLENGER, CHAMPION, InMemoryRegistry
from fraudops.simulate import SimulationConfig, simulate
from fraudops.storage import Warehouse
from fraudops.training.bundle import ModelBundle
from fraudops.training.metrics import average_precision
from warehouse_fill import store_served

OPTIONS = CompareOptions(min_frauds=5, resamples=100)
SIMULATION_START = datetime(2024, 1, 1)  # as in the `simulated` fixture


def day(number: float) -> datetime:
    """The moment `number` days after the simulation starts."""
    return SIMULATION_START + timedelta(days=number)


class ConstantScorer:
    """An estimator that knows nothing: every transaction scores 0.5."""

    def predict_proba(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Half and half, for every row."""
        return np.full((len(features), 2), 0.5)


@pytest.fixture
def trained(history: Warehouse, train_bundle: Callable[..., ModelBundle]) -> ModelBundle:
    """A small XGBoost bundle trained on the first ten days, trained_until day 10."""
    frame = history.history_frame(day(0), day(10), labels_known_by=day(21))
    bundle = train_bundle(frame, threshold=0.5, seed=1)
    return replace(bundle, training={"trained_until": day(10).isoformat()})


def registry_of(*bundles: ModelBundle) -> InMemoryRegistry:
    """A registry whose first bundle is the champion and the last one the challenger."""
    registry = InMemoryRegistry()
    for bundle in bundles:
        registry.log_training(bundle, input_example=None, dataset_fingerprint="test")  # type: ignore[arg-type]
    return registry


def test_both_models_are_judged_on_the_window_neither_learnt_from(
    history: Warehouse, trained: ModelBundle
) -> None:
    """Window [later trained_until, as_of - delay); each model's metric as scored on its own."""
    older = replace(trained, training={"trained_until": day(8).isoformat()}, threshold=0.3)
    registry = registry_of(older, trained)

    comparison = compare_champion_challenger(
        warehouse=history, registry=registry, options=OPTIONS, as_of=day(21)
    )

    frame = history.history_frame(
        day(10) - feature_history([trained]), day(14), labels_known_by=day(21)
    )
    window = (frame["event_time"] >= day(10)).to_numpy()
    labels = frame.loc[window, "is_fraud"].to_numpy()
    assert (day(10), day(14)) == (comparison.window_start, comparison.window_end)
    assert (int(window.sum()), int(labels.sum())) == (comparison.rows, comparison.frauds)
    assert comparison.evidence is not None
    assert average_precision(labels, older.score_frame(frame)[window]) == pytest.approx(
        comparison.evidence.champion.estimate
    )
    assert average_precision(labels, trained.score_frame(frame)[window]) == pytest.approx(
        comparison.evidence.challenger.estimate
    )
    assert (1, 2) == (comparison.champion_version, comparison.challenger_version)
    document = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))
    assert comparison.verdict == document["verdict"]
    assert document["difference"]["low"] <= document["difference"]["high"]


class ColumnCounter:
    """An estimator that scores every row by how many feature columns it was given."""

    def predict_proba(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The column count (over a thousand) as the fraud probability of every row."""
        share = features.shape[1] / 1000
        return np.column_stack([np.full(len(features), 1 - share), np.full(len(features), share)])


def test_each_model_is_judged_on_its_own_features_when_the_specs_differ(
    history: Warehouse, trained: ModelBundle
) -> None:
    """Equal specs share one feature computation; a different spec gets its own columns.

    Each model flags every transaction (F1 above 0) exactly when it was given the wider
    spec's columns: its score, the column count over a thousand, is then above the threshold.
    """
    extra = next(group for group in FEATURE_GROUPS if group not in trained.spec.groups)
    wider_spec = replace(trained.spec, groups=trained.spec.groups | {extra})
    columns = (len(trained.spec.names), len(wider_spec.names))
    assert columns[0] < columns[1]
    threshold = sum(columns) / 2000
    narrow = replace(trained, estimator=ColumnCounter(), threshold=threshold)
    wider = replace(narrow, spec=wider_spec)
    f1_options = replace(OPTIONS, metric="f1", resamples=10)

    for champion, challenger in ((narrow, wider), (wider, narrow), (narrow, narrow)):
        comparison = compare_champion_challenger(
            warehouse=history,
            registry=registry_of(champion, challenger),
            options=f1_options,
            as_of=day(21),
        )

        assert comparison.evidence is not None
        flagged = (
            comparison.evidence.champion.estimate > 0,
            comparison.evidence.challenger.estimate > 0,
        )
        assert (champion is wider, challenger is wider) == flagged


def test_too_few_frauds_or_no_new_data_is_insufficient_evidence(
    history: Warehouse, trained: ModelBundle
) -> None:
    """Fewer frauds than min_frauds, or a window still empty, decide nothing and say why."""
    registry = registry_of(trained, trained)

    thin = compare_champion_challenger(
        warehouse=history,
        registry=registry,
        options=replace(OPTIONS, min_frauds=10_000),
        as_of=day(21),
    )
    early = compare_champion_challenger(
        warehouse=history, registry=registry, options=OPTIONS, as_of=day(16)
    )

    assert ("insufficient_evidence", None) == (thin.verdict, thin.evidence)
    assert "fewer than the 10000 needed" in thin.reason
    assert thin.rows > 0
    assert ("insufficient_evidence", 0, 0) == (early.verdict, early.rows, early.frauds)
    assert "no matured data newer than both models' training yet" in early.reason


def test_slow_fraud_labels_end_the_window_at_the_maturity_age_and_count_the_immature(
    warehouse: Warehouse, train_bundle: Callable[..., ModelBundle]
) -> None:
    """Frauds reported 5 days late under a 2-day delay: the window ends 5 days before as_of
    and the younger transactions are counted as immature, in the document and the summary."""
    simulated = simulate(SimulationConfig(days=21, cards=100, seed=5, fraud_rate=0.02))
    store_served(warehouse, simulated, label_days=5)
    frame = warehouse.history_frame(day(0), day(10), labels_known_by=day(21))
    bundle = replace(
        train_bundle(frame, threshold=0.5, seed=1),
        training={"trained_until": day(10).isoformat()},
    )

    comparison = compare_champion_challenger(
        warehouse=warehouse,
        registry=registry_of(bundle, bundle),
        options=replace(OPTIONS, label_delay_days=2),
        as_of=day(21),
    )

    times = pd.to_datetime(simulated["trans_date_trans_time"])
    immature = int(((times >= day(16)) & (times < day(21))).sum())
    assert (day(10), day(16)) == (comparison.window_start, comparison.window_end)
    assert int(((times >= day(10)) & (times < day(16))).sum()) == comparison.rows
    maturity = json.loads(json.dumps(comparison.to_dict()))["maturity"]
    assert (5.0, 2.0, "observed", immature) == (
        maturity["age_days"],
        maturity["delay_days"],
        maturity["source"],
        maturity["immature"],
    )
    assert immature == comparison.immature > 0
    assert f"{immature} younger transactions left out as immature" in comparison.summary()


def test_there_is_nothing_to_compare_without_a_challenger_or_a_training_period(
    history: Warehouse, trained: ModelBundle
) -> None:
    """No challenger, or a model that records no trained_until, is a ComparisonError."""
    alone = registry_of(trained)
    with pytest.raises(ComparisonError, match="no challenger to compare"):
        compare_champion_challenger(warehouse=history, registry=alone, options=OPTIONS)
    undated = registry_of(trained, replace(trained, training={}))
    with pytest.raises(ComparisonError, match="records no training period"):
        compare_champion_challenger(warehouse=history, registry=undated, options=OPTIONS)


def test_the_job_without_a_challenger_does_nothing_and_audits_nothing(
    history: Warehouse, trained: ModelBundle
) -> None:
    """No challenger: the outcome says so, and no decision is recorded."""
    outcome = run_champion_challenger(
        warehouse=history,
        registry=registry_of(trained),
        options=OPTIONS,
        retrain_options=RetrainOptions(trials=1),
        actor="test",
    )

    assert "no_challenger" == outcome.verdict
    assert "no challenger registered" in outcome.summary()
    assert [] == history.events()


def test_the_job_waits_on_insufficient_evidence_but_audits_and_tags(
    history: Warehouse, trained: ModelBundle
) -> None:
    """insufficient_evidence: a compare event and tags on both versions, nothing else."""
    registry = registry_of(trained, trained)

    outcome = run_champion_challenger(
        warehouse=history,
        registry=registry,
        options=OPTIONS,
        retrain_options=RetrainOptions(trials=1),
        as_of=day(16),
        actor="scheduler",
    )

    assert ("insufficient_evidence", None, None) == (
        outcome.verdict,
        outcome.promotion,
        outcome.replacement,
    )
    events = history.events()
    assert [("compare", "schedule", "scheduler", "insufficient_evidence")] == [
        (e.kind, e.trigger, e.actor, e.verdict) for e in events
    ]
    tags = {info.version: info.tags for info in registry.versions()}
    assert {"insufficient_evidence"} == {tags[v]["fraudops.last_compare_verdict"] for v in (1, 2)}
    assert day(16).isoformat() == tags[2]["fraudops.last_compare_as_of"]
    assert (1, 2) == (registry.resolve(CHAMPION).version, registry.resolve(CHALLENGER).version)


def test_a_better_challenger_is_promoted_even_when_replacing_the_loser_fails(
    history: Warehouse, trained: ModelBundle
) -> None:
    """Promotion stands; the failed retraining is reported in the outcome and audited."""
    clueless = replace(trained, estimator=ConstantScorer())
    registry = registry_of(clueless, trained)
    too_short = RetrainOptions(trials=1, history_days=8)  # no room for a training period

    outcome = run_champion_challenger(
        warehouse=history,
        registry=registry,
        options=OPTIONS,
        retrain_options=too_short,
        as_of=day(21),
        actor="test",
    )

    assert "promote" == outcome.verdict
    assert outcome.promotion is not None
    assert (2, 1) == (outcome.promotion.champion, outcome.promotion.previous)
    assert 2 == registry.resolve(CHAMPION).version
    assert outcome.replacement is None
    assert outcome.replacement_error is not None
    assert "no training period left" in outcome.replacement_error
    assert [
        ("retrain", "loser_replaced", "failed"),
        ("promote", "compare", "promoted"),
        ("compare", "schedule", "promote"),
    ] == [(e.kind, e.trigger, e.verdict) for e in history.events()]
    assert "1" == registry.resolve(CHAMPION).tags["fraudops.previous_champion"]
