"""Group commit: scored transactions from many requests stored together, each caller waiting.

A request hands its scored transaction over and waits on a future; one writer thread takes
everything waiting, stores it in one database transaction and resolves the futures. Each
caller still learns only after its transaction is durably stored (or that storing failed),
and the database sees one commit per group instead of one per request.
"""

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import structlog

from fraudops.data.personal import ProtectedTransaction
from fraudops.data.schema import CanonicalTransaction
from fraudops.storage.base import LabelRecord, ScoredTransaction, StoredResult, TransactionStore

log = structlog.get_logger(__name__)

# Most transactions in one commit: large enough to amortise it, small enough to stay quick.
MAX_GROUP = 500


@dataclass(frozen=True)
class _Job:
    item: ScoredTransaction
    label: LabelRecord | None
    future: "Future[StoredResult]"


class StoreUnavailableError(RuntimeError):
    """The warehouse could not store a transaction; nothing of its group was stored."""


class GroupCommitWriter:
    """Stores scored transactions (and labels that came with them) in groups, in a thread."""

    def __init__(
        self,
        store: TransactionStore,
        *,
        on_commit: Callable[[Sequence[StoredResult], float], None] | None = None,
        max_group: int = MAX_GROUP,
    ) -> None:
        self._store = store
        self._on_commit = on_commit
        self._max_group = max_group
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="fraudops-writer", daemon=True)
        self._closed = False

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the writer thread is running."""
        return self._thread.is_alive()

    def submit(
        self, item: ScoredTransaction, *, label: LabelRecord | None = None
    ) -> "Future[StoredResult]":
        """Queue a scored transaction; the future resolves once it is stored (or failed)."""
        future: Future[StoredResult] = Future()
        if self._closed:
            future.set_exception(StoreUnavailableError("the service is shutting down"))
            return future
        self._jobs.put(_Job(item, label, future))
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Store everything queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        """Take whatever is waiting, store it as one group, repeat until closed."""
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            group = [first]
            while len(group) < self._max_group:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                group.append(job)
            self._commit(group)

    def _commit(self, group: Sequence[_Job]) -> None:
        """Store one group with its labels and resolve its futures; if it fails, store its
        jobs one by one."""
        start = time.perf_counter()
        try:
            results = self._store.store_scored_batch(
                [job.item for job in group],
                labels=[job.label for job in group if job.label is not None],
            )
        except Exception as error:  # any storage failure fails the group, never the thread
            if len(group) > 1:
                # One bad transaction must not fail the others that shared its commit.
                for job in group:
                    self._commit([job])
                return
            log.exception(
                "storing a scored transaction failed", trans_num=_trans_num(group[0].item)
            )
            group[0].future.set_exception(_unavailable(error))
            return
        if self._on_commit is not None:
            self._on_commit(results, time.perf_counter() - start)
        for job, result in zip(group, results, strict=True):
            job.future.set_result(result)


def _unavailable(error: Exception) -> StoreUnavailableError:
    """The error a caller gets when the warehouse failed it."""
    return StoreUnavailableError(f"the warehouse could not store the transaction: {error}")


def _trans_num(item: ScoredTransaction) -> str:
    """The trans_num of a queued item, for the log."""
    transaction = item.transaction
    if isinstance(transaction, CanonicalTransaction | ProtectedTransaction):
        return transaction.trans_num
    return str(transaction.get("trans_num", "?"))
