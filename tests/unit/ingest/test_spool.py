"""The spool: FIFO across memory and disk, durable across restarts, forgetting when told."""

from pathlib import Path

import pytest

from fraudops.ingest.spool import Item, Spool


def items(start: int, count: int) -> list[Item]:
    """Transactions t<start>..t<start+count-1>."""
    return [
        Item("transaction", {"trans_num": f"t{n}"}, str(n)) for n in range(start, start + count)
    ]


def names(taken: list[Item]) -> list[str]:
    """The trans_nums of taken items, in order."""
    return [item.data["trans_num"] for item in taken]


def test_items_beyond_memory_spill_to_disk_and_come_back_in_order(tmp_path: Path) -> None:
    """With room for 3 in memory, 10 items: 3 in memory, 7 on disk, all taken in order."""
    spool = Spool(tmp_path / "spool.db", memory_items=3, durable=False)
    spool.put(items(0, 10))
    assert (3, 7, 10) == (spool.in_memory(), spool.on_disk(), len(spool))
    taken = spool.take(4, timeout=0) + spool.take(4, timeout=0) + spool.take(4, timeout=0)
    taken += spool.take(4, timeout=0)
    assert [f"t{n}" for n in range(10)] == names(taken)
    assert 0 == len(spool)
    spool.close()


def test_new_items_wait_behind_the_spilled_ones(tmp_path: Path) -> None:
    """Once items are on disk, newer ones queue behind them even if memory has room again."""
    spool = Spool(tmp_path / "spool.db", memory_items=2, durable=False)
    spool.put(items(0, 4))  # t0 t1 in memory, t2 t3 on disk
    assert ["t0", "t1"] == names(spool.take(2, timeout=0))
    spool.put(items(4, 1))
    assert ["t2", "t3", "t4"] == names(spool.take(10, timeout=0) + spool.take(10, timeout=0))
    spool.close()


def test_a_durable_spool_gives_back_unacknowledged_items_after_a_restart(tmp_path: Path) -> None:
    """Acknowledged items are gone; taken but unacknowledged ones come back first."""
    path = tmp_path / "spool.db"
    spool = Spool(path, memory_items=100, durable=True)
    spool.put(items(0, 5))
    first = spool.take(2, timeout=0)
    spool.ack(first)
    spool.take(2, timeout=0)  # t2 t3 taken, never acknowledged (the process dies)
    del spool  # no close: as after kill -9
    again = Spool(path, memory_items=100, durable=True)
    assert 3 == len(again)
    assert ["t2", "t3", "t4"] == names(again.take(10, timeout=0))
    again.put(items(5, 1))
    assert ["t5"] == names(again.take(10, timeout=0))
    again.close()


def test_a_redeliverable_spool_starts_empty(tmp_path: Path) -> None:
    """A source that redelivers owns the truth: the spool forgets what it held."""
    path = tmp_path / "spool.db"
    spool = Spool(path, memory_items=1, durable=False)
    spool.put(items(0, 5))
    spool.close()
    assert 0 == len(Spool(path, memory_items=1, durable=False))


def test_requeued_items_are_taken_again_first(tmp_path: Path) -> None:
    """Items given back (delivery interrupted) precede everything still waiting."""
    spool = Spool(tmp_path / "spool.db", memory_items=10, durable=False)
    spool.put(items(0, 4))
    taken = spool.take(2, timeout=0)
    spool.requeue(taken)
    assert ["t0", "t1", "t2", "t3"] == names(spool.take(10, timeout=0))
    spool.close()


def test_sequence_numbers_go_on_after_a_restart(tmp_path: Path) -> None:
    """A durable spool numbers new items after those it kept."""
    path = tmp_path / "spool.db"
    spool = Spool(path, memory_items=10, durable=True)
    kept = spool.put(items(0, 3))
    spool.close()
    again = Spool(path, memory_items=10, durable=True)
    assert again.put(items(3, 1))[0].seq == kept[-1].seq + 1
    again.close()


def test_memory_must_hold_at_least_one_item(tmp_path: Path) -> None:
    """A spool with no memory is a configuration error, named."""
    with pytest.raises(ValueError, match="memory_items"):
        Spool(tmp_path / "spool.db", memory_items=0, durable=False)
