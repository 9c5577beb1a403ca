"""The ingester's buffer: first in, first out, bounded in memory, spilling to disk.

Items wait here between the source and the scoring service. Up to `memory_items` of them
are held in memory; beyond that they go to a SQLite file beside the ingester's checkpoint
and come back in order when the memory drains. A durable spool (for a source that cannot
deliver an item twice, such as the live feed, which forgets a row once served) writes every
item to the file before `put` returns and keeps it until it is acknowledged, so a killed
ingester resends it on restart. A spool over a source that redelivers on its own (a file
replayed from its checkpoint, a Redis stream's pending entries) starts empty instead.
"""

import sqlite3
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to deliver: a transaction or a label, and where in its source it came from.

    `position` is the source's own bookmark (a file row, a stream entry id); `seq` is the
    spool's order, given by `put`.
    """

    kind: str  # "transaction" or "label"
    data: dict[str, Any]
    position: str
    seq: int = 0


class Spool:
    """A FIFO of items: memory first, then a SQLite file; thread-safe; acknowledged in order."""

    def __init__(self, path: Path, *, memory_items: int, durable: bool) -> None:
        if memory_items < 1:
            msg = f"memory_items must be at least 1, got {memory_items}"
            raise ValueError(msg)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.memory_items = memory_items
        self.durable = durable
        self._lock = threading.Condition()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS items (seq INTEGER PRIMARY KEY, "
            "kind TEXT NOT NULL, position TEXT NOT NULL, data BLOB NOT NULL)"
        )
        if not durable:
            # The source redelivers whatever was not acknowledged: nothing here is owed.
            self._db.execute("DELETE FROM items")
        self._memory: deque[Item] = deque()
        # Items only on disk, in order after everything in memory: seqs [from, until].
        first, last = self._db.execute("SELECT min(seq), max(seq) FROM items").fetchone()
        self._next_seq = (last or 0) + 1
        self._backlog_from: int | None = first
        self._backlog_until: int = last or 0
        self._closed = False

    # --- producer ----------------------------------------------------------------------------

    def put(self, items: Sequence[Item]) -> list[Item]:
        """Append items in order, numbering them; a durable spool has them on disk on return."""
        with self._lock:
            numbered = [
                Item(item.kind, item.data, item.position, self._next_seq + offset)
                for offset, item in enumerate(items)
            ]
            if not numbered:
                return numbered
            self._next_seq += len(numbered)
            if self.durable:
                self._write(numbered)
            room = 0 if self._backlog_from is not None else self.memory_items - len(self._memory)
            self._memory.extend(numbered[: max(0, room)])
            spilled = numbered[max(0, room) :]
            if spilled:
                if not self.durable:
                    self._write(spilled)
                if self._backlog_from is None:
                    self._backlog_from = spilled[0].seq
                self._backlog_until = spilled[-1].seq
            self._lock.notify_all()
            return numbered

    # --- consumer ----------------------------------------------------------------------------

    def take(self, limit: int, *, timeout: float) -> list[Item]:
        """Up to `limit` items in order, waiting up to `timeout` s for the first one.

        Taken items stay owed until `ack` (or given back with `requeue`).
        """
        with self._lock:
            if not self._memory and self._backlog_from is None:
                self._lock.wait(timeout)
            if self._memory:
                return [self._memory.popleft() for _ in range(min(limit, len(self._memory)))]
            if self._backlog_from is None:
                return []
            rows = self._db.execute(
                "SELECT seq, kind, position, data FROM items WHERE seq >= ? ORDER BY seq LIMIT ?",
                (self._backlog_from, limit),
            ).fetchall()
            taken = [Item(kind, orjson.loads(data), pos, seq) for seq, kind, pos, data in rows]
            after = taken[-1].seq + 1 if taken else self._backlog_until + 1
            self._backlog_from = after if after <= self._backlog_until else None
            return taken

    def ack(self, items: Sequence[Item]) -> None:
        """The items are delivered: forget them and everything taken before them."""
        if not items:
            return
        upto = max(item.seq for item in items)
        with self._lock:
            self._db.execute("DELETE FROM items WHERE seq <= ?", (upto,))

    def requeue(self, items: Sequence[Item]) -> None:
        """Give taken, unacknowledged items back, to be taken again first."""
        with self._lock:
            self._memory.extendleft(reversed(items))
            self._lock.notify_all()

    # --- state -------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Items waiting to be taken."""
        with self._lock:
            return len(self._memory) + self.on_disk()

    def in_memory(self) -> int:
        """Items waiting in memory."""
        return len(self._memory)

    def on_disk(self) -> int:
        """Items waiting on disk only (spilled, or left by an earlier run)."""
        if self._backlog_from is None:
            return 0
        return self._backlog_until - self._backlog_from + 1

    def close(self) -> None:
        """Keep what a durable spool owes for the next start; a redeliverable one forgets."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self.durable:
                self._db.execute("DELETE FROM items")
            self._db.close()

    # --- disk --------------------------------------------------------------------------------

    def _write(self, items: Sequence[Item]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO items (seq, kind, position, data) VALUES (?, ?, ?, ?)",
            [(i.seq, i.kind, i.position, orjson.dumps(i.data)) for i in items],
        )
        self._db.execute("COMMIT")
