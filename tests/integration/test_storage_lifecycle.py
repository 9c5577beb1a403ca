"""The warehouse lifecycle reads and writes: history frames, served scores, audit, monitor runs."""

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.storage import LabelRecord, LifecycleEvent, MonitorRun, ScoredTransaction, Warehouse
from fraudops.storage.base import ScoreRecord

ROWS = 400


@pytest.fixture
def stored(warehouse: Warehouse, sample_path: Path) -> tuple[Warehouse, pd.DataFrame]:
    """The first ROWS sample transactions stored with a champion score; labels for half."""
    frame = load_transactions(sample_path, SPARKOV).frame.sort_values("event_time").head(ROWS)
    raw = pd.read_csv(sample_path, dtype=str, keep_default_na=False)
    raw = raw.set_index("trans_num").loc[frame["trans_num"]].reset_index()
    items = [
        ScoredTransaction(
            transaction={k: v for k, v in record.items() if not k.startswith("Unnamed")},
            score=ScoreRecord(
                model_name="fraud-detector",
                model_version="1",
                fraud_probability=0.01 * (i % 100),
                decision="approve",
                scored_at=datetime(2026, 1, 1),
                features={"amount": float(record["amt"]), "card_count_1h": float(i % 3)},
            ),
        )
        for i, record in enumerate(raw.to_dict(orient="records"))
    ]
    warehouse.store_scored_batch(items)
    labelled = frame.iloc[: ROWS // 2]
    warehouse.record_labels(
        [
            LabelRecord(
                trans_num=row.trans_num,
                is_fraud=bool(row.is_fraud),
                label_time=row.event_time + timedelta(days=2),
                source="feed",
            )
            for row in labelled.itertuples()
        ]
    )
    return warehouse, frame.reset_index(drop=True)


def test_history_frame_reads_back_what_the_readers_load(
    stored: tuple[Warehouse, pd.DataFrame],
) -> None:
    """Same rows, same parsed values as the file, with the labels known at the moment asked."""
    warehouse, frame = stored
    start, end = frame["event_time"].min(), frame["event_time"].max() + timedelta(seconds=1)
    history = warehouse.history_frame(start, end, labels_known_by=datetime(2100, 1, 1))
    assert list(history["trans_num"]) == list(frame["trans_num"])
    for column in ("merchant", "category", "amt", "lat", "merch_long", "dob", "city_pop"):
        pd.testing.assert_series_equal(history[column], frame[column], check_names=False)
    # Cards come back as the warehouse's keyed ids, never as their numbers.
    expected_ids = [warehouse.personal.card_id(number) for number in frame["cc_num"]]
    assert list(history["cc_num"]) == expected_ids
    pd.testing.assert_series_equal(history["event_time"], frame["event_time"], check_names=False)
    assert history["labelled"].sum() == ROWS // 2
    expected = frame["is_fraud"].where(history["labelled"], 0).astype("int8")
    assert (history["is_fraud"] == expected).all()
    # Point in time: a label not known yet at the moment asked reads as unlabelled.
    early = frame["event_time"].iloc[10] + timedelta(days=2)
    before = warehouse.history_frame(start, end, labels_known_by=early)
    assert before["labelled"].sum() == 11


def test_served_between_expands_the_champion_features(
    stored: tuple[Warehouse, pd.DataFrame],
) -> None:
    """One row per transaction in time order, features as columns; a limit keeps the latest."""
    warehouse, frame = stored
    start, end = frame["event_time"].min(), frame["event_time"].max() + timedelta(seconds=1)
    served = warehouse.served_between(start, end)
    assert len(served) == ROWS
    assert served["event_time"].is_monotonic_increasing
    assert {"amount", "card_count_1h", "fraud_probability", "model_version"} <= set(served.columns)
    latest = warehouse.served_between(start, end, limit=50)
    assert list(latest["trans_num"]) == list(served["trans_num"].tail(50))


def test_served_between_reads_the_champion_score_not_the_shadow_one(
    stored: tuple[Warehouse, pd.DataFrame],
) -> None:
    """A challenger's shadow score of the same transactions changes nothing that is read."""
    warehouse, frame = stored
    start, end = frame["event_time"].iloc[100], frame["event_time"].iloc[300]
    before = warehouse.served_between(start, end)
    shadow = ScoreRecord(
        model_name="fraud-detector",
        model_version="2",
        fraud_probability=0.99,
        decision="decline",
        scored_at=datetime(2026, 1, 2),
        features={"amount": -1.0, "card_count_1h": -1.0},
    )
    warehouse.store_shadow_scores([(t, shadow) for t in frame["trans_num"]])

    after = warehouse.served_between(start, end)
    pd.testing.assert_frame_equal(before, after)
    window = frame.loc[(frame["event_time"] >= start) & (frame["event_time"] < end)]
    assert sorted(window["trans_num"]) == sorted(after["trans_num"])
    assert {"1"} == set(after["model_version"])


def test_fraud_label_waits_are_those_of_frauds_known_in_the_window(
    stored: tuple[Warehouse, pd.DataFrame],
) -> None:
    """Only frauds, only labels known by then, only transactions of the window: two days each."""
    warehouse, frame = stored
    labelled = frame.iloc[: ROWS // 2]
    start, end = labelled["event_time"].iloc[20], labelled["event_time"].iloc[150]
    in_window = labelled.loc[(labelled["event_time"] >= start) & (labelled["event_time"] < end)]
    known_by = labelled["event_time"].iloc[125] + timedelta(days=2)
    known = in_window.loc[in_window["event_time"] <= labelled["event_time"].iloc[125]]

    waits = warehouse.fraud_label_waits(start, end, labels_known_by=known_by)
    every = warehouse.fraud_label_waits(start, end, labels_known_by=end + timedelta(days=9))

    assert int(in_window["is_fraud"].sum()) > int(known["is_fraud"].sum()) > 0
    assert [2 * 86_400.0] * int(known["is_fraud"].sum()) == waits
    assert [2 * 86_400.0] * int(in_window["is_fraud"].sum()) == every


def test_audit_events_and_monitor_runs_round_trip(warehouse: Warehouse) -> None:
    """Stored decisions come back newest first with their detail documents."""
    first = warehouse.record_event(
        LifecycleEvent(kind="retrain", trigger="f1_below_floor", actor="scheduler", verdict="ok")
    )
    second = warehouse.record_event(
        LifecycleEvent(
            kind="promote",
            trigger="compare",
            actor="cli",
            verdict="promoted",
            champion_version="2",
            challenger_version="1",
            detail={"ap_gain": 0.12, "ci": [0.05, 0.2]},
        )
    )
    assert first.id is not None and second.id is not None and second.id > first.id
    events = warehouse.events()
    assert [e.kind for e in events] == ["promote", "retrain"]
    assert events[0].detail == {"ap_gain": 0.12, "ci": [0.05, 0.2]}
    assert [e.kind for e in warehouse.events(kind="retrain")] == ["retrain"]
    run = warehouse.store_monitor_run(
        MonitorRun(
            as_of=datetime(2026, 3, 1),
            model_name="fraud-detector",
            model_version="2",
            retrain=True,
            reasons=["f1_below_floor"],
            result={"performance": {"f1": 0.4}},
        )
    )
    runs = warehouse.monitor_runs()
    assert [r.id for r in runs] == [run.id]
    assert runs[0].result == {"performance": {"f1": 0.4}} and runs[0].retrain
