"""The online engine's sense of "now" in event time, robust to a few events dated far ahead.

State is pruned relative to the latest event of a card or merchant; a single transaction
dated years ahead would otherwise make every earlier event look old and erase the history
(the service refuses such dates, but a margin remains, and stored history may hold some).
The clock is a high quantile of the latest event times seen: one in a hundred may lie
ahead of it without moving it.
"""

from array import array

SAMPLE = 1_024
# Recompute the quantile every this many events (sorting the sample costs tens of µs).
EVERY = 128
# Of the sample, skip one in OUTLIER_SHARE from the top.
OUTLIER_SHARE = 100


class EventClock:
    """A robust latest event time (epoch ms) over the most recent SAMPLE events."""

    def __init__(self, *, seed_ms: int | None = None) -> None:
        self._times = array("q")
        self._next = 0
        self._seen = 0
        self._now_ms = seed_ms

    @property
    def now_ms(self) -> int | None:
        """The event-time "now", None until some events (or a seed) have set it."""
        return self._now_ms

    def seed(self, now_ms: int | None) -> None:
        """Start from a known "now" (the warehouse's event clock) until events say more."""
        if now_ms is not None and (self._now_ms is None or now_ms > self._now_ms):
            self._now_ms = now_ms

    def observe(self, time_ms: int) -> None:
        """Count one event's time."""
        if len(self._times) < SAMPLE:
            self._times.append(time_ms)
        else:
            self._times[self._next] = time_ms
            self._next = (self._next + 1) % SAMPLE
        self._seen += 1
        if self._seen % EVERY == 0 or self._seen == OUTLIER_SHARE:
            ordered = sorted(self._times)
            estimate = ordered[-1 - len(ordered) // OUTLIER_SHARE]
            if self._seen >= OUTLIER_SHARE or self._now_ms is None:
                self._now_ms = estimate

    def prune_reference(self, latest_ms: int) -> int:
        """The instant a state whose latest event is `latest_ms` prunes relative to."""
        now = self._now_ms
        return latest_ms if now is None else min(latest_ms, now)
