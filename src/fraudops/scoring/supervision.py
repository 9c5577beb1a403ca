"""Supervision of the online feature state: built before scoring, rebuilt when lost.

The state is built from the warehouse's recent history when the store does not have it:
in process, then loaded into the store at once, by one replica while the others wait. A
shared store can lose it at run time (Redis restarted empty): after a state failure, and
every few seconds, the supervisor checks the store's initialised mark and, if it is gone,
rebuilds in the background; scoring raises FeatureStateUnavailableError meanwhile (a 503
the caller retries). The same watch keeps this process's heartbeat and settles claims of
transactions the warehouse never stored (a replica killed mid-batch).
"""

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from datetime import datetime, timedelta

import structlog

from fraudops.features.clock import EventClock
from fraudops.features.online import OnlineFeatureEngine, datetime_ms
from fraudops.features.spec import CARD_WINDOWS, MERCHANT_WINDOWS
from fraudops.features.state import (
    HEARTBEAT_SECONDS,
    FeatureStateStore,
    FeatureStateUnavailableError,
    InMemoryStateStore,
)
from fraudops.scoring.metrics import ServiceMetrics
from fraudops.scoring.serving import ServingModel
from fraudops.storage.base import StoredResult
from fraudops.storage.warehouse import Warehouse

log = structlog.get_logger(__name__)

# How often the state store's initialised mark is checked (one EXISTS on Redis), and how
# often a replica waiting for another's rebuild looks again.
STATE_CHECK_SECONDS = 2.0
REBUILD_POLL_SECONDS = 0.2
# How long a rebuild waits for the warehouse to store what was scored before it.
WRITER_WAIT_SECONDS = 30.0
# A claim unconfirmed this long (of a process still alive) counts as lost: the writer
# stores or fails a transaction well within it.
STALE_CLAIM_SECONDS = 2 * WRITER_WAIT_SECONDS


class StateSupervisor:
    """Keeps the online feature state usable: builds it, watches it, rebuilds it when lost."""

    def __init__(
        self,
        *,
        store: FeatureStateStore,
        warehouse: Warehouse,
        clock: EventClock,
        metrics: ServiceMetrics,
        champion: Callable[[], ServingModel | None],
        last_stored: Callable[[], "Future[StoredResult] | None"],
        stop: threading.Event,
    ) -> None:
        self.store = store
        self.warehouse = warehouse
        self.clock = clock
        self.metrics = metrics
        self._champion = champion  # the champion in service now
        self._last_stored = last_stored  # the latest result handed to the writer
        self._stop = stop
        self.ready = False
        self.reason: str | None = None  # why the online state cannot be used, if it cannot
        # Set when a state call failed: check the store's initialised mark before scoring.
        self._doubt = threading.Event()
        self._rebuilding = threading.Lock()  # held by a background rebuild
        self._watcher: threading.Thread | None = None

    def start_watching(self) -> None:
        """Start the thread that checks the state every few seconds."""
        watcher = threading.Thread(target=self._watch, name="fraudops-state-watch", daemon=True)
        watcher.start()
        self._watcher = watcher  # only once started: `join` may run from another thread

    def join(self, timeout: float) -> None:
        """Wait for the watch to end (after the stop event is set)."""
        if self._watcher is not None:
            self._watcher.join(timeout)

    def doubt(self) -> None:
        """Note that a state call failed: the store is checked before the next scoring."""
        self._doubt.set()

    def require(self) -> None:
        """Raise FeatureStateUnavailableError unless the online state may be used now.

        After a state failure the store's initialised mark is checked first: if it is gone
        (Redis restarted empty) a rebuild starts in the background.
        """
        if self._doubt.is_set() and not self._rebuilding.locked():
            self._check()
        if not self.ready:
            raise FeatureStateUnavailableError(
                self.reason or "the online feature state is not built"
            )

    def prepare(self, champion: ServingModel) -> None:
        """Have the state built for a champion unless it is (or is being) already."""
        if self.ready or self._rebuilding.locked():
            return
        try:
            self._ensure(champion)
        except FeatureStateUnavailableError as error:  # retried by the state watch
            log.warning("the online feature state is unavailable", error=str(error))
            self.reason = f"online feature state unavailable: {error}"
            self._doubt.set()

    def _check(self) -> None:
        """Whether the store still has its state: if not, start rebuilding it.

        Raises FeatureStateUnavailableError if the store cannot be reached.
        """
        initialised = self.store.initialised()
        self._doubt.clear()
        if initialised:
            if not self.ready and not self._rebuilding.locked():
                self.ready = True  # built by another replica meanwhile
                self.reason = None
            return
        champion = self._champion()
        if champion is None or not self._rebuilding.acquire(blocking=False):
            return
        log.warning("the online feature state is gone from the store: rebuilding it")
        self.ready = False
        self.reason = "rebuilding the online feature state: the store lost it"
        threading.Thread(
            target=self._rebuild_in_background,
            args=(champion,),
            name="fraudops-state-rebuild",
            daemon=True,
        ).start()

    def _rebuild_in_background(self, champion: ServingModel) -> None:
        """Rebuild the state (holding `_rebuilding`, taken by the caller)."""
        try:
            self._ensure(champion)
        except Exception as error:  # the store or the warehouse failed: checked again later
            log.exception("rebuilding the online feature state failed")
            self.reason = f"rebuilding the online feature state failed: {error}"
            self._doubt.set()
        finally:
            self._rebuilding.release()

    def _watch(self) -> None:
        """Every few seconds: settle stale claims, and check the store's initialised mark
        (a restarted Redis lost it)."""
        while not self._stop.wait(STATE_CHECK_SECONDS):
            if self._champion() is None or self._rebuilding.locked():
                continue
            try:
                if self.ready:
                    self._settle_stale_claims()
                self._check()
            except FeatureStateUnavailableError as error:
                self._doubt.set()
                log.warning("the online feature state is unavailable", error=str(error))
            except Exception:  # keep watching through any hiccup
                log.exception("checking the online feature state failed")

    def _ensure(self, champion: ServingModel) -> None:
        """Have the state built from history: build it here, or wait for whoever builds it."""
        while not self.store.initialised():
            with self.store.rebuild_lock() as mine:
                if mine:
                    if not self.store.initialised():  # unless another just finished
                        self.reason = "rebuilding the online feature state from the warehouse"
                        self._rebuild(champion)
                    continue
            self.reason = "waiting for another process to rebuild the online feature state"
            if self._stop.wait(REBUILD_POLL_SECONDS):
                return
        self.clock.seed(_epoch_ms(self.warehouse.event_clock()))
        self._settle_claims_at_start()
        if not self.store.initialised():  # settling found the state ahead: build it again
            self._ensure(champion)
            return
        self.ready = True
        self.reason = None

    def _rebuild(self, champion: ServingModel) -> None:
        """Replay the warehouse's recent history into state in process, then load it at once."""
        self._wait_for_writer()
        began = time.perf_counter()
        memory = InMemoryStateStore()
        # Updates only, no feature read: no kernel to wait for on the way to ready.
        engine = OnlineFeatureEngine(champion.bundle.spec, memory, kernel="python")
        latest = self.warehouse.event_clock()
        replayed = 0
        if latest is not None:
            windows = max(*CARD_WINDOWS.values(), *MERCHANT_WINDOWS.values())
            spec = champion.bundle.spec
            lag = max(spec.label_delay_ms, spec.label_lag_ms)  # as the engine's own horizon
            horizon = timedelta(milliseconds=windows + lag)
            for stored in self.warehouse.transactions_since(latest - horizon):
                label = None if stored.label is None else int(stored.label.is_fraud)
                known = None if stored.label is None else datetime_ms(stored.label.label_time)
                engine.update(
                    champion.stored_record(stored.record), label=label, label_time_ms=known
                )
                replayed += 1
        built = time.perf_counter()
        self.store.load(memory.cards, memory.merchants)
        log.info(
            "online feature state rebuilt",
            transactions=replayed,
            cards=len(memory.cards),
            merchants=len(memory.merchants),
            latest=str(latest),
            replay_seconds=round(built - began, 2),
            load_seconds=round(time.perf_counter() - built, 2),
        )

    def _wait_for_writer(self) -> None:
        """Wait until the warehouse has stored what was scored so far (the writer is FIFO)."""
        last = self._last_stored()
        if last is not None:
            wait([last], timeout=WRITER_WAIT_SECONDS)

    def _settle_claims_at_start(self) -> None:
        """Settle the claims left unconfirmed before this process started.

        A process killed a moment ago still looks alive until its heartbeat lapses: with
        claims left, wait that long, then count as stale whatever is still unconfirmed.
        """
        self.store.heartbeat()
        if self.store.stale_claims(older_than_seconds=0.0):
            self._stop.wait(HEARTBEAT_SECONDS)
        self._settle_stale_claims(older_than_seconds=HEARTBEAT_SECONDS)

    def _settle_stale_claims(self, *, older_than_seconds: float = STALE_CLAIM_SECONDS) -> None:
        """Rebuild the state if it holds transactions the warehouse never stored.

        A claim stays unconfirmed when its transaction's commit failed or its process died
        between the state change and the commit (kill -9 mid-batch): the state is then
        ahead of the warehouse, and only a rebuild from the warehouse brings it back.
        """
        self.store.heartbeat()
        stale = self.store.stale_claims(older_than_seconds=older_than_seconds)
        if not stale:
            return
        stored = self.warehouse.known_transactions(stale)
        missing = [trans_num for trans_num in stale if trans_num not in stored]
        self.store.forget_claims([trans_num for trans_num in stale if trans_num in stored])
        if missing:
            log.warning(
                "the online state holds transactions the warehouse does not: rebuilding it",
                transactions=len(missing),
                example=missing[0],
            )
            self.metrics.state_reconciled.inc()
            self.store.invalidate()
            self._doubt.set()


def _epoch_ms(moment: datetime | None) -> int | None:
    """Epoch milliseconds of a naive UTC time."""
    if moment is None:
        return None
    return (moment - datetime(1970, 1, 1)) // timedelta(milliseconds=1)
