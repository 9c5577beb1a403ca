"""The journal drained into the warehouse by a process of its own.

Storing a batch in the warehouse is mostly Python work: building the rows, the driver
adapting their values, the ORM's bookkeeping. In the serving process that work holds the
GIL that the event loop and the scoring thread need. Moved here, it runs on another core:
on one machine, benchmarks/bench_serve.py's embedded server answered 1,200 to 1,350
requests/s with the drain thread and 1,830 to 1,944 with this process.

So the serving process hands each batch's journal records, the bytes it has just made
durable, to a drain process over a pipe, and waits (without the GIL) for the answer: which
of them were new to the warehouse. The process opens the same warehouse and stores them as
the drain thread would. It exits when its pipe closes, so it never outlives the service,
even one killed with SIGKILL; what it had not stored is still in the journal and replayed
by the next service to start (storing is idempotent by trans_num).
"""

import multiprocessing
import multiprocessing.connection
import signal
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess

import orjson
import structlog

from fraudops.config import Settings
from fraudops.logs import configure_logging
from fraudops.storage.base import TransactionStore
from fraudops.storage.journal import decode_entry, framed, store_entries, unframed

log = structlog.get_logger(__name__)

# How long closing waits for the process to finish its batch and exit before killing it.
CLOSE_SECONDS = 10.0
# After a process died before storing anything, the next waits this long, doubled each time
# up to the most (a process that cannot start would otherwise be started again every
# second, each start costing more than a second of CPU).
FIRST_RESTART_DELAY_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 30.0

WarehouseOpener = Callable[[], TransactionStore]


class DrainError(RuntimeError):
    """The drain process could not store a batch: the warehouse failed it, or it died."""


def drain_records(store: TransactionStore, data: bytes) -> list[bool]:
    """Store framed journal records in one warehouse transaction; which ones were new."""
    entries = [decode_entry(record) for record in unframed(data, source="drain")]
    return [result.created for result in store_entries(store, entries)]


def run_drain(
    open_warehouse: WarehouseOpener,
    connection: multiprocessing.connection.Connection,
    settings: Settings,
) -> None:
    """The drain process: store each batch it is sent and answer, until its pipe closes.

    Ctrl-C in a terminal and a supervisor's SIGTERM reach the whole process group: the
    service then stops and closes the pipe, and this process must finish the batches the
    service still sends it first, so it ignores both.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(settings)  # as the service logs: level, format, stderr
    store = open_warehouse()
    while True:
        try:
            data = connection.recv_bytes()
        except (EOFError, OSError):  # the service is gone or closed the pipe
            return
        try:
            answer: dict[str, object] = {"created": drain_records(store, data)}
        except Exception as error:  # the service logs it and sends the batch again
            answer = {"error": f"{type(error).__name__}: {error}"}
        try:
            connection.send_bytes(orjson.dumps(answer))
        except OSError:
            return


class DrainProcess:
    """A process of its own that stores journal records in the warehouse, batch by batch.

    Started on first use, and again after it died: a batch it failed or never answered
    raises DrainError, and the caller sends it again. One that died before storing anything
    is started again only after a delay, doubled each time.
    """

    def __init__(self, open_warehouse: WarehouseOpener, *, settings: Settings) -> None:
        self._open_warehouse = open_warehouse
        self._settings = settings
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded process
        self._process: BaseProcess | None = None
        self._connection: multiprocessing.connection.Connection | None = None
        self._lock = threading.Lock()  # one batch at a time on the pipe
        self._stored_since_start = False
        self._restart_delay = 0.0
        self._next_start = 0.0  # time.monotonic() from which a new process may start

    @property
    def pid(self) -> int | None:
        """The running process's id, if one runs."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def store(self, records: Sequence[bytes]) -> list[bool]:
        """Store journal records (as `encode_entry` made them); which were new to the warehouse."""
        with self._lock:
            connection = self._connected()
            try:
                connection.send_bytes(framed(records))
                answer = orjson.loads(connection.recv_bytes())
            except (EOFError, OSError) as error:
                self._stop_process()
                msg = f"the drain process stopped: {error or type(error).__name__}"
                raise DrainError(msg) from error
            if "error" in answer:
                raise DrainError(answer["error"])
            created: list[bool] = answer["created"]
            if len(created) != len(records):
                self._stop_process()
                msg = f"the drain process answered {len(created)} of {len(records)} records"
                raise DrainError(msg)
            self._stored_since_start = True
            return created

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Close the pipe: the process finishes its batch and exits (killed if it does not)."""
        with self._lock:
            self._stop_process(timeout)

    def _connected(self) -> multiprocessing.connection.Connection:
        """The pipe to a live drain process, starting one if none runs."""
        if self._connection is not None and self._process is not None and self._process.is_alive():
            return self._connection
        self._stop_process()
        now = time.monotonic()
        if now < self._next_start:
            msg = f"the drain process died; the next starts in {self._next_start - now:.1f} s"
            raise DrainError(msg)
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=run_drain,
            args=(self._open_warehouse, theirs, self._settings),
            name="fraudops-drain",
            daemon=True,
        )
        process.start()
        theirs.close()  # the process holds its end: ours sees EOF once it exits
        self._process, self._connection = process, ours
        self._stored_since_start = False
        log.info("drain process started", pid=process.pid)
        return ours

    def _stop_process(self, timeout: float = 0.0) -> None:
        """Close the pipe and reap the process (killing it if it does not exit in time)."""
        connection, process = self._connection, self._process
        self._connection = self._process = None
        if connection is not None:
            connection.close()
        if process is None:
            return
        if self._stored_since_start:
            self._restart_delay = 0.0
        else:
            self._restart_delay = min(
                max(2 * self._restart_delay, FIRST_RESTART_DELAY_SECONDS),
                MAX_RESTART_DELAY_SECONDS,
            )
        self._next_start = time.monotonic() + self._restart_delay
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
        process.close()
