"""A backfilled history is stored as a replay through the service stores it, in one pass."""

from collections.abc import Iterator
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embedded_service import sqlite_service
from fraudops.config import Settings
from fraudops.data.schema import CanonicalTransaction
from fraudops.ingest.backfill import _backfill, _everything
from fraudops.ingest.runner import validated
from fraudops.ingest.sources import FileReplaySource
from fraudops.registry.memory import InMemoryRegistry
from fraudops.scoring.service import ScoringService
from fraudops.simulate import SimulationConfig, simulate, write_transactions
from fraudops.storage.base import StoredResult

DAYS = 21
CARDS = 120
DELAY_MS = 2 * 86_400_000
FAR = datetime(9999, 1, 1)
SAMPLE = 300  # transactions whose record and reasons are read back one by one


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Three dense weeks of simulated cards: frauds in bursts, so labels arriving later than
    the served model's label windows allow (they end its 7-day delay before t) change the
    features of the cards' and merchants' next transactions (checked: a backfill whose
    labels came 10 days after fails the comparison on merchant risk)."""
    frame = simulate(SimulationConfig(days=DAYS, cards=CARDS, seed=5))
    return write_transactions(frame, tmp_path / "history.parquet")


def rows_in(history: Path) -> int:
    """How many transactions the history holds."""
    return len(pd.read_parquet(history, columns=["trans_num"]))


def started(folder: Path, registry: InMemoryRegistry) -> Iterator[ScoringService]:
    """A started in-process service with a warehouse of its own under `folder`."""
    settings = Settings(home=folder / "home", _env_file=None)  # type: ignore[call-arg]
    service = sqlite_service(settings, registry, folder)
    service.start(block=True)
    yield service
    service.stop()


@pytest.fixture
def replayed(tmp_path: Path, registry: InMemoryRegistry) -> Iterator[ScoringService]:
    """A service to replay the history through, as `fraudops ingest` does."""
    yield from started(tmp_path / "replayed", registry)


@pytest.fixture
def backfilled(tmp_path: Path, registry: InMemoryRegistry) -> Iterator[ScoringService]:
    """A service whose champion backfills the history."""
    yield from started(tmp_path / "backfilled", registry)


def stored(service: ScoringService, trans_nums: list[str]) -> pd.DataFrame:
    """Per trans_num: the champion's probability, decision, reasons, features, and label."""
    service.settle()
    served = service.warehouse.served_between(datetime(1970, 1, 1), FAR).set_index("trans_num")
    labels = service.warehouse.history_frame(
        datetime(1970, 1, 1), FAR, labels_known_by=FAR
    ).set_index("trans_num")
    frame = served.join(labels[["is_fraud", "label_time"]])
    frame = frame.drop(columns=["event_time"]).sort_index()
    # The stored record and the reasons, read back as the API reads them, for a sample.
    read = [service.get_transaction(trans_num) for trans_num in trans_nums[:SAMPLE]]
    frame["record"] = [t.record if t else None for t in read] + [None] * (len(frame) - SAMPLE)
    frame["reasons"] = [t.champion.reasons if t and t.champion else None for t in read] + [None] * (
        len(frame) - SAMPLE
    )
    return frame


def replay_on_time(service: ScoringService, history: Path, folder: Path) -> None:
    """The history through the service in time order, each fraud label recorded before the
    first transaction after its label time (what a live replay does when batches are short).

    Transactions between two such moments go in one request (each reads the state its
    predecessors left, as when sent alone); labels of legitimate transactions change no
    feature, so they are recorded at the end.
    """
    source = FileReplaySource(
        history, checkpoint=folder / "checkpoint.json", label_delay_ms=DELAY_MS
    )
    transactions, labels, _ = validated(_everything(source), service.schema)
    frauds = sorted(
        (label for label in labels if label.is_fraud), key=lambda label: label.label_time
    )
    futures: list[Future[StoredResult]] = []
    group: list[CanonicalTransaction] = []
    for transaction, _ in transactions:
        due = 0
        while due < len(frauds) and frauds[due].label_time < transaction.event_time:
            due += 1
        if due:
            futures += service.score_many(group)
            group = []
            service.record_labels(frauds[:due])
            frauds = frauds[due:]
        group.append(transaction)
    futures += service.score_many(group)
    service.record_labels([*frauds, *(label for label in labels if not label.is_fraud)])
    for future in futures:
        future.result()


def test_a_backfill_stores_what_a_replay_through_the_service_stores(
    history: Path, replayed: ScoringService, backfilled: ScoringService, tmp_path: Path
) -> None:
    """Same transactions, scores, decisions, reasons, features and labels as the replay."""
    replay_on_time(replayed, history, tmp_path)
    report = _backfill(
        backfilled, history, label_delay_ms=DELAY_MS, profile=replayed.schema.profile
    )

    rows = rows_in(history)
    assert (rows, 0, rows, ()) == (
        report.stored, report.already_stored, report.labels, report.invalid,
    )  # fmt: skip
    trans_nums = sorted(pd.read_parquet(history)["trans_num"].astype(str))
    expected, actual = stored(replayed, trans_nums), stored(backfilled, trans_nums)
    assert trans_nums == list(expected.index) == list(actual.index)
    columns = [c for c in expected.columns if c != "latency_ms"]
    pd.testing.assert_frame_equal(expected[columns], actual[columns], check_exact=True)
    # The labels count: frauds among them, and features that read them.
    assert expected["is_fraud"].sum() > 0
    assert (expected["card_known_frauds_30d"] > 0).sum() > 0


def test_a_second_backfill_stores_nothing_twice(history: Path, backfilled: ScoringService) -> None:
    """The transactions found stored are left as they are; the labels stay unchanged."""
    profile = backfilled.schema.profile
    _backfill(backfilled, history, label_delay_ms=DELAY_MS, profile=profile)
    again = _backfill(backfilled, history, label_delay_ms=DELAY_MS, profile=profile)
    rows = rows_in(history)
    assert (0, rows, rows) == (again.stored, again.already_stored, again.labels)
    assert rows == int(np.sum(backfilled.warehouse.served_between(datetime(1970, 1, 1), FAR)
                              ["trans_num"].notna()))  # fmt: skip
