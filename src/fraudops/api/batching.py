"""Concurrent POST /v1/score requests scored together: one hand-off for all that wait.

Each scoring request costs fixed work besides its own: the admission look-up of its
trans_num, the model's call, a hop to a worker thread and back when scoring waits on the
network. Requests that arrive while others are being read are gathered and handed to
`ScoringService.score_each` at once: one look-up, one model call, one thread hop,
and each request still gets its own outcome (its stored result, or the error refusing it
alone). Order is kept: a batch is scored in arrival order, and batches one after another.

On the embedded default scoring takes microseconds and the batch is scored on the event
loop, once the requests read in the same turn of the loop have joined it. When scoring waits
on PostgreSQL or Redis it runs in a worker thread, at most `threads` batches at once;
requests arriving meanwhile wait for the next free one, so under load batches grow instead
of threads.
"""

import asyncio
from concurrent.futures import Future

import anyio.to_thread

from fraudops.api.bridge import FutureBridge
from fraudops.data.schema import CanonicalTransaction
from fraudops.scoring.service import ScoringService
from fraudops.storage.base import StoredResult

# Most transactions scored in one batch (a batch holds the loop, or a thread, while scored).
MAX_BATCH = 64
# Batches scored at once in worker threads (PostgreSQL, Redis). One: the threads' Python
# work shares one GIL anyway, and more threads only made smaller batches (in development
# runs of bench_serve's load at 500 requests/s, p99 was about three times longer with 8
# threads than with 1, and 2 threads answered fewer requests/s than 1 at full speed).
BATCH_THREADS = 1

_Waiting = tuple[CanonicalTransaction, "asyncio.Future[StoredResult]"]


class ScoreBatcher:
    """Gathers single-transaction scoring requests of one event loop into batches."""

    def __init__(
        self,
        service: ScoringService,
        *,
        bridge: FutureBridge,
        threads: int,
    ) -> None:
        self._service = service
        self._bridge = bridge
        self._threads = threads
        self._limiter = anyio.CapacityLimiter(threads)
        self._waiting: list[_Waiting] = []
        self._scheduled = False
        self._running = 0  # batches in worker threads now
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done

    def score(self, transaction: CanonicalTransaction) -> "asyncio.Future[StoredResult]":
        """A future of the transaction's stored result (or of the error refusing it)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[StoredResult] = loop.create_future()
        self._waiting.append((transaction, waiter))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start)
        return waiter

    def _start(self) -> None:
        """In the loop: score what waits, here or in a free worker thread."""
        self._scheduled = False
        service = self._service
        while self._waiting:
            if service.blocking and self._running >= self._threads:
                return  # the next batch to finish starts the rest
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            batch = [(transaction, waiter) for transaction, waiter in batch if not waiter.done()]
            if not batch:
                continue
            if service.blocking:
                self._running += 1
                task = asyncio.get_running_loop().create_task(self._in_thread(service, batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self._settle(batch, _scored(service, batch))

    async def _in_thread(self, service: ScoringService, batch: list[_Waiting]) -> None:
        """Score one batch in a worker thread, then start whatever waits meanwhile."""
        try:
            outcomes = await anyio.to_thread.run_sync(
                _scored, service, batch, limiter=self._limiter
            )
        finally:
            self._running -= 1
        self._settle(batch, outcomes)
        if self._waiting and not self._scheduled:
            self._start()

    def _settle(
        self, batch: list[_Waiting], outcomes: "list[Future[StoredResult] | Exception]"
    ) -> None:
        """Pass each outcome on to its request: an error now, a stored result once stored."""
        for (_, waiter), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Future):
                self._bridge.forward(outcome, waiter)
            elif not waiter.done():
                waiter.set_exception(outcome)


def _scored(
    service: ScoringService, batch: list[_Waiting]
) -> "list[Future[StoredResult] | Exception]":
    """The outcomes of a batch scored; an error of the whole service is every request's."""
    try:
        return service.score_each([transaction for transaction, _ in batch])
    except Exception as error:
        return [error] * len(batch)
