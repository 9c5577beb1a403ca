"""run_monitor end to end on a real warehouse: simulated drift flagged, a quiet window not.

A simulated population spends for 62 days; from day 55 every amount is 1.6 times dearer.
The champion learnt from days 30-45 (the first 30 warm the 30-day windows up) and scored
every transaction from day 45, as the service would: point-in-time features, stored with
the scores; each label arrives a day after its transaction.
"""

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.features.batch import batch_features
from fraudops.lifecycle.facade import Lifecycle
from fraudops.monitoring import (
    MonitorCollector,
    NoChampionError,
    Policy,
    performance_timeline,
    plot_timeline,
    run_monitor,
)
from fraudops.registry.memory import InMemoryRegistry
from fraudops.simulate import SimulationConfig, parse_drift, simulate, write_transactions
from fraudops.storage import LabelRecord, ScoredTransaction, ScoreRecord, Warehouse
from fraudops.training.bundle import ModelBundle
from fraudops.training.metrics import confusion
from fraudops.training.trainer import TrainingConfig, train

START = datetime(2024, 1, 1)
SERVED_FROM = START + timedelta(days=45)
DRIFT_DAY = 55
QUIET = START + timedelta(days=54)  # drift window: day 53; labelled window: days 45-52
DRIFTED = START + timedelta(days=62)  # drift window: day 61
# A PSI gate of 0.1, under the default 0.2: the 1.6x amount drift moves the score by ~0.15.
POLICY = Policy(
    label_delay_days=2.0,
    performance_window_days=7.0,
    bootstrap_resamples=200,
    drift_min_psi=0.1,
)


@dataclass(frozen=True)
class Simulated:
    """A champion and the transactions it scored, with their features and records."""

    bundle: ModelBundle
    frame: pd.DataFrame  # loaded transactions from SERVED_FROM, with `score`
    features: np.ndarray
    records: list[dict[str, Any]]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Simulated:
    """Simulate, train the champion on days 30-45, score everything after with it."""
    config = SimulationConfig(
        days=62,
        cards=400,
        seed=7,
        fraud_rate=0.01,
        drift=(parse_drift(f"amount@{DRIFT_DAY}:factor=1.6"),),
    )
    raw = simulate(config)
    path = write_transactions(raw, tmp_path_factory.mktemp("simulated") / "transactions.parquet")
    frame = load_transactions(path, SPARKOV).frame
    bundle = train(
        frame,
        SPARKOV,
        TrainingConfig(
            trials=1,
            delay_days=2,
            validation_days=3,
            train_start=START + timedelta(days=30),
            labelled_end=SERVED_FROM,
        ),
    ).bundle
    features = batch_features(frame, bundle.spec)
    served = (frame["event_time"] >= SERVED_FROM).to_numpy()
    frame = frame.loc[served].assign(score=bundle.score_features(features[served]))
    records = raw.drop(columns=["fraud_scenario"]).set_index("trans_num", drop=False)
    return Simulated(
        bundle=bundle,
        frame=frame.reset_index(drop=True),
        features=features[served],
        records=records.loc[frame["trans_num"]].to_dict(orient="records"),
    )


def store(
    warehouse: Warehouse, simulated: Simulated, *, version: str = "1", until: datetime = DRIFTED
) -> None:
    """Store the served transactions before `until` with score, features and label."""
    bundle = simulated.bundle
    kept = (simulated.frame["event_time"] < until).to_numpy()
    frame = simulated.frame.loc[kept]
    records = [record for record, keep in zip(simulated.records, kept, strict=True) if keep]
    warehouse.store_scored_batch(
        [
            ScoredTransaction(
                transaction=record,
                score=ScoreRecord(
                    model_name="fraud-detector",
                    model_version=version,
                    fraud_probability=float(score),
                    decision="decline" if score >= bundle.threshold else "approve",
                    scored_at=datetime(2026, 1, 1),
                    features=dict(zip(bundle.feature_names, row.tolist(), strict=True)),
                ),
            )
            for record, score, row in zip(
                records, frame["score"], simulated.features[kept], strict=True
            )
        ]
    )
    warehouse.record_labels(
        [
            LabelRecord(
                trans_num=row.trans_num,
                is_fraud=bool(row.is_fraud),
                label_time=row.event_time + timedelta(days=1),
            )
            for row in frame.itertuples()
        ]
    )


def champion_registry(bundle: ModelBundle, frame: pd.DataFrame) -> InMemoryRegistry:
    """A registry whose version 1, the champion, is the bundle."""
    registry = InMemoryRegistry()
    registry.log_training(bundle, input_example=frame.head(3), dataset_fingerprint="simulated")
    return registry


def test_drift_is_flagged_and_a_quiet_window_is_not(
    warehouse: Warehouse, simulated: Simulated, tmp_path: Path
) -> None:
    """Day 53: ok, on the right labelled window. Day 61, amounts 1.6x: feature and score drift.

    Both runs (through the lifecycle facade, which writes the report) are stored and audited
    with their report's path; the report and the Prometheus gauges say the verdict.
    """
    store(warehouse, simulated)
    registry = champion_registry(simulated.bundle, simulated.frame)

    def lifecycle(actor: str) -> Lifecycle:
        return Lifecycle(
            settings=Settings(home=tmp_path),
            warehouse=warehouse,
            registry=registry,
            policy=POLICY,
            report_dir=tmp_path,
            actor=actor,
        )

    quiet = lifecycle("cli").monitor(QUIET, trigger="manual").result
    assert ("ok", [], []) == (quiet.verdict.status, quiet.verdict.reasons, quiet.drift.drifted)
    assert quiet.drift.score is not None and not quiet.drift.score.drifted
    features = {d.feature: d for d in quiet.drift.features}
    assert "chi2" == features["category"].test  # one-hot columns tested as one category
    assert not any("=" in name for name in features)
    assert {"weekday", "merchant_risk_30d"} <= set(quiet.drift.ignored)
    # Performance: the labelled window [as_of - 9 days, as_of - 2 days), read exactly.
    frame = simulated.frame
    rows = frame.loc[
        (frame["event_time"] >= QUIET - timedelta(days=9))
        & (frame["event_time"] < QUIET - timedelta(days=2))
    ]
    expected = confusion(
        rows["is_fraud"].to_numpy(), rows["score"].to_numpy() >= simulated.bundle.threshold
    )
    performance = quiet.performance
    assert (len(rows), expected.frauds, expected.alerts) == (
        performance.transactions,
        performance.frauds,
        performance.alerts,
    )
    assert expected.f1 == pytest.approx(performance.f1.value)
    assert performance.enough_evidence
    assert performance.f1.low < performance.f1.value < performance.f1.high

    drifted = lifecycle("scheduler").monitor(DRIFTED, trigger="schedule").result
    assert "retrain" == drifted.verdict.status
    assert {"feature_drift", "score_drift"} <= set(drifted.verdict.reasons)
    assert {"amount", "log_amount"} <= set(drifted.drift.drifted)
    assert "category" not in drifted.drift.drifted  # the category mix did not change
    assert drifted.drift.score is not None and drifted.drift.score.psi > POLICY.drift_min_psi

    runs = warehouse.monitor_runs()
    assert [drifted.run_id, quiet.run_id] == [run.id for run in runs]
    assert (True, drifted.verdict.reasons, "1") == (
        runs[0].retrain,
        runs[0].reasons,
        runs[0].model_version,
    )
    assert drifted.to_dict()["drift"] == runs[0].result["drift"]
    events = warehouse.events(kind="monitor")
    assert [("retrain", "schedule", "scheduler"), ("ok", "manual", "cli")] == [
        (e.verdict, e.trigger, e.actor) for e in events
    ]
    assert (DRIFTED, drifted.run_id) == (events[0].as_of, events[0].detail["run_id"])

    assert drifted.report_path is not None
    assert str(drifted.report_path) == runs[0].result["report_path"]
    assert str(drifted.report_path) == events[0].detail["report_path"]
    html = (tmp_path / "latest.html").read_text()
    assert html == drifted.report_path.read_text()
    assert "RETRAIN" in html and "score_drift" in html

    registry_ = CollectorRegistry()
    registry_.register(MonitorCollector(warehouse))
    samples = {
        (s.name, tuple(s.labels.values())): s.value
        for family in text_string_to_metric_families(generate_latest(registry_).decode())
        for s in family.samples
    }
    assert 1.0 == samples[("fraudops_monitor_retrain", ())]
    assert 1.0 == samples[("fraudops_monitor_feature_drifted", ("amount",))]
    as_of_seconds = DRIFTED.replace(tzinfo=UTC).timestamp()
    assert as_of_seconds == samples[("fraudops_monitor_as_of_timestamp_seconds", ())]


def test_no_labels_yet_is_insufficient_evidence(warehouse: Warehouse, simulated: Simulated) -> None:
    """A day after serving began, nothing is labelled in the window: said so, drift still read."""
    store(warehouse, simulated, until=SERVED_FROM + timedelta(days=1))
    registry = champion_registry(simulated.bundle, simulated.frame)
    result = run_monitor(
        warehouse=warehouse,
        registry=registry,
        policy=POLICY,
        as_of=SERVED_FROM + timedelta(days=1),
    )
    assert "insufficient_evidence" == result.verdict.status
    assert (0, False) == (result.performance.transactions, result.performance.enough_evidence)
    assert result.drift.skipped is None and result.drift.rows > 0
    json.dumps(result.to_dict(), allow_nan=False)
    assert "insufficient_evidence" == warehouse.events(kind="monitor")[0].verdict


def test_the_timeline_has_one_row_per_day_and_plots(
    warehouse: Warehouse, simulated: Simulated, tmp_path: Path
) -> None:
    """Daily rows over the served days with the serving version; the PNG is written."""
    store(warehouse, simulated, until=QUIET)
    known_by = QUIET - timedelta(days=2)  # the last two days' labels are not known yet
    timeline = performance_timeline(
        warehouse,
        SERVED_FROM,
        QUIET,
        labels_known_by=known_by,
        thresholds={"1": simulated.bundle.threshold},
        resamples=20,
    )
    frame = simulated.frame
    labelled = frame.loc[frame["event_time"] + timedelta(days=1) <= known_by]
    assert sorted(labelled["event_time"].dt.date.unique()) == list(timeline["date"])
    assert len(labelled) == timeline["transactions"].sum()
    assert int(labelled["is_fraud"].sum()) == timeline["frauds"].sum()
    assert {"1"} == set(timeline["champion_version"])
    by_decision = performance_timeline(
        warehouse, SERVED_FROM, QUIET, labels_known_by=known_by, resamples=20
    )
    assert list(timeline["alerts"]) == list(by_decision["alerts"])
    path = plot_timeline(
        timeline, [(START + timedelta(days=DRIFT_DAY), "drift starts")], tmp_path / "t.png"
    )
    assert b"\x89PNG" == path.read_bytes()[:4]


def test_without_a_champion_the_error_says_so(warehouse: Warehouse) -> None:
    """An empty registry is a NoChampionError, nothing stored."""
    with pytest.raises(NoChampionError, match="champion"):
        run_monitor(warehouse=warehouse, registry=InMemoryRegistry(), policy=POLICY)
    assert [] == warehouse.monitor_runs()


def test_an_empty_warehouse_and_a_champion_without_reference_are_said(
    warehouse: Warehouse, simulated: Simulated
) -> None:
    """Nothing served: drift skipped with its reason. No reference: drift skipped, not a crash."""
    registry = champion_registry(simulated.bundle, simulated.frame)
    empty = run_monitor(warehouse=warehouse, registry=registry, policy=POLICY)
    assert empty.drift.skipped is not None and "no transaction scored" in empty.drift.skipped
    assert "insufficient_evidence" == empty.verdict.status

    bare = dataclasses.replace(simulated.bundle, reference=None)
    old = champion_registry(bare, simulated.frame)
    result = run_monitor(warehouse=warehouse, registry=old, policy=POLICY, as_of=QUIET)
    assert result.drift.skipped is not None and "no training reference" in result.drift.skipped
    assert result.drift.score is None
    assert 2 == len(warehouse.monitor_runs())


def test_transactions_of_another_version_are_left_out(
    warehouse: Warehouse, simulated: Simulated
) -> None:
    """Scores stored by version 2 are neither drift sample nor performance of champion v1."""
    store(warehouse, simulated, version="2", until=QUIET)
    registry = champion_registry(simulated.bundle, simulated.frame)
    result = run_monitor(
        warehouse=warehouse, registry=registry, policy=POLICY, as_of=QUIET, store=False
    )
    assert 0 == result.drift.rows and result.drift.other_version_rows > 0
    assert result.drift.skipped is not None
    assert 0 == result.performance.transactions and result.excluded_labelled > 0
    assert [] == warehouse.monitor_runs()  # store=False keeps nothing
