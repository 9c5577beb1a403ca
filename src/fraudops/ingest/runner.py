"""The ingester: a source, a spool and a sink, with retries until every item is stored.

A reader thread moves items from the source into the spool (and stops reading while the
spool holds `max_spooled` items); the sending loop takes batches from the spool,
validates them, hands them to the sink, retries with backoff while the sink is down, and
only then acknowledges them to the source and the spool. The warehouse stores each
trans_num once, so an item sent twice (after a crash, a timeout, a restart) is stored once:
at-least-once delivery with an exactly-once effect.
"""

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import ValidationError

from fraudops.data.profile_schema import TransactionSchema, transaction_schema
from fraudops.data.profiles import SPARKOV
from fraudops.data.schema import CanonicalTransaction
from fraudops.ingest.backoff import Backoff
from fraudops.ingest.sinks import (
    ItemsRefusedError,
    Pending,
    Sink,
    SinkUnavailableError,
    label_record,
)
from fraudops.ingest.sources import LABEL, Source, SourceError
from fraudops.ingest.spool import Item, Spool
from fraudops.storage.base import LabelRecord

log = structlog.get_logger(__name__)

IDLE_SECONDS = 0.05  # pause after a read that found nothing

_T = TypeVar("_T")
_HALTED: Any = object()  # what a retry loop returns when the ingester halted meanwhile

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True, kw_only=True)
class IngestOptions:
    """How the ingester batches, buffers, retries and reports."""

    batch_size: int = 500
    linger_seconds: float = 0.05  # wait this long for a batch to fill before sending it
    max_spooled: int = 1_000_000  # stop reading from the source beyond this many waiting
    # A source that redelivers (file, stream) keeps what is not read yet: read only this far
    # ahead of delivery, so the spool holds seconds of work, not the whole backlog.
    read_ahead: int = 5_000
    drain_seconds: float = 30.0  # on shutdown, keep delivering this long
    progress_seconds: float = 5.0
    retry_base_seconds: float = 0.1
    retry_cap_seconds: float = 10.0
    stop_when_finished: bool = True  # end once the source is finished and all is stored
    # Batches handed to the sink and not yet stored: scoring the next batch while the last
    # is being written. Scoring order stays the reading order (one thread submits).
    in_flight: int = 3


class IngestMetrics:
    """The ingester's Prometheus metrics (its own registry; served by --metrics-port)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.read = Counter(
            "fraudops_ingest_read", "Items read from the source.", ["kind"], registry=r
        )
        self.stored = Counter(
            "fraudops_ingest_stored",
            "Transactions the sink stored, by whether they were new or sent again.",
            ["outcome"],
            registry=r,
        )
        self.labels = Counter("fraudops_ingest_labels", "Labels stored.", registry=r)
        self.invalid = Counter(
            "fraudops_ingest_invalid",
            "Items refused by validation (dead-lettered).",
            ["kind"],
            registry=r,
        )
        self.retries = Counter(
            "fraudops_ingest_retries",
            "Retries after a failure, by where it failed.",
            ["stage"],
            registry=r,
        )
        self.spooled = Gauge(
            "fraudops_ingest_spooled", "Items waiting in the spool.", ["where"], registry=r
        )
        self.lag = Gauge(
            "fraudops_ingest_lag_seconds",
            "Age of the oldest item read but not yet stored.",
            registry=r,
        )
        self.source_lag = Gauge(
            "fraudops_ingest_source_lag", "The source's own lag measures.", ["measure"], registry=r
        )
        self.batch_seconds = Histogram(
            "fraudops_ingest_batch_seconds",
            "Time for the sink to score and store one batch (successful attempts).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "fraudops_ingest_delivery_seconds",
            "From reading a batch's oldest item to its being stored.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # Known label values exported at 0 from the start, so that rates and alerts on them
        # have a series before the first retry or refusal.
        for kind in ("transaction", "label"):
            self.read.labels(kind=kind)
            self.invalid.labels(kind=kind)
        for outcome in ("new", "duplicate"):
            self.stored.labels(outcome=outcome)
        for stage in ("source", "sink"):
            self.retries.labels(stage=stage)


@dataclass
class IngestReport:
    """What a run did."""

    read: int = 0
    stored_new: int = 0
    stored_duplicates: int = 0
    labels: int = 0
    invalid: int = 0
    retries: int = 0
    batches: int = 0
    seconds: float = 0.0
    left_in_spool: int = 0
    batch_seconds: list[float] = field(default_factory=list)
    delivery_seconds: list[float] = field(default_factory=list)
    # (seconds since the start, transactions stored so far) after every stored batch
    timeline: list[tuple[float, int]] = field(default_factory=list)

    @property
    def stored(self) -> int:
        """Transactions the sink holds (new and sent again)."""
        return self.stored_new + self.stored_duplicates


@dataclass
class _InFlight:
    """A batch handed to the sink: what it held, and the sink's promise to store it."""

    batch: list[Item]
    transactions: list[tuple[CanonicalTransaction, Item]]
    labels: list[LabelRecord]
    invalid: list[tuple[Item, str]]
    submitted: float
    pending: Pending | None = None


class Ingester:
    """Moves items from a source through a spool to a sink until stopped or finished."""

    def __init__(
        self,
        source: Source,
        sink: Sink,
        *,
        spool: Spool,
        dead_letter: Path,
        options: IngestOptions | None = None,
        metrics: IngestMetrics | None = None,
        sleep: Callable[[threading.Event, float], bool] | None = None,
        schema: TransactionSchema | None = None,
    ) -> None:
        self.source = source
        # How transactions read: the request schema of the profile the champion serves.
        self.schema = schema if schema is not None else transaction_schema(SPARKOV)
        self.sink = sink
        self.spool = spool
        self.dead_letter = dead_letter
        self.options = options or IngestOptions()
        self.metrics = metrics or IngestMetrics()
        self.report = IngestReport()
        self._sleep = sleep or (lambda event, seconds: event.wait(seconds))
        self._stop = threading.Event()  # stop reading; drain, then end
        self._halt = threading.Event()  # stop delivering too (drain time is over)
        self._reader_done = threading.Event()
        self._reader_error: BaseException | None = None
        self._read_times: deque[tuple[int, float]] = deque()  # (last seq of a put, when)
        self._read_lock = threading.Lock()
        self._flight: deque[_InFlight] = deque()
        self._began = time.monotonic()

    def stop(self) -> None:
        """Stop reading; deliver what is spooled for up to drain_seconds, then end."""
        with self._read_lock:
            if self._stop.is_set():
                return
            self._stop.set()
        timer = threading.Timer(self.options.drain_seconds, self._halt.set)
        timer.daemon = True
        timer.start()

    # --- running -----------------------------------------------------------------------------

    def run(self) -> IngestReport:
        """Ingest until the source is finished (and all stored) or `stop()`; the report."""
        began = self._began = time.monotonic()
        reader = threading.Thread(target=self._read_loop, name="fraudops-ingest-read", daemon=True)
        reader.start()
        next_progress = began + self.options.progress_seconds
        try:
            while not self._halt.is_set():
                batch = self._take_batch() if len(self._flight) < self.options.in_flight else []
                if batch:
                    self._submit(batch)
                elif self._flight:
                    self._complete_oldest()
                elif self._reader_done.is_set() and len(self.spool) == 0:
                    break
                if time.monotonic() >= next_progress:
                    self._progress(began)
                    next_progress = time.monotonic() + self.options.progress_seconds
        finally:
            self._stop.set()
            self._halt.set()
            # Batches not known to be stored go back to the spool, oldest first.
            self.spool.requeue([item for entry in self._flight for item in entry.batch])
            self._flight.clear()
            reader.join(timeout=10)
            self.report.seconds = time.monotonic() - began
            self.report.left_in_spool = len(self.spool)
            self._progress(began, final=True)
        if self._reader_error is not None:
            raise self._reader_error
        return self.report

    def _read_loop(self) -> None:
        """Source to spool, pausing while the spool is full, backing off while the source fails."""
        backoff = self._backoff()
        try:
            while not self._stop.is_set():
                if self.source.finished and self.options.stop_when_finished:
                    break
                limit = (
                    self.options.read_ahead if self.source.redelivers else self.options.max_spooled
                )
                if len(self.spool) >= limit:
                    self._sleep(self._stop, 0.05)
                    continue
                try:
                    items = self.source.read(self.options.batch_size)
                except SourceError as error:
                    self.metrics.retries.labels(stage="source").inc()
                    self.report.retries += 1
                    delay = backoff.next_delay()
                    log.warning("source unavailable", error=str(error), retry_in=round(delay, 2))
                    self._sleep(self._stop, delay)
                    continue
                backoff.reset()
                if not items:
                    # Nothing due: a source may answer at once (a finished feed still polled
                    # for labels), and spinning here would hold the GIL from everyone else.
                    self._sleep(self._stop, IDLE_SECONDS)
                    continue
                numbered = self.spool.put(items)
                with self._read_lock:
                    self._read_times.append((numbered[-1].seq, time.monotonic()))
                for kind in {item.kind for item in items}:
                    self.metrics.read.labels(kind=kind).inc(sum(1 for i in items if i.kind == kind))
                self.report.read += len(items)
                if len(items) < self.options.batch_size:
                    # The source has caught up (a partial page). Asking again at once fetches a
                    # row or two per request, each spooled with a write of its own: a
                    # request per transaction from a paced feed. The batch waits for
                    # linger_seconds to fill anyway, so read at that pace.
                    self._sleep(self._stop, self.options.linger_seconds)
        except BaseException as error:  # surfaced by run(); the spool keeps what was read
            self._reader_error = error
            log.exception("the source reader failed")
            self.stop()
        finally:
            self._reader_done.set()

    def _take_batch(self) -> list[Item]:
        """Up to batch_size items, waiting up to linger_seconds for the batch to fill."""
        size = self.options.batch_size
        batch = self.spool.take(size, timeout=0.2)
        deadline = time.monotonic() + self.options.linger_seconds
        while batch and len(batch) < size and not self._reader_done.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            batch += self.spool.take(size - len(batch), timeout=remaining)
        return batch

    # --- delivering --------------------------------------------------------------------------

    def _submit(self, batch: list[Item]) -> None:
        """Validate a batch and hand it to the sink (retrying while the sink refuses it)."""
        transactions, labels, invalid = validated(batch, self.schema)
        entry = _InFlight(batch, transactions, labels, invalid, time.monotonic())
        if entry.transactions:
            pending = self._retrying(partial(self._hand_over, entry))
            if pending is _HALTED:
                self.spool.requeue(batch)
                return
            entry.pending = pending
        self._flight.append(entry)

    def _hand_over(self, entry: "_InFlight") -> Pending | None:
        """Submit a batch's transactions; those the sink refuses are set aside as invalid
        (dead letters) and the rest sent again. None if none is left."""
        while entry.transactions:
            try:
                return self.sink.submit([t for t, _ in entry.transactions])
            except ItemsRefusedError as error:
                refused = error.refused
                entry.invalid += [
                    (item, f"refused by the scoring service: {refused[index]}")
                    for index, (_, item) in enumerate(entry.transactions)
                    if index in refused
                ]
                entry.transactions = [
                    pair for index, pair in enumerate(entry.transactions) if index not in refused
                ]
        return None

    def _complete_oldest(self) -> None:
        """Wait until the oldest batch in flight is stored (resending it after a failure),
        store its labels, acknowledge it: acknowledgements keep the reading order."""
        entry = self._flight[0]
        backoff = self._backoff()
        while entry.pending is not None:
            try:
                stored = entry.pending.result()
            except SinkUnavailableError as error:
                if self._wait_after(error, backoff):
                    return  # halted: run() gives the batches in flight back to the spool
                pending = self._retrying(partial(self._hand_over, entry))
                if pending is _HALTED:
                    return
                entry.pending = pending
                continue
            took = time.monotonic() - entry.submitted
            self.report.batch_seconds.append(took)
            self.metrics.batch_seconds.observe(took)
            new = sum(1 for s in stored if not s.duplicate)
            self._count_stored(new, len(stored) - new)
            entry.pending = None
        if entry.labels:
            labels = entry.labels
            if self._retrying(lambda: self.sink.labels(labels)) is _HALTED:
                return
            self.report.labels += len(labels)
            self.metrics.labels.inc(len(labels))
            entry.labels = []
        self._flight.popleft()
        if entry.invalid:
            self._dead_letter(entry.invalid)
        self.source.ack(entry.batch)
        self.spool.ack(entry.batch)
        self.report.batches += 1
        self.report.timeline.append((time.monotonic() - self._began, self.report.stored))
        self._note_delivered(entry.batch[-1].seq)

    def _retrying(self, attempt: Callable[[], _T]) -> _T | None:
        """attempt() until the sink takes it; None (or _HALTED for None results) if halted."""
        backoff = self._backoff()
        while True:
            try:
                return attempt()
            except SinkUnavailableError as error:
                if self._wait_after(error, backoff):
                    halted: _T = _HALTED
                    return halted

    def _wait_after(self, error: SinkUnavailableError, backoff: Backoff) -> bool:
        """Count a retry and wait before it; True if halted meanwhile."""
        self.metrics.retries.labels(stage="sink").inc()
        self.report.retries += 1
        delay = backoff.next_delay(error.retry_after)
        log.warning("sink unavailable", error=str(error)[:300], retry_in=round(delay, 2))
        return self._sleep(self._halt, delay) or self._halt.is_set()

    def _backoff(self) -> Backoff:
        return Backoff(base=self.options.retry_base_seconds, cap=self.options.retry_cap_seconds)

    def _dead_letter(self, invalid: Sequence[tuple[Item, str]]) -> None:
        """Append refused items with their reasons to the dead-letter file (JSON lines)."""
        self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
        with self.dead_letter.open("a", encoding="utf-8") as out:
            for item, reason in invalid:
                entry: dict[str, Any] = {
                    "kind": item.kind,
                    "position": item.position,
                    "error": reason,
                    "data": item.data,
                }
                out.write(json.dumps(entry, default=str) + "\n")
                self.metrics.invalid.labels(kind=item.kind).inc()
        self.report.invalid += len(invalid)
        log.warning("items refused by validation", count=len(invalid), file=str(self.dead_letter))

    def _count_stored(self, new: int, duplicates: int) -> None:
        self.report.stored_new += new
        self.report.stored_duplicates += duplicates
        if new:
            self.metrics.stored.labels(outcome="new").inc(new)
        if duplicates:
            self.metrics.stored.labels(outcome="duplicate").inc(duplicates)

    def _note_delivered(self, seq: int) -> None:
        """Drop read times up to `seq`; record how long the batch's oldest item waited."""
        oldest = None
        with self._read_lock:
            while self._read_times and self._read_times[0][0] <= seq:
                _, when = self._read_times.popleft()
                oldest = when if oldest is None else oldest
        if oldest is not None:
            waited = time.monotonic() - oldest
            self.report.delivery_seconds.append(waited)
            self.metrics.delivery_seconds.observe(waited)

    # --- reporting ---------------------------------------------------------------------------

    def _progress(self, began: float, *, final: bool = False) -> None:
        """Update the gauges and log a progress line."""
        memory, disk = self.spool.in_memory(), self.spool.on_disk()
        self.metrics.spooled.labels(where="memory").set(memory)
        self.metrics.spooled.labels(where="disk").set(disk)
        with self._read_lock:
            lag = time.monotonic() - self._read_times[0][1] if self._read_times else 0.0
        self.metrics.lag.set(lag)
        source_lag = self.source.lag()
        for measure, value in source_lag.items():
            self.metrics.source_lag.labels(measure=measure).set(value)
        elapsed = max(time.monotonic() - began, 1e-9)
        r = self.report
        log.info(
            "ingest finished" if final else "ingest progress",
            source=self.source.name,
            sink=self.sink.name,
            read=r.read,
            stored=r.stored,
            duplicates=r.stored_duplicates,
            labels=r.labels,
            invalid=r.invalid,
            retries=r.retries,
            per_second=round(r.stored / elapsed, 1),
            spooled_memory=memory,
            spooled_disk=disk,
            lag_seconds=round(lag, 3),
            **{f"source_{k}": round(v, 3) for k, v in source_lag.items()},
        )


def validated(
    batch: Sequence[Item], schema: TransactionSchema
) -> tuple[list[tuple[CanonicalTransaction, Item]], list[LabelRecord], list[tuple[Item, str]]]:
    """A batch's valid transactions (with their items) and labels, and the items refused, why."""
    transactions: list[tuple[CanonicalTransaction, Item]] = []
    labels: list[LabelRecord] = []
    invalid: list[tuple[Item, str]] = []
    for item in batch:
        try:
            if item.kind == LABEL:
                labels.append(label_record(item.data))
            else:
                transactions.append((schema.one.validate_python(item.data), item))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(record)'}: {e['msg']}" for e in error.errors()
            )
            invalid.append((item, problems))
        except (KeyError, TypeError, ValueError) as error:
            invalid.append((item, f"{type(error).__name__}: {error}"))
    return transactions, labels, invalid
