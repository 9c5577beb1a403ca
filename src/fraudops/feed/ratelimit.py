"""A per-client sliding-window rate limiter with an injectable clock (no I/O, no sleeping)."""

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from fraudops.feed.options import RateLimit

# Forget idle clients every so many checks so the table does not grow without bound.
_SWEEP_EVERY = 1024


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether one request may proceed and, if not, how many whole seconds to wait."""

    allowed: bool
    retry_after_s: int = 0


class SlidingWindowRateLimiter:
    """Allows each client at most `limit.requests` requests in any `limit.period_s` window.

    A sliding log: the times of each client's accepted requests within the last window.
    Refused requests are not recorded, so a client that keeps retrying is not locked out.
    """

    def __init__(self, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._accepted: dict[str, deque[float]] = {}
        self._checks = 0
        self._lock = threading.Lock()

    @property
    def limit(self) -> RateLimit:
        """The limit this limiter enforces."""
        return self._limit

    def check(self, client: str) -> RateDecision:
        """Record one request of `client` if it is within the limit; otherwise say when to retry."""
        with self._lock:
            now = self._clock()
            self._checks += 1
            if self._checks % _SWEEP_EVERY == 0:
                self._forget_idle(now)
            window_start = now - self._limit.period_s
            stamps = self._accepted.setdefault(client, deque())
            while stamps and stamps[0] <= window_start:
                stamps.popleft()
            if len(stamps) < self._limit.requests:
                stamps.append(now)
                return RateDecision(allowed=True)
            wait = stamps[0] + self._limit.period_s - now
            return RateDecision(allowed=False, retry_after_s=max(1, math.ceil(wait)))

    def _forget_idle(self, now: float) -> None:
        """Drop clients whose last accepted request has left the window."""
        window_start = now - self._limit.period_s
        idle = [client for client, s in self._accepted.items() if not s or s[-1] <= window_start]
        for client in idle:
            del self._accepted[client]
