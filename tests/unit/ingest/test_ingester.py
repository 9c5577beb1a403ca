"""The ingester over a real in-process scoring service: stored once, retried, refused, resumed."""

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from fraudops.data.schema import CanonicalTransaction
from fraudops.ingest.runner import Ingester, IngestOptions
from fraudops.ingest.sinks import InProcessSink, Pending, SinkUnavailableError
from fraudops.ingest.sources import TRANSACTION, FileReplaySource
from fraudops.ingest.spool import Item, Spool
from fraudops.scoring.service import ScoringService
from fraudops.storage.base import LabelRecord

ROWS = 1_500
FAST = IngestOptions(batch_size=200, retry_base_seconds=0.001, retry_cap_seconds=0.01)


@pytest.fixture
def replay_file(sample_path: Path, tmp_path: Path) -> Path:
    """The sample's first rows in time (a Parquet file the replay reads)."""
    frame = pd.read_csv(sample_path, dtype={"cc_num": str, "zip": str})
    frame = frame.sort_values("unix_time", kind="stable").head(ROWS)
    path = tmp_path / "replay.parquet"
    frame.drop(columns=[c for c in frame.columns if c.startswith("Unnamed")]).to_parquet(path)
    return path


@pytest.fixture
def service(in_process_service: ScoringService) -> ScoringService:
    """The started in-process scoring service (tests/conftest.py)."""
    return in_process_service


def stored_count(service: ScoringService, table: str = "transactions") -> int:
    """Rows in a warehouse table."""
    with service.warehouse.engine.connect() as connection:
        count = connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))  # noqa: S608 - ours
        return int(count or 0)


class FlakySink(InProcessSink):
    """The real in-process sink, unavailable for its first `failures` batches."""

    def __init__(self, service: ScoringService, failures: int) -> None:
        super().__init__(service)
        self.failures = failures
        self.calls = 0

    def submit(self, transactions: Sequence[CanonicalTransaction]) -> Pending:
        self.calls += 1
        if self.calls <= self.failures:
            raise SinkUnavailableError("scorer restarting", retry_after=0.0)
        return super().submit(transactions)


class ListSource:
    """Items from a list, redelivering from the last acknowledgement like a stream."""

    name = "list"
    redelivers = True

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.next = 0
        self.acked: list[Item] = []

    def read(self, limit: int) -> list[Item]:
        batch = self.items[self.next : self.next + limit]
        self.next += len(batch)
        return batch

    def ack(self, items: Sequence[Item]) -> None:
        self.acked += items

    @property
    def finished(self) -> bool:
        return self.next >= len(self.items)

    def lag(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        """Nothing to release."""


def ingester(source: object, sink: InProcessSink, state: Path, **options: object) -> Ingester:
    """An ingester with a small spool under `state`."""
    return Ingester(
        source,  # type: ignore[arg-type]
        sink,
        spool=Spool(state / "spool.db", memory_items=300, durable=False),
        dead_letter=state / "dead-letter.jsonl",
        options=IngestOptions(**{**FAST.__dict__, **options}),  # type: ignore[arg-type]
    )


def test_a_replay_is_stored_exactly_once_with_its_labels(
    replay_file: Path, service: ScoringService, tmp_path: Path
) -> None:
    """Every row scored and stored once; the inline is_fraud stored as a label."""
    source = FileReplaySource(replay_file, checkpoint=tmp_path / "state" / "checkpoint.json")
    run = ingester(source, InProcessSink(service), tmp_path / "state")
    report = run.run()
    assert (ROWS, ROWS, 0, 0) == (report.read, report.stored_new, report.stored_duplicates, 0)
    assert ROWS == stored_count(service) == stored_count(service, "labels")
    assert ROWS == source.position
    metric = run.metrics.registry.get_sample_value
    assert ROWS == metric("fraudops_ingest_stored_total", {"outcome": "new"})
    assert ROWS == metric("fraudops_ingest_read_total", {"kind": "transaction"})
    assert 0 == metric("fraudops_ingest_spooled", {"where": "memory"})
    assert report.batches == metric("fraudops_ingest_batch_seconds_count")


def test_a_sink_that_is_down_is_retried_until_it_stores(
    replay_file: Path, service: ScoringService, tmp_path: Path
) -> None:
    """Three failed attempts, then everything stored once; the retries are counted."""
    source = FileReplaySource(replay_file, checkpoint=tmp_path / "state" / "checkpoint.json")
    sink = FlakySink(service, failures=3)
    report = ingester(source, sink, tmp_path / "state").run()
    assert 3 == report.retries
    assert ROWS == report.stored_new == stored_count(service)


def test_invalid_items_are_dead_lettered_and_the_rest_stored(
    replay_file: Path, service: ScoringService, tmp_path: Path
) -> None:
    """A bad amount and a missing timestamp go to the dead-letter file with the field named."""
    good = FileReplaySource(replay_file, checkpoint=tmp_path / "unused.json").read(50)
    timeless = {
        k: v for k, v in good[1].data.items() if k not in ("trans_date_trans_time", "unix_time")
    }
    bad = [
        Item(TRANSACTION, good[0].data | {"trans_num": "bad-amount", "amt": -5}, "x1"),
        Item(TRANSACTION, timeless | {"trans_num": "no-time"}, "x2"),
    ]
    source = ListSource([*good[:25], *bad, *good[25:]])
    report = ingester(source, InProcessSink(service), tmp_path / "state").run()
    assert (50, 2) == (report.stored_new, report.invalid)
    assert 52 == len(source.acked)
    letters = (tmp_path / "state" / "dead-letter.jsonl").read_text().splitlines()
    assert 2 == len(letters)
    assert "amt" in letters[0]
    assert "trans_date_trans_time" in letters[1]


def test_a_stopped_run_resumes_and_stores_nothing_twice(
    replay_file: Path, service: ScoringService, tmp_path: Path
) -> None:
    """Stop mid-way (the sink down meanwhile), run again: every row stored exactly once."""
    state = tmp_path / "state"
    source = FileReplaySource(replay_file, checkpoint=state / "checkpoint.json")
    sink = FlakySink(service, failures=10**9)  # never stores: the run can only stop
    run = ingester(source, sink, state, drain_seconds=0.2)
    timer = threading.Timer(0.5, run.stop)
    timer.start()
    first = run.run()
    assert 0 == first.stored
    assert first.retries > 0
    assert 0 == stored_count(service)
    again = FileReplaySource(replay_file, checkpoint=state / "checkpoint.json")
    second = ingester(again, InProcessSink(service), state).run()
    assert ROWS == second.stored_new == stored_count(service)


def test_a_durable_spool_hands_a_killed_runs_items_to_the_next(
    replay_file: Path, service: ScoringService, tmp_path: Path
) -> None:
    """Items read from a source that cannot redeliver survive in the spool until stored."""
    items = FileReplaySource(replay_file, checkpoint=tmp_path / "unused.json").read(300)
    spool = Spool(tmp_path / "state" / "spool.db", memory_items=50, durable=True)
    spool.put(items)  # read, then the process died before delivering
    del spool
    source = ListSource([])
    source.redelivers = False
    run = Ingester(
        source,  # type: ignore[arg-type]
        InProcessSink(service),
        spool=Spool(tmp_path / "state" / "spool.db", memory_items=50, durable=True),
        dead_letter=tmp_path / "state" / "dead-letter.jsonl",
        options=FAST,
    )
    assert 300 == run.run().stored_new == stored_count(service)


def test_labels_from_the_stream_are_stored_and_never_scored(
    service: ScoringService, replay_file: Path, tmp_path: Path
) -> None:
    """Delayed labels reach the warehouse; the transaction's score was made without them."""
    source = FileReplaySource(
        replay_file, checkpoint=tmp_path / "state" / "checkpoint.json", label_delay_ms=3_600_000
    )
    report = ingester(source, InProcessSink(service), tmp_path / "state").run()
    assert ROWS == report.labels == stored_count(service, "labels")
    stored = service.get_transaction(str(pd.read_parquet(replay_file)["trans_num"].iloc[0]))
    assert stored is not None
    assert stored.label is not None
    assert isinstance(stored.label, LabelRecord)


class PacedSource(ListSource):
    """The list's items fall due one every `every` seconds, as from a paced feed: a read
    returns those due and not read yet, and when none is, waits for the next one (as
    `fraudops feed` holds a poll until a row is due)."""

    def __init__(self, items: list[Item], *, every: float) -> None:
        super().__init__(items)
        self.every = every
        self.began = time.monotonic()
        self.reads_with_items = 0

    def read(self, limit: int) -> list[Item]:
        if self.next < len(self.items):
            time.sleep(max(0.0, self.began + self.next * self.every - time.monotonic()))
        due = min(len(self.items), int((time.monotonic() - self.began) / self.every) + 1)
        batch = self.items[self.next : min(due, self.next + limit)]
        self.next += len(batch)
        self.reads_with_items += bool(batch)
        return batch


def test_a_caught_up_source_is_read_at_the_batch_linger_not_row_by_row(
    replay_file: Path, service: ScoringService, tmp_path: Path
) -> None:
    """200 rows falling due over about 0.4 s come in a few reads of many rows (one every
    linger_seconds), not in a read, a request and a spool write per row."""
    items = FileReplaySource(replay_file, checkpoint=tmp_path / "unused.json").read(200)
    source = PacedSource(items, every=0.002)
    began = time.monotonic()
    report = ingester(source, InProcessSink(service), tmp_path / "state", linger_seconds=0.05).run()
    seconds = time.monotonic() - began
    assert 200 == report.stored_new == stored_count(service)
    # At most one read per linger (plus the first and the last); a loaded machine only
    # makes reads rarer. Reading again at once took one read per row or two.
    assert source.reads_with_items <= seconds / 0.05 + 2, (source.reads_with_items, seconds)
    assert source.reads_with_items < 40
