"""Awaiting the storage thread's futures from the event loop, one wake-up per burst.

`asyncio.wrap_future` wakes the loop once per future (a write to its self-pipe and a trip
through the GIL each); a group commit resolves hundreds at once, so the bridge gathers
them and wakes the loop once for all that completed meanwhile.
"""

import asyncio
import threading
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class FutureBridge:
    """Turns concurrent futures into asyncio futures of one loop, coalescing wake-ups."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._done: list[tuple[Future[Any], asyncio.Future[Any]]] = []
        self._scheduled = False

    def wait(self, future: "Future[T]") -> "asyncio.Future[T]":
        """An asyncio future (of this loop) that settles as `future` does."""
        waiter: asyncio.Future[T] = self._loop.create_future()
        self.forward(future, waiter)
        return waiter

    def forward(self, future: "Future[T]", waiter: "asyncio.Future[T]") -> None:
        """Settle `waiter` (of this loop) as `future` settles."""
        future.add_done_callback(lambda done: self._completed(done, waiter))

    def _completed(self, future: "Future[Any]", waiter: "asyncio.Future[Any]") -> None:
        """Queue a settled future; schedule a drain unless one is already coming."""
        with self._lock:
            self._done.append((future, waiter))
            if self._scheduled:
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        """In the loop: settle every waiter whose future completed."""
        with self._lock:
            done, self._done = self._done, []
            self._scheduled = False
        for future, waiter in done:
            if waiter.done():  # the request went away meanwhile
                continue
            error = future.exception()
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(future.result())
