"""Scored transactions made durable in the local journal, then drained into the warehouse.

A request hands its scored transaction over and waits on a future that resolves once the
journal has it on disk (one fdatasync for everything that arrived meanwhile): that is its
durable commit point, microseconds of work instead of a warehouse commit. A second thread
drains the journal into the warehouse in large batches: storing them itself, or handing them
to a drain process (scoring.drain) that does, so that this process keeps its CPU. Until
then the transaction is *pending*: looked up here for reads and repeats, so that GET
/v1/transactions and duplicate detection see it at once. A service starting replays what a
dead process left in the journal into the warehouse before anything else (see
storage.journal).
"""

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from fraudops.data.personal import ProtectedTransaction
from fraudops.scoring.drain import DrainProcess
from fraudops.scoring.writer import StoreUnavailableError
from fraudops.storage.base import (
    KnownTransaction,
    LabelRecord,
    ScoredTransaction,
    StoredResult,
    StoredTransaction,
    TransactionStore,
)
from fraudops.storage.journal import (
    SEGMENT_BYTES,
    Journal,
    JournalEntry,
    JournalSegment,
    decode_entry,
    encode_entry,
    read_records,
    store_entries,
)
from fraudops.times import utc_now

log = structlog.get_logger(__name__)

# Most transactions in one warehouse commit of the drain, and in one replayed batch.
MAX_DRAIN = 2_000
# Transactions journaled but not yet in the warehouse beyond which new ones are refused
# (503): the warehouse is down or far behind, and memory is not unbounded.
MAX_PENDING = 200_000
# Pause before the drain tries again after the warehouse failed it.
RETRY_SECONDS = 1.0
# How long the drain lets a group grow before storing it. A warehouse commit costs far more
# than a row: a commit per transaction costs PostgreSQL ~880 us of CPU per transaction, one
# per 20 transactions ~130 (benchmarks/bench_pg_store.py), and scoring at a few hundred a
# second hands the drain one or two at a time. What waits is durable in the journal already,
# and read from it, so the warehouse only trails by this.
DRAIN_LINGER_SECONDS = 0.02


@dataclass(eq=False)
class _Segment:
    """A journal segment with the count of its transactions not yet in the warehouse."""

    file: JournalSegment
    undrained: int = 0
    closed: bool = False


# Guards the making of `Pending.drained` against the drain resolving it meanwhile.
_DRAINED_LOCK = threading.Lock()


@dataclass(eq=False)
class Pending:
    """A transaction handed over and not yet in the warehouse."""

    entry: JournalEntry
    result: StoredResult
    received_at: datetime
    durable: "Future[StoredResult]" = field(default_factory=Future)
    segment: _Segment | None = None
    record: bytes = b""  # as journaled (encode_entry), once it is
    _drained: "Future[StoredResult] | None" = field(default=None, repr=False)
    _stored: StoredResult | None = field(default=None, repr=False)

    @property
    def drained(self) -> "Future[StoredResult]":
        """Resolves once the warehouse holds the transaction; made when first asked for (few
        are: a future per transaction costs the scoring path more than the rest of this)."""
        with _DRAINED_LOCK:
            future = self._drained
            if future is None:
                future = self._drained = Future()
                if self._stored is not None:
                    future.set_result(self._stored)
        return future

    def set_drained(self, result: StoredResult) -> None:
        """Record that the warehouse holds it, resolving `drained` if anyone asked for it."""
        with _DRAINED_LOCK:
            self._stored = result
            future = self._drained
        if future is not None:
            future.set_result(result)

    @property
    def protected(self) -> ProtectedTransaction:
        """The transaction as stored."""
        transaction = self.entry.item.transaction
        assert isinstance(transaction, ProtectedTransaction)  # noqa: S101 - submit checks
        return transaction


def replay_journal(journal: Journal, store: TransactionStore) -> int:
    """Store in the warehouse what dead processes left in the journal; how many records.

    Storing is idempotent by trans_num, so records already drained before the process died
    are written nothing twice.
    """
    replayed = 0
    for path, _lock in journal.orphans():
        entries = [decode_entry(record) for record in read_records(path)]
        for at in range(0, len(entries), MAX_DRAIN):
            store_entries(store, entries[at : at + MAX_DRAIN])
        path.unlink()
        replayed += len(entries)
        log.info("journal replayed into the warehouse", path=str(path), records=len(entries))
    return replayed


class JournaledWriter:
    """Journals scored transactions (durable on return of their future), drains them."""

    def __init__(
        self,
        store: TransactionStore,
        journal: Journal,
        *,
        on_durable: Callable[[Sequence[str]], None] | None = None,
        on_commit: Callable[[Sequence[StoredResult], float], None] | None = None,
        drain: DrainProcess | None = None,
    ) -> None:
        self._store = store
        self._process = drain  # stores for the drain thread, if given (else it stores)
        self._journal = journal
        self._on_durable = on_durable
        self._on_commit = on_commit
        self._incoming: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._to_drain: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()
        self._appending = threading.Lock()  # one append (and rotation) at a time
        self._segment: _Segment | None = None
        self._journaler = threading.Thread(
            target=self._journal_loop, name="fraudops-journal", daemon=True
        )
        self._drainer = threading.Thread(
            target=self._drain_loop, name="fraudops-drain", daemon=True
        )
        self._closed = False

    def start(self) -> None:
        """Replay what dead processes left, open this process's segment, start the threads."""
        replay_journal(self._journal, self._store)
        self._segment = _Segment(self._journal.open_segment())
        self._journaler.start()
        self._drainer.start()

    @property
    def alive(self) -> bool:
        """Whether both threads run."""
        return self._journaler.is_alive() and self._drainer.is_alive()

    def submit(self, item: ScoredTransaction, *, label: LabelRecord | None = None) -> Pending:
        """Hand a new scored transaction over; its `durable` future resolves once on disk."""
        pending = self._register(item, label)
        if not pending.durable.done():
            self._incoming.put(pending)
        return pending

    def journal_each(
        self, items: Sequence[tuple[ScoredTransaction, LabelRecord | None]]
    ) -> list[Pending]:
        """Journal new scored transactions in this thread, with one fdatasync: their `durable`
        futures are resolved on return.

        For a caller that is a worker thread anyway: the journal thread's hop there and back
        costs more than the fdatasync (each hop waits for the GIL while others compute).
        """
        pendings = [self._register(item, label) for item, label in items]
        fresh = [pending for pending in pendings if not pending.durable.done()]
        if fresh:
            self._append(fresh)
        return pendings

    def _register(self, item: ScoredTransaction, label: LabelRecord | None) -> Pending:
        """A pending transaction, known to look-ups; refused at once (its future failed) if
        the writer is closing or too much waits for the warehouse."""
        transaction = item.transaction
        if not isinstance(transaction, ProtectedTransaction):
            msg = "only protected transactions are journaled"
            raise TypeError(msg)
        result = StoredResult(
            trans_num=transaction.trans_num, score=item.score, shadow=item.shadow, created=True
        )
        pending = Pending(JournalEntry(item=item, label=label), result, utc_now())
        if self._closed:
            pending.durable.set_exception(StoreUnavailableError("the service is shutting down"))
            return pending
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                pending.durable.set_exception(
                    StoreUnavailableError(
                        f"{len(self._pending)} scored transactions wait for the warehouse"
                    )
                )
                return pending
            self._pending[transaction.trans_num] = pending
        return pending

    def pending(self, trans_num: str) -> Pending | None:
        """The transaction handed over under this trans_num and not yet in the warehouse."""
        return self._pending.get(trans_num)

    def known(self, trans_nums: Sequence[str]) -> dict[str, KnownTransaction]:
        """The pending transactions among `trans_nums` that are durable, as known ones."""
        found: dict[str, KnownTransaction] = {}
        for trans_num in trans_nums:
            pending = self._pending.get(trans_num)
            if pending is None or not pending.durable.done() or pending.durable.exception():
                continue
            found[trans_num] = KnownTransaction(
                trans_num=trans_num,
                fingerprint=pending.protected.fingerprint,
                record=pending.protected.transaction.model_dump(mode="json", exclude_none=True),
                result=dataclasses.replace(pending.result, created=False),
            )
        return found

    def stored_transaction(self, trans_num: str) -> StoredTransaction | None:
        """A durable pending transaction as the warehouse will hold it."""
        pending = self._pending.get(trans_num)
        if pending is None or not pending.durable.done() or pending.durable.exception():
            return None
        canonical = pending.protected.transaction
        return StoredTransaction(
            trans_num=trans_num,
            record=canonical.model_dump(mode="json", exclude_none=True),
            event_time=canonical.event_time,
            received_at=pending.received_at.replace(tzinfo=None),
            champion=pending.result.score,
            challengers=(),
            label=pending.entry.label,
            card_last4=pending.protected.card_last4,
            sealed=pending.protected.sealed,
        )

    def close(self, timeout: float = 30.0) -> None:
        """Journal everything handed over, drain it into the warehouse, stop the threads."""
        if self._closed:
            return
        self._closed = True
        self._incoming.put(None)
        if self._journaler.is_alive():
            self._journaler.join(timeout)
        if self._drainer.is_alive():
            self._drainer.join(timeout)
        if self._process is not None:
            self._process.close()
        with self._appending:  # a worker thread's `journal_each` may be appending
            segment = self._segment
            if segment is not None:
                segment.file.close()
                if not self._pending:  # all of it is in the warehouse
                    segment.file.path.unlink(missing_ok=True)

    # --- the journal thread ------------------------------------------------------------------

    def _journal_loop(self) -> None:
        """Take whatever is waiting, append it with one flush, resolve it, pass it on."""
        stopping = False
        while not stopping:
            group, stopping = _waiting_group(self._incoming)
            if group:
                self._append(group)
        self._to_drain.put(None)

    def _append(self, group: Sequence[Pending]) -> None:
        """Journal one group; on failure, its transactions are refused (never answered).

        Called by the journal thread and by `journal_each`'s callers: one at a time.
        """
        with self._appending:
            segment = self._segment
            assert segment is not None  # noqa: S101 - set by start
            try:
                records = [encode_entry(p.entry) for p in group]
                segment.file.append(records)
            except Exception as error:  # a full disk must fail the requests, not the thread
                log.exception("journaling scored transactions failed", transactions=len(group))
                with self._lock:
                    for pending in group:
                        self._pending.pop(pending.result.trans_num, None)
                failure = StoreUnavailableError(
                    f"the journal could not store the transaction: {error}"
                )
                for pending in group:
                    pending.durable.set_exception(failure)
                return
            with self._lock:
                segment.undrained += len(group)
            for pending, record in zip(group, records, strict=True):
                pending.segment = segment
                pending.record = record
                pending.durable.set_result(pending.result)
                self._to_drain.put(pending)
            if segment.file.size >= SEGMENT_BYTES:
                self._rotate(segment)
        if self._on_durable is not None:
            self._on_durable([pending.result.trans_num for pending in group])

    def _rotate(self, segment: _Segment) -> None:
        """Begin a new segment; the full one goes once drained."""
        self._segment = _Segment(self._journal.open_segment())
        segment.file.close()
        with self._lock:
            segment.closed = True
            done = segment.undrained == 0
        if done:
            segment.file.path.unlink(missing_ok=True)

    # --- the drain thread --------------------------------------------------------------------

    def _drain_loop(self) -> None:
        """Store what the journal holds in the warehouse, in large batches, until closed."""
        stopping = False
        while not stopping:
            group, stopping = _waiting_group(
                self._to_drain, limit=MAX_DRAIN, linger=DRAIN_LINGER_SECONDS
            )
            if group:
                self._drain(group)

    def _drain(self, group: Sequence[Pending]) -> None:
        """Store one group, trying again until the warehouse takes it (it is answered)."""
        while True:
            start = time.perf_counter()
            try:
                results = self._stored(group)
            except Exception as error:  # the journal keeps them: try again, never drop
                log.warning(
                    "storing journaled transactions failed; trying again",
                    transactions=len(group),
                    error=str(error),
                )
                if self._closed and not self._journaler.is_alive():
                    return  # shutting down: the next start replays the journal
                time.sleep(RETRY_SECONDS)
                continue
            break
        if self._on_commit is not None:
            self._on_commit(results, time.perf_counter() - start)
        finished: list[_Segment] = []
        with self._lock:
            for pending in group:
                self._pending.pop(pending.result.trans_num, None)
                segment = pending.segment
                if segment is not None:
                    segment.undrained -= 1
                    if segment.closed and segment.undrained == 0:
                        finished.append(segment)
        for pending, result in zip(group, results, strict=True):
            pending.set_drained(result)
        for segment in finished:
            segment.file.path.unlink(missing_ok=True)

    def _stored(self, group: Sequence[Pending]) -> list[StoredResult]:
        """Store one group in the warehouse: by the drain process if there is one."""
        if self._process is None:
            return store_entries(self._store, [p.entry for p in group])
        created = self._process.store([p.record for p in group])
        # One already stored (by a replica that had claimed it) counts as a repeat.
        return [
            p.result if new else dataclasses.replace(p.result, created=False)
            for p, new in zip(group, created, strict=True)
        ]


def _waiting_group(
    waiting: "queue.SimpleQueue[Pending | None]",
    *,
    limit: int | None = None,
    linger: float = 0.0,
) -> tuple[list[Pending], bool]:
    """The next item (waiting for it) and those that join it within `linger` seconds (none:
    those already behind it), up to `limit`; and whether the end mark (None) came, after
    which nothing more will."""
    first = waiting.get()
    if first is None:
        return [], True
    group = [first]
    deadline = time.monotonic() + linger
    while limit is None or len(group) < limit:
        try:
            left = deadline - time.monotonic()
            item = waiting.get(timeout=left) if left > 0 else waiting.get_nowait()
        except queue.Empty:
            break
        if item is None:
            return group, True
        group.append(item)
    return group, False
