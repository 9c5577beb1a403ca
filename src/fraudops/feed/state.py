"""The live feed's state: a cursor over time-ordered rows, a virtual clock and delayed labels.

Pure logic with an injectable clock; the HTTP app (`fraudops.feed.app`) is a thin adapter.

Semantics:
- Rows are served in event-time order, each once. Without `speed` a request gets the next
  rows at once. With `speed` X a virtual clock starts at the first row's time when the feed
  is built and runs X times real time; a request gets the rows already due (a backlog is
  never skipped) and, when none is due, learns how long until the next one is.
- At the end of the data the feed is exhausted (`FeedExhaustedError`), or with `loop` starts
  again from the first row, every lap re-stamped one data span (plus one mean gap) later
  and its trans_num suffixed "-<lap>" so a lap never repeats an id.
- With `label_delay_s` the stream carries no label (is_fraud null); the label of a served row
  becomes available once the feed's timeline reaches its event time plus the delay.
- With `label_times` the stream carries no label either; the label of a served row becomes
  available at the data's own `label_time` (value `reported_fraud`), and a row without one
  never gets a label (unreported fraud, never-reviewed legitimate purchases).
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
import structlog

from fraudops.data.schema import FEED_COLUMNS
from fraudops.feed.records import (
    SERVED_COLUMNS,
    UNKNOWN_TIME,
    FeedRecords,
    prepare_feed_records,
)

log = structlog.get_logger(__name__)

_TRANS_NUM = FEED_COLUMNS.index("trans_num")
# Decimal places of a served float: pandas `to_json`'s default (double_precision=10).
FLOAT_DECIMALS = 10
_IS_FRAUD = FEED_COLUMNS.index("is_fraud")
_CURRENT_TIME = FEED_COLUMNS.index("current_time")


class FeedExhaustedError(Exception):
    """Every row has been served and the feed does not loop."""


class LabelsDisabledError(Exception):
    """Labels are sent in the stream itself; there is no delayed-label queue."""


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """Rows for one request as a pandas split document, or how long until the next is due."""

    document: str | None
    rows: int
    wait_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Label:
    """The label of one served transaction, known from `label_time` on (epoch ms)."""

    trans_num: str
    is_fraud: int
    event_time: int
    label_time: int


@dataclass(frozen=True, slots=True)
class LabelPage:
    """Labels with label_time in (since, until]; complete up to `until` unless `more` is set."""

    labels: tuple[Label, ...]
    until: int
    more: bool = False


class TransactionFeed:
    """Serves time-ordered transactions in feed form, optionally on an accelerated timeline."""

    def __init__(
        self,
        records: FeedRecords,
        *,
        speed: float | None = None,
        loop: bool = False,
        label_delay_s: float | None = None,
        label_times: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed is not None and not speed > 0:
            msg = f"speed must be positive, got {speed}"
            raise ValueError(msg)
        if label_delay_s is not None and not label_delay_s >= 0:
            msg = f"label delay must not be negative, got {label_delay_s}"
            raise ValueError(msg)
        if label_times and (label_delay_s is not None or records.label_ms is None):
            msg = (
                "label times need data with a label_time column, and no fixed label delay"
                if label_delay_s is None
                else "give a fixed label delay or the data's label times, not both"
            )
            raise ValueError(msg)
        self._arrivals = _LabelArrivals(records) if label_times else None
        self._records = records
        self._event_ms = records.event_ms
        self._size = len(records)
        self._speed = speed
        self._loop = loop
        self._delay_ms = None if label_delay_s is None else round(label_delay_s * 1000)
        span = int(self._event_ms[-1] - self._event_ms[0])
        mean_gap = max(1, round(span / (self._size - 1))) if self._size > 1 else 1000
        self._lap_ms = span + mean_gap
        self._clock = clock
        self._started = clock()
        self._served = 0
        self._lock = threading.Lock()

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        speed: float | None = None,
        loop: bool = False,
        label_delay_s: float | None = None,
        label_times: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> "TransactionFeed":
        """Build a feed from a Sparkov-shaped frame (readers' output or the simulator's)."""
        return cls(
            prepare_feed_records(frame),
            speed=speed,
            loop=loop,
            label_delay_s=label_delay_s,
            label_times=label_times,
            clock=clock,
        )

    @property
    def size(self) -> int:
        """Rows in one pass over the data."""
        return self._size

    @property
    def served(self) -> int:
        """Rows served so far, over all laps."""
        return self._served

    @property
    def remaining(self) -> int:
        """Rows left before the end of the data (of the current lap when looping)."""
        if self._loop:
            return self._size - self._served % self._size
        return self._size - self._served

    @property
    def labels_delayed(self) -> bool:
        """Whether labels are held back from the stream and served by `labels_since`."""
        return self._delay_ms is not None or self._arrivals is not None

    @property
    def timeline_ms(self) -> int:
        """The feed's current time: the virtual clock under speed, else the last served row's."""
        with self._lock:
            return self._timeline_ms()

    def next_batch(self, n: int) -> FeedBatch:
        """Serve up to `n` next rows that are due; raise FeedExhaustedError at the end."""
        if n < 1:
            msg = f"n must be at least 1, got {n}"
            raise ValueError(msg)
        with self._lock:
            if not self._loop and self._served >= self._size:
                raise FeedExhaustedError
            end = self._served + n
            if self._speed is not None:
                end = min(end, self._count_up_to(self._virtual_ms()))
            if not self._loop:
                end = min(end, self._size)
            if end <= self._served:
                # Only under speed: the next row is not due yet; say in real seconds when it is.
                ahead_ms = max(1, int(self._time_of(self._served)) - self._virtual_ms())
                return FeedBatch(
                    document=None, rows=0, wait_s=ahead_ms / 1000 / self._speed_or_one()
                )
            start, self._served = self._served, end
            if not self._loop and end == self._size:
                log.info("feed_exhausted", served=end)
        return FeedBatch(document=self._document(start, end), rows=end - start)

    def labels_since(self, since_ms: int | None = None, *, limit: int = 10_000) -> LabelPage:
        """Labels of served rows with since < label_time <= the timeline's label horizon."""
        if self._arrivals is not None:
            return self._arrived_since(self._arrivals, since_ms, limit=limit)
        if self._delay_ms is None:
            raise LabelsDisabledError
        delay = self._delay_ms
        with self._lock:
            served = self._served
            horizon = self._timeline_ms()
            if self._loop or served < self._size:
                # A row not served yet may still get a label at or after its own label time.
                horizon = min(horizon, int(self._time_of(served)) + delay - 1)
        lo = 0 if since_ms is None else min(served, self._count_up_to(since_ms - delay))
        hi = min(served, self._count_up_to(horizon - delay))
        until, more = horizon, False
        if hi - lo > limit:
            # Cut after the limit but keep every label sharing the last label time.
            until = int(self._time_of(lo + limit - 1)) + delay
            hi = min(served, self._count_up_to(until - delay))
            more = True
        if since_ms is not None:
            until = max(until, since_ms)
        return LabelPage(labels=self._labels(lo, hi), until=until, more=more)

    def _arrived_since(
        self, arrivals: "_LabelArrivals", since_ms: int | None, *, limit: int
    ) -> LabelPage:
        """Labels at the data's own label times, for served rows, in (since, horizon]."""
        with self._lock:
            served = self._served
            horizon = self._timeline_ms()
            if self._loop or served < self._size:
                # A row not served yet has its label at or after its own event time.
                horizon = min(horizon, int(self._time_of(served)) - 1)
        low = int(self._event_ms[0]) - 1 if since_ms is None else since_ms
        k, label_ms = arrivals.between(
            low, horizon, lap_ms=self._lap_ms if self._loop else None, served=served
        )
        until, more = horizon, False
        if len(k) > limit:
            # Cut after the limit but keep every label sharing the last label time.
            until = int(label_ms[limit - 1])
            keep = int(np.searchsorted(label_ms, until, side="right"))
            k, label_ms = k[:keep], label_ms[:keep]
            more = True
        until = max(until, low)
        reported = arrivals.reported[k % self._size]
        labels = tuple(
            Label(trans_num=str(t), is_fraud=int(r), event_time=int(e), label_time=int(m))
            for t, r, e, m in zip(
                self._trans_nums(k), reported, self._time_of(k), label_ms, strict=True
            )
        )
        return LabelPage(labels=labels, until=until, more=more)

    def _speed_or_one(self) -> float:
        return self._speed if self._speed is not None else 1.0

    def _virtual_ms(self) -> int:
        """The accelerated clock: the first row's time plus speed times the real time elapsed."""
        elapsed_s = self._clock() - self._started
        return int(self._event_ms[0]) + int(elapsed_s * self._speed_or_one() * 1000)

    def _timeline_ms(self) -> int:
        if self._speed is not None:
            return self._virtual_ms()
        return int(self._time_of(max(self._served - 1, 0)))

    def _time_of(self, k: int | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Served time of the k-th row over all laps (epoch ms)."""
        laps, position = np.divmod(k, self._size)
        return np.asarray(self._event_ms[position] + laps * self._lap_ms, dtype=np.int64)

    def _count_up_to(self, time_ms: int) -> int:
        """How many rows (over all laps when looping) have a served time <= time_ms."""
        first = int(self._event_ms[0])
        if time_ms < first:
            return 0
        lap = (time_ms - first) // self._lap_ms if self._loop else 0
        within = int(np.searchsorted(self._event_ms, time_ms - lap * self._lap_ms, side="right"))
        return lap * self._size + within

    def _trans_nums(self, k: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        """Served ids: the data's trans_num, suffixed "-<lap>" from the second lap on."""
        laps, position = np.divmod(k, self._size)
        ids = self._records.columns["trans_num"].take(position)
        if not laps.any():
            return ids
        return np.array(
            [str(t) if lap == 0 else f"{t}-{lap}" for t, lap in zip(ids, laps, strict=True)],
            dtype=object,
        )

    def _document(self, start: int, end: int) -> str:
        """The pandas split document of rows start..end-1 in FEED_COLUMNS order:
        `{"columns": [...], "index": [...], "data": [[...], ...]}`, as
        `DataFrame.to_json(orient="split")` writes it (missing values and NaN as null), written
        with orjson from the columns' values: building a DataFrame per poll cost milliseconds."""
        k = np.arange(start, end, dtype=np.int64)
        position = k % self._size
        columns: list[list[Any]] = [[] for _ in FEED_COLUMNS]
        for i, name in enumerate(SERVED_COLUMNS):
            values = self._records.columns[name].take(position)
            if values.dtype == np.float64:  # to 10 decimal places, as to_json writes floats
                values = np.round(values, FLOAT_DECIMALS)
            columns[i] = values.tolist()
        columns[_TRANS_NUM] = self._trans_nums(k).tolist()
        if self.labels_delayed:
            columns[_IS_FRAUD] = [None] * len(k)
        else:
            labels = self._records.is_fraud[position]
            columns[_IS_FRAUD] = [None if np.isnan(v) else int(v) for v in labels]
        columns[_CURRENT_TIME] = self._time_of(k).tolist()
        rows = list(zip(*columns, strict=True))
        document = {"columns": FEED_COLUMNS, "index": k.tolist(), "data": rows}
        return orjson.dumps(document).decode()

    def _labels(self, lo: int, hi: int) -> tuple[Label, ...]:
        """Known labels of served rows lo..hi-1 (a row without a label in the data has none)."""
        if hi <= lo or self._delay_ms is None:
            return ()
        delay = self._delay_ms
        k = np.arange(lo, hi, dtype=np.int64)
        event = self._time_of(k)
        fraud = self._records.is_fraud[k % self._size]
        return tuple(
            Label(trans_num=str(t), is_fraud=int(f), event_time=int(e), label_time=int(e) + delay)
            for t, f, e in zip(self._trans_nums(k), fraud, event, strict=True)
            if not np.isnan(f)
        )


class _LabelArrivals:
    """The rows that get a label, ordered by label time, to find those due in a window fast."""

    def __init__(self, records: FeedRecords) -> None:
        assert records.label_ms is not None and records.reported is not None  # noqa: S101
        known = np.flatnonzero(records.label_ms != UNKNOWN_TIME)
        order = known[np.argsort(records.label_ms[known], kind="stable")]
        self._rows = order.astype(np.int64)
        self._label_ms = records.label_ms[order]
        self._first_event = int(records.event_ms[0])
        self._size = len(records)
        self._latest_delay = int((records.label_ms[known] - records.event_ms[known]).max(initial=0))
        self.reported = records.reported

    def between(
        self, low: int, high: int, *, lap_ms: int | None, served: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Served rows (numbered over laps) with low < label time <= high, by label time."""
        if high <= low:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        laps = [0]
        if lap_ms is not None:
            first = max(0, (low - self._latest_delay - self._first_event) // lap_ms)
            laps = list(range(first, max(first, (high - self._first_event) // lap_ms) + 1))
        rows, times = [], []
        for lap in laps:
            shift = lap * lap_ms if lap_ms is not None else 0
            lo = int(np.searchsorted(self._label_ms, low - shift, side="right"))
            hi = int(np.searchsorted(self._label_ms, high - shift, side="right"))
            k = self._rows[lo:hi] + lap * self._size
            rows.append(k)
            times.append(self._label_ms[lo:hi] + shift)
        k, label_ms = np.concatenate(rows), np.concatenate(times)
        due = k < served
        k, label_ms = k[due], label_ms[due]
        order = np.lexsort((k, label_ms))
        return k[order], label_ms[order]
