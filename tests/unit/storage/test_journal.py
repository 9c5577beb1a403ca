"""The scoring journal: records round-trip, a torn tail ends a segment, live segments are
never taken for orphans, and what a dead process left is replayed into the warehouse once."""

import functools
import math
import os
import secrets
import signal
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fraudops.config import Settings
from fraudops.data.personal import PersonalData
from fraudops.data.schema import CanonicalTransaction, ProfileTransaction, stored_transaction
from fraudops.scoring import journaling
from fraudops.scoring.drain import DrainError, DrainProcess
from fraudops.scoring.journaling import JournaledWriter, replay_journal
from fraudops.storage.base import (
    LabelRecord,
    Reason,
    ScoredTransaction,
    ScoreRecord,
    StoredResult,
)
from fraudops.storage.journal import (
    Journal,
    JournalEntry,
    decode_entry,
    encode_entry,
    read_records,
)
from fraudops.storage.warehouse import Warehouse

T0 = datetime(2024, 3, 5, 14, 21)
KEYS = PersonalData(secrets.token_bytes(32))


def entry(trans_num: str, *, minutes: int = 0, labelled: bool = False) -> JournalEntry:
    """A protected, scored transaction as the service journals it."""
    canonical = CanonicalTransaction.model_validate(
        {
            "trans_num": trans_num,
            "cc_num": 4_000_000_000_000_001,
            "merchant": "fraud_Kirlin and Sons",
            "category": "grocery_pos",
            "amt": 12.5 + minutes,
            "dob": "1980-05-17",
            "trans_date_trans_time": f"{T0 + timedelta(minutes=minutes):%Y-%m-%dT%H:%M:%S}",
        }
    )
    score = ScoreRecord(
        model_name="fraud-detector",
        model_version="3",
        fraud_probability=0.875,
        decision="decline",
        scored_at=datetime(2026, 12, 5, 21, 0, 1, 123456, tzinfo=UTC),
        reasons=(Reason("amount", 900.0, 1.5, "amount 900.00"), Reason("age", None, 0.25, "?")),
        features={"amount": 12.5, "card_count_1h": math.nan},
        latency_ms=0.125,
    )
    label = LabelRecord(
        trans_num=trans_num, is_fraud=True, label_time=canonical.event_time, source="feed"
    )
    return JournalEntry(
        item=ScoredTransaction(transaction=KEYS.protect(canonical), score=score),
        label=label if labelled else None,
    )


def test_an_entry_comes_back_from_its_record_as_it_went_in() -> None:
    """Transaction, score (NaN feature included), reasons and label survive the journal."""
    original = entry("t-1", labelled=True)
    back = decode_entry(encode_entry(original))
    assert original.item.transaction == back.item.transaction
    assert original.label == back.label
    assert original.item.score.reasons == back.item.score.reasons
    assert original.item.score.scored_at == back.item.score.scored_at
    assert 0.875 == back.item.score.fraud_probability
    assert math.isnan(back.item.score.features["card_count_1h"])


def test_a_torn_record_at_the_end_ends_the_segment(tmp_path: Path) -> None:
    """A process killed mid-write leaves a partial record: the whole ones before it count."""
    segment = Journal(tmp_path).open_segment()
    segment.append([b"first", b"second"])
    segment.close()
    with segment.path.open("ab") as out:
        out.write(b"\x10\x00\x00\x00\x00\x00")  # a header cut short, then nothing
    assert [b"first", b"second"] == list(read_records(segment.path))


def test_a_live_segment_is_no_orphan_and_a_closed_one_is(tmp_path: Path) -> None:
    """A segment still held by its process is left alone; once released, it is an orphan."""
    journal = Journal(tmp_path)
    live = journal.open_segment()
    dead = journal.open_segment()
    dead.append([b"x"])
    dead.close()
    assert [dead.path] == [path for path, _ in journal.orphans()]
    live.close()


def test_what_a_dead_process_journaled_is_replayed_into_the_warehouse_once(
    tmp_path: Path,
) -> None:
    """Records journaled and never drained are stored at the next start, and the segment
    goes; records already drained are not stored twice."""
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}", personal=KEYS)
    warehouse.migrate()
    journal = Journal(tmp_path / "journal")
    drained, undrained = entry("t-1"), entry("t-2", minutes=1, labelled=True)
    warehouse.store_scored_batch([drained.item])
    segment = journal.open_segment()
    segment.append([encode_entry(drained), encode_entry(undrained)])
    segment.close()  # the process is gone: its lock is released

    assert 2 == replay_journal(journal, warehouse)

    stored = warehouse.get_transaction("t-2")
    assert stored is not None
    assert stored.champion is not None
    assert 0.875 == stored.champion.fraud_probability
    assert stored.label is not None
    assert True is stored.label.is_fraud
    assert [] == list((tmp_path / "journal").iterdir())
    assert 0 == replay_journal(journal, warehouse)
    warehouse.dispose()


class GatedWarehouse:
    """A warehouse whose batch stores wait until the test opens the gate."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.gate = threading.Event()

    def store_scored_batch(
        self, items: Sequence[ScoredTransaction], *, labels: Sequence[LabelRecord] = ()
    ) -> list[StoredResult]:
        """Wait for the gate, then store."""
        self.gate.wait(10)
        return self.warehouse.store_scored_batch(items, labels=labels)


def test_the_drained_future_resolves_whether_asked_for_before_or_after_the_drain(
    tmp_path: Path,
) -> None:
    """`drained` asked for while the warehouse is held resolves once it stores the
    transaction; asked for only after that, it comes already resolved."""
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}", personal=KEYS)
    warehouse.migrate()
    gated = GatedWarehouse(warehouse)
    writer = JournaledWriter(gated, Journal(tmp_path / "journal"))  # type: ignore[arg-type]
    writer.start()
    early = writer.submit(entry("t-1").item)
    late = writer.submit(entry("t-2").item)
    waiting = early.drained
    assert False is waiting.done()
    gated.gate.set()
    assert "t-1" == waiting.result(timeout=10).trans_num
    writer.close()
    assert True is late.drained.done()
    assert "t-2" == late.drained.result().trans_num
    warehouse.dispose()


def test_a_journaled_transaction_is_found_before_and_after_it_is_drained(
    tmp_path: Path,
) -> None:
    """Durable once its future resolves, readable from then on, in the warehouse once
    drained; closing drains everything and removes the segment."""
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}", personal=KEYS)
    warehouse.migrate()
    gated = GatedWarehouse(warehouse)
    writer = JournaledWriter(gated, Journal(tmp_path / "journal"))  # type: ignore[arg-type]
    writer.start()
    pending = writer.submit(entry("t-1").item)
    assert True is pending.durable.result(timeout=10).created
    journaled = writer.stored_transaction("t-1")
    assert journaled is not None
    assert journaled.champion == pending.entry.item.score
    assert ["t-1"] == list(writer.known(["t-1", "t-9"]))
    assert warehouse.get_transaction("t-1") is None  # not drained yet
    gated.gate.set()
    assert True is pending.drained.result(timeout=10).created
    assert writer.stored_transaction("t-1") is None  # in the warehouse now
    assert warehouse.get_transaction("t-1") is not None
    writer.close()
    assert [] == list((tmp_path / "journal").iterdir())
    warehouse.dispose()


def test_the_drain_stores_what_arrives_within_its_linger_in_one_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction journaled while the drain lingers over the one before joins its group:
    one warehouse commit for both. One alone is stored once the linger ends."""
    monkeypatch.setattr(journaling, "DRAIN_LINGER_SECONDS", 0.5)
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}", personal=KEYS)
    warehouse.migrate()
    gated = GatedWarehouse(warehouse)
    gated.gate.set()
    groups: list[list[str]] = []
    store = gated.store_scored_batch

    def recorded(items: Sequence[ScoredTransaction], **kwargs: Any) -> list[StoredResult]:
        groups.append([item.transaction.trans_num for item in items])
        return store(items, **kwargs)

    gated.store_scored_batch = recorded  # type: ignore[method-assign]
    writer = JournaledWriter(gated, Journal(tmp_path / "journal"))  # type: ignore[arg-type]
    writer.start()
    first = writer.submit(entry("t-1").item)
    first.durable.result(timeout=10)  # in the drain's hands now
    second = writer.submit(entry("t-2", minutes=1).item)
    assert "t-2" == second.drained.result(timeout=10).trans_num
    alone = writer.submit(entry("t-3", minutes=2).item)
    assert "t-3" == alone.drained.result(timeout=10).trans_num
    writer.close()
    assert [["t-1", "t-2"], ["t-3"]] == groups
    warehouse.dispose()


def test_journal_each_makes_a_group_durable_in_the_callers_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Durable on return (on disk, confirmed once for the group), drained afterwards; one
    refused for the pending limit is neither journaled nor confirmed. Groups journaled from
    several threads at once, and submitted ones, are each on disk once."""
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}", personal=KEYS)
    warehouse.migrate()
    confirmed: list[list[str]] = []
    journal = Journal(tmp_path / "journal")
    writer = JournaledWriter(
        warehouse, journal, on_durable=lambda names: confirmed.append(list(names))
    )
    writer.start()
    pendings = writer.journal_each([(entry(f"a-{n}", minutes=n).item, None) for n in range(3)])
    assert all(pending.durable.done() for pending in pendings)
    assert [["a-0", "a-1", "a-2"]] == confirmed
    (segment,) = (tmp_path / "journal").iterdir()
    on_disk = [decode_entry(record).item.transaction.trans_num for record in read_records(segment)]
    assert ["a-0", "a-1", "a-2"] == on_disk
    assert "a-2" == pendings[2].drained.result(timeout=10).trans_num

    monkeypatch.setattr(journaling, "MAX_PENDING", 0)
    (refused,) = writer.journal_each([(entry("r-1").item, None)])
    assert isinstance(refused.durable.exception(timeout=1), journaling.StoreUnavailableError)
    monkeypatch.setattr(journaling, "MAX_PENDING", 200_000)

    handed: list[journaling.Pending] = []

    def journal_some(prefix: str) -> None:
        for number in range(20):
            item = entry(f"{prefix}-{number}", minutes=number).item
            if number % 2:
                handed.append(writer.submit(item))
            else:
                handed.extend(writer.journal_each([(item, None)]))

    threads = [threading.Thread(target=journal_some, args=(name,)) for name in ("x", "y")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for pending in handed:
        pending.durable.result(timeout=10)
    on_disk = [decode_entry(record).item.transaction.trans_num for record in read_records(segment)]
    writer.close()
    expected = {"a-0", "a-1", "a-2"} | {f"{p}-{n}" for p in "xy" for n in range(20)}
    assert sorted(expected) == sorted(on_disk)
    assert "r-1" not in {name for group in confirmed for name in group}
    for name in expected:
        assert warehouse.get_transaction(name) is not None
    warehouse.dispose()


def failing_while_marked(url: str, marker: str) -> Warehouse:
    """The warehouse at `url`, whose stores fail while the file `marker` exists (opened in
    the drain process: a module-level function pickles by name)."""
    warehouse = Warehouse(url)
    store = warehouse.store_scored_batch

    def stored(items: Sequence[ScoredTransaction], **kwargs: Any) -> list[StoredResult]:
        if Path(marker).exists():
            with Path(f"{marker}.failed").open("a") as failed:
                failed.write("failed\n")
            msg = "the warehouse is down"
            raise RuntimeError(msg)
        return store(items, **kwargs)

    warehouse.store_scored_batch = stored  # type: ignore[method-assign]
    return warehouse


def test_a_drain_process_stores_the_journal_and_a_new_one_replaces_one_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drain process, not the serving one, stores each transaction with its label; one
    already in the warehouse comes back as a repeat. Killed (SIGKILL), the next batch
    starts another process and nothing is lost; closing stops it and removes the segment."""
    monkeypatch.setattr(journaling, "RETRY_SECONDS", 0.05)
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}", personal=KEYS)
    warehouse.migrate()
    warehouse.store_scored_batch([entry("t-0").item])  # stored by another replica
    opener = warehouse.opener()
    assert opener is not None
    drain = DrainProcess(opener, settings=Settings(home=tmp_path, log_level="warning"))
    writer = JournaledWriter(warehouse, Journal(tmp_path / "journal"), drain=drain)
    writer.start()
    labelled = entry("t-1", labelled=True)
    first = [writer.submit(entry("t-0").item), writer.submit(labelled.item, label=labelled.label)]
    assert [False, True] == [pending.drained.result(timeout=60).created for pending in first]
    stored = warehouse.get_transaction("t-1")
    assert stored is not None
    assert stored.label is not None
    assert True is stored.label.is_fraud
    pid = drain.pid
    assert pid is not None
    assert os.getpid() != pid

    os.kill(pid, signal.SIGKILL)
    later = [writer.submit(entry(f"t-{n}", minutes=n).item) for n in range(2, 6)]
    assert [True] * 4 == [pending.drained.result(timeout=60).created for pending in later]
    assert drain.pid not in (None, pid)
    for number in range(6):
        assert warehouse.get_transaction(f"t-{number}") is not None
    writer.close()
    assert drain.pid is None
    assert [] == list((tmp_path / "journal").iterdir())
    warehouse.dispose()


def test_a_warehouse_failure_in_the_drain_process_keeps_the_batch_until_it_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the drain process's warehouse fails, the transaction stays pending (readable,
    not drained); once the warehouse takes it again it is stored, by the same process."""
    monkeypatch.setattr(journaling, "RETRY_SECONDS", 0.05)
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    warehouse = Warehouse(url, personal=KEYS)
    warehouse.migrate()
    marker = tmp_path / "down"
    marker.touch()
    drain = DrainProcess(
        functools.partial(failing_while_marked, url, str(marker)),
        settings=Settings(home=tmp_path, log_level="warning"),
    )
    writer = JournaledWriter(warehouse, Journal(tmp_path / "journal"), drain=drain)
    writer.start()
    pending = writer.submit(entry("t-1").item)
    pending.durable.result(timeout=10)
    assert writer.stored_transaction("t-1") is not None
    failed = tmp_path / "down.failed"
    deadline = time.monotonic() + 60
    while not failed.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert failed.exists()  # the process started and failed the batch
    assert False is pending.drained.done()
    pid = drain.pid
    assert pid is not None
    marker.unlink()
    assert True is pending.drained.result(timeout=60).created
    assert pid == drain.pid
    assert warehouse.get_transaction("t-1") is not None
    writer.close()
    warehouse.dispose()


def test_an_in_memory_warehouse_cannot_be_opened_by_another_process() -> None:
    """Another process would see an empty database of its own: no opener, so the service
    keeps its drain thread."""
    assert Warehouse("sqlite://").opener() is None
    assert Warehouse("sqlite:///:memory:").opener() is None


def test_a_transaction_of_another_profile_comes_back_from_its_record_and_drains(
    tmp_path: Path,
) -> None:
    """A profile without cards and with columns of its own (ULB's V1.., a ProfileTransaction)
    is journaled, decoded and stored by the drain process as the service scored it."""
    canonical = stored_transaction(
        {
            "trans_num": "u-1",
            "amt": 149.62,
            "unix_time": 1_700_000_000,
            "extra_fields": {"V1": -1.36, "V2": -0.07},
        }
    )
    assert isinstance(canonical, ProfileTransaction)
    original = JournalEntry(
        item=ScoredTransaction(transaction=KEYS.protect(canonical), score=entry("t-0").item.score),
        label=None,
    )
    back = decode_entry(encode_entry(original))
    assert original.item.transaction == back.item.transaction

    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}", personal=KEYS)
    warehouse.migrate()
    opener = warehouse.opener()
    assert opener is not None
    drain = DrainProcess(opener, settings=Settings(home=tmp_path, log_level="warning"))
    writer = JournaledWriter(warehouse, Journal(tmp_path / "journal"), drain=drain)
    writer.start()
    pending = writer.submit(original.item)
    assert True is pending.drained.result(timeout=60).created
    writer.close()
    stored = warehouse.get_transaction("u-1")
    assert stored is not None
    assert {"V1": -1.36, "V2": -0.07} == stored.record["extra_fields"]
    warehouse.dispose()


def unopenable(url: str) -> Warehouse:
    """A warehouse that cannot be opened (in the drain process)."""
    msg = f"cannot open {url}"
    raise RuntimeError(msg)


def test_a_drain_process_outlives_ctrl_c_and_sigterm_and_one_that_cannot_start_waits(
    tmp_path: Path,
) -> None:
    """SIGINT and SIGTERM, which reach the service's whole process group, leave the drain
    process storing until the service closes its pipe. A process that dies before storing
    anything is not started again at once: the next batch is refused until the delay ends."""
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}", personal=KEYS)
    warehouse.migrate()
    opener = warehouse.opener()
    assert opener is not None
    settings = Settings(home=tmp_path, log_level="warning")
    drain = DrainProcess(opener, settings=settings)
    assert [True] == drain.store([encode_entry(entry("t-1"))])
    pid = drain.pid
    assert pid is not None
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    assert [True] == drain.store([encode_entry(entry("t-2", minutes=1))])
    assert pid == drain.pid
    drain.close()
    assert drain.pid is None
    assert warehouse.get_transaction("t-2") is not None
    warehouse.dispose()

    broken = DrainProcess(functools.partial(unopenable, "nowhere"), settings=settings)
    with pytest.raises(DrainError, match="stopped"):
        broken.store([encode_entry(entry("t-3"))])
    with pytest.raises(DrainError, match="next starts in"):
        broken.store([encode_entry(entry("t-3"))])
    assert broken.pid is None
    broken.close()
