"""The scoring service without HTTP: online features, champion score, storage, shadow, reload.

`score` runs the fast path in the caller's thread (online features, champion probability,
reasons, decision) and returns a future that resolves once the result is durably stored;
the HTTP routes, the stream ingester and tests all drive this one object.

Models in service are one immutable `ServingModels` value: a request reads it once and
finishes on what it read, and a reload replaces it with a single assignment, so a swap
never mixes two versions within one request.

The online feature state is built from the warehouse's recent history when the store does
not have it: in process, then loaded into the store at once, by one replica while the
others wait. A shared store can lose it at run time (Redis restarted empty): after a state
failure, and every few seconds, the service checks the store's initialised mark and, if it
is gone, rebuilds in the background; scoring raises FeatureStateUnavailableError meanwhile
(a 503 the caller retries).
"""

import dataclasses
import gc
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import structlog

from fraudops.config import Settings
from fraudops.data.personal import PersonalData, ProtectedTransaction
from fraudops.data.schema import CanonicalTransaction
from fraudops.features.clock import EventClock
from fraudops.features.formulas import FloatArray
from fraudops.features.online import EVENT_TIME_MS, OnlineFeatureEngine
from fraudops.features.spec import CARD_WINDOWS, MERCHANT_WINDOWS
from fraudops.features.state import (
    HEARTBEAT_SECONDS,
    Claim,
    ClaimedError,
    FeatureStateStore,
    FeatureStateUnavailableError,
    InMemoryStateStore,
)
from fraudops.registry.base import CHALLENGER, CHAMPION, ModelNotFoundError, ModelRegistry
from fraudops.scoring.admission import Problem, TransactionsRefusedError, admit
from fraudops.scoring.metrics import ServiceMetrics
from fraudops.scoring.model import Scored
from fraudops.scoring.serving import (
    ModelRefusedError,
    ServingModel,
    canary_check,
    load_serving_model,
)
from fraudops.scoring.writer import GroupCommitWriter
from fraudops.storage.base import (
    LabelOutcome,
    LabelRecord,
    ScoredTransaction,
    ScoreRecord,
    StoredResult,
    StoredTransaction,
)
from fraudops.storage.warehouse import Warehouse

log = structlog.get_logger(__name__)

RECENT_CANARY = 256
# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
GIL_SWITCH_SECONDS = 0.001
SHADOW_QUEUE = 10_000
# How often the state store's initialised mark is checked (one EXISTS on Redis), and how
# often a replica waiting for another's rebuild looks again.
STATE_CHECK_SECONDS = 2.0
REBUILD_POLL_SECONDS = 0.2
# How long a rebuild waits for the warehouse to store what was scored before it.
WRITER_WAIT_SECONDS = 30.0
# A claim unconfirmed this long (of a process still alive) counts as lost: the writer
# stores or fails a transaction well within it.
STALE_CLAIM_SECONDS = 2 * WRITER_WAIT_SECONDS


class NoModelError(RuntimeError):
    """No champion is in service yet (none registered, or none could be loaded)."""


@dataclass(frozen=True)
class ServingModels:
    """The champion and the challenger in service; replaced whole on every swap."""

    champion: ServingModel | None = None
    challenger: ServingModel | None = None


@dataclass(frozen=True, kw_only=True)
class RoleReload:
    """What a reload did to one role."""

    outcome: str  # swapped, unchanged, removed, rejected, failed, absent
    version: int | None
    previous: int | None
    detail: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReloadReport:
    """What a reload did to the champion and the challenger."""

    champion: RoleReload
    challenger: RoleReload

    @property
    def changed(self) -> bool:
        """Whether any model in service changed."""
        return "swapped" in (self.champion.outcome, self.challenger.outcome) or (
            self.challenger.outcome == "removed"
        )


@dataclass(frozen=True)
class _ShadowJob:
    """A transaction for the challenger, with the features it reads (taken before update)."""

    transaction: CanonicalTransaction
    features: FloatArray
    challenger: ServingModel
    stored: "Future[StoredResult]"


@dataclass(frozen=True)
class _Prepared:
    """A transaction with its features, read before the champion scores it."""

    item: ProtectedTransaction
    record: dict[str, Any]
    features: FloatArray
    shadow_features: FloatArray | None
    feature_seconds: float
    index: int  # in the request
    repeat: bool = False  # of a transaction in flight: no state change, no label


@dataclass
class _Readiness:
    state_ready: bool = False
    reason: str | None = "starting"
    state_reason: str | None = None  # why the online state cannot be used, if it cannot
    started_at: float = field(default_factory=time.monotonic)


class ScoringService:
    """Scores canonical transactions with the champion, stores them, shadows the challenger."""

    def __init__(
        self,
        *,
        settings: Settings,
        warehouse: Warehouse,
        registry: ModelRegistry,
        store: FeatureStateStore,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self.registry = registry
        self.store = store
        self.metrics = metrics if metrics is not None else ServiceMetrics()
        # "Now" in event time, shared by the engines of every model in service.
        self.clock = EventClock()
        self.models = ServingModels()
        self._writer = GroupCommitWriter(warehouse, on_commit=self._note_commit)
        self._shadow_jobs: queue.Queue[_ShadowJob | None] = queue.Queue(SHADOW_QUEUE)
        self._shadow_thread = threading.Thread(
            target=self._shadow_loop, name="fraudops-shadow", daemon=True
        )
        self._reload_lock = threading.Lock()
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_CANARY)
        self._readiness = _Readiness()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._state_watcher: threading.Thread | None = None
        # Set when a state call failed: check the store's initialised mark before scoring.
        self._state_doubt = threading.Event()
        self._state_rebuilding = threading.Lock()  # held by a background rebuild
        self._last_stored: Future[StoredResult] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, *, block: bool = True) -> None:
        """Migrate the warehouse, start the threads, then load the models and rebuild state.

        With block=False the loading goes on in a thread (readiness says so meanwhile), so
        a server answers its health checks during a long state rebuild.
        """
        self.warehouse.migrate()
        # The writer thread gives up the GIL for every database call and must wait for it
        # back while the scoring thread computes: at Python's default 5 ms switch interval
        # that wait, not the database, limited how fast the warehouse kept up under load.
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        self._writer.start()
        self._shadow_thread.start()
        if block:
            self._load_initial()
        else:
            threading.Thread(
                target=self._load_initial, name="fraudops-startup", daemon=True
            ).start()

    def _load_initial(self) -> None:
        """Load the models in service, rebuild the state, then settle the heap."""
        try:
            report = self.reload()
        except Exception as error:  # surfaced through readiness, not a dead thread
            log.exception("loading the models failed")
            self._readiness.reason = f"loading the models failed: {error}"
            return
        if self.models.champion is None:
            self._readiness.reason = f"no champion in service ({report.champion.detail})"
        if self.settings.model_watch_seconds > 0 and not self._stop.is_set():
            self._watcher = threading.Thread(
                target=self._watch_aliases, name="fraudops-model-watch", daemon=True
            )
            self._watcher.start()
        if not self._stop.is_set():
            self._state_watcher = threading.Thread(
                target=self._watch_state, name="fraudops-state-watch", daemon=True
            )
            self._state_watcher.start()
        # Everything loaded so far lives as long as the service: keep it out of the
        # collector's way, so no request pays for a full collection of it.
        gc.collect()
        gc.freeze()

    def stop(self) -> None:
        """Store everything accepted, finish the shadow work, stop the threads."""
        self._stop.set()
        self._writer.close()
        self._shadow_jobs.put(None)
        if self._shadow_thread.is_alive():
            self._shadow_thread.join(30)
        for watcher in (self._watcher, self._state_watcher):
            if watcher is not None:
                watcher.join(5)
        self.warehouse.dispose()
        self.store.close()

    @property
    def personal(self) -> PersonalData:
        """The keys protecting personal data (the warehouse's, checked against its card ids)."""
        return self.warehouse.personal

    @property
    def blocking(self) -> bool:
        """Whether scoring waits on the network (PostgreSQL, Redis): keep it off event loops."""
        return self.warehouse.dialect != "sqlite" or not isinstance(self.store, InMemoryStateStore)

    def readiness(self) -> str | None:
        """None when ready to score, else why not."""
        if not self._writer.alive:
            return "the warehouse writer is not running"
        return self._readiness.state_reason or self._readiness.reason

    # --- scoring -----------------------------------------------------------------------------

    def score(self, transaction: CanonicalTransaction) -> "Future[StoredResult]":
        """Score one transaction now; the future resolves when the result is stored.

        Its result is what is stored: this score, or (created=False) the one stored before.
        """
        return self.score_many([transaction])[0]

    def score_many(
        self, transactions: Sequence[CanonicalTransaction]
    ) -> "list[Future[StoredResult]]":
        """Score several transactions in order; one future each.

        Features are read one transaction at a time (each sees the state its predecessors
        left); the champion then scores them all in one vectorised pass, equal to scoring
        each alone. If the state fails part-way, those already read are still scored and
        stored before the error is raised.
        """
        models = self.models  # read once: this request finishes on these models
        champion = models.champion
        if champion is None:
            raise NoModelError(self._readiness.reason or "no champion in service")
        self._require_state()
        admitted = admit(
            transactions,
            personal=self.personal,
            now=datetime.now(UTC).replace(tzinfo=None),
            max_ahead_seconds=self.settings.max_event_ahead_seconds,
            known=self.warehouse.known_transactions,
        )
        challenger = models.challenger if self.settings.shadow else None
        prepared: list[_Prepared] = []
        conflicts: list[Problem] = []
        try:
            for index, item in admitted.new:
                try:
                    prepared.append(self._features(item, champion, challenger, index=index))
                except ClaimedError as claimed:  # another request has just sent it
                    if claimed.fingerprint != item.fingerprint:
                        conflicts.append(_claimed_conflict(item, index=index))
                        continue
                    prepared.append(
                        self._features(item, champion, challenger, index=index, repeat=True)
                    )
        except FeatureStateUnavailableError:
            self._state_doubt.set()
            self._score_and_store(prepared, champion, challenger)
            raise
        stored = self._score_and_store(prepared, champion, challenger)
        if conflicts:  # those scored are stored; the caller learns which were refused
            raise TransactionsRefusedError(conflicts, conflict=True)
        futures: dict[int, Future[StoredResult]] = {
            item.index: future for item, future in zip(prepared, stored, strict=True)
        }
        for index, known in admitted.repeats_stored.items():
            futures[index] = _resolved(known.result)
        for index, earlier in admitted.repeats_in_request.items():
            futures[index] = _as_repeat(futures[earlier])
        return [futures[index] for index in range(len(transactions))]

    def _features(
        self,
        item: ProtectedTransaction,
        champion: ServingModel,
        challenger: ServingModel | None,
        *,
        index: int,
        repeat: bool = False,
    ) -> "_Prepared":
        """One transaction's features, read and added to the online state atomically, its
        trans_num claimed with it; a repeat of one in flight only reads them."""
        start = time.perf_counter()
        transaction = item.transaction
        record = champion.record(transaction)
        shadow_features = None
        if challenger is not None and not challenger.shares_features_with(champion):
            # A challenger reading other features gets its own, read before the update.
            shadow_features = challenger.engine.features(challenger.record(transaction))
        state_start = time.perf_counter()
        if repeat:
            features = champion.engine.features(record)
        else:
            features = champion.engine.features_then_update(
                record,
                label=transaction.is_fraud,
                claim=Claim(item.trans_num, item.fingerprint),
            )
            self._count_if_late(record)
        done = time.perf_counter()
        self.metrics.feature_state.observe(done - state_start)
        return _Prepared(
            item, record, features, shadow_features, done - start, index=index, repeat=repeat
        )

    def _count_if_late(self, record: dict[str, Any]) -> None:
        """Count a transaction much older than the latest event times seen (accepted)."""
        now = self.clock.now_ms
        late_ms = self.settings.late_event_seconds * 1000
        if now is not None and record[EVENT_TIME_MS] < now - late_ms:
            self.metrics.late.inc()

    def _score_and_store(
        self,
        prepared: Sequence["_Prepared"],
        champion: ServingModel,
        challenger: ServingModel | None,
    ) -> "list[Future[StoredResult]]":
        """Score prepared transactions with the champion together, then store each."""
        if not prepared:
            return []
        model_start = time.perf_counter()
        top = self.settings.reasons
        if len(prepared) == 1:
            scored = [champion.model.score(prepared[0].features, top=top)]
        else:
            matrix = np.vstack([item.features for item in prepared])
            scored = champion.model.score_batch(matrix, top=top)
        model_share = (time.perf_counter() - model_start) / len(prepared)
        futures = []
        for item, verdict in zip(prepared, scored, strict=True):
            self.metrics.model_seconds.observe(model_share)
            futures.append(self._store(item, verdict, champion, challenger, model_share))
        return futures

    def _store(
        self,
        item: "_Prepared",
        scored: Scored,
        champion: ServingModel,
        challenger: ServingModel | None,
        model_seconds: float,
    ) -> "Future[StoredResult]":
        """Hand one scored transaction to the writer (and its challenger to the shadow)."""
        transaction = item.item.transaction
        if not champion.knows_category(transaction):
            self.metrics.unknown_categories.inc()
        probability = scored.probability
        score = ScoreRecord(
            model_name=champion.name,
            model_version=str(champion.version),
            fraud_probability=probability,
            decision=champion.decide(probability),
            scored_at=datetime.now(UTC),
            reasons=scored.reasons,
            features=dict(zip(champion.bundle.feature_names, item.features.tolist(), strict=True)),
            latency_ms=(item.feature_seconds + model_seconds) * 1000,
        )
        label = None if item.repeat else transaction.is_fraud
        label_record = (
            None
            if label is None
            else LabelRecord(
                trans_num=transaction.trans_num,
                is_fraud=bool(label),
                # Known as the transaction happened (event time, the clock of every label).
                label_time=transaction.event_time,
                source="feed",
            )
        )
        stored = self._writer.submit(
            ScoredTransaction(transaction=item.item, score=score), label=label_record
        )
        self._last_stored = stored
        self._recent.append(item.record)
        if challenger is not None:
            features = item.features if item.shadow_features is None else item.shadow_features
            self._queue_shadow(_ShadowJob(transaction, features, challenger, stored))
        return stored

    # --- labels and look-ups -----------------------------------------------------------------

    def record_labels(self, labels: Sequence[LabelRecord]) -> LabelOutcome:
        """Store labels, and tell the online merchant state about those of known transactions."""
        outcome = self.warehouse.record_labels(labels)
        for name, count in (
            ("stored", outcome.stored),
            ("unchanged", outcome.unchanged),
            ("updated", outcome.updated),
            ("unknown", len(outcome.unknown_trans_nums)),
        ):
            if count:
                self.metrics.labels.labels(outcome=name).inc(count)
        champion = self.models.champion
        if champion is not None and (outcome.stored or outcome.updated):
            latest = {label.trans_num: label.is_fraud for label in labels}
            try:
                for trans_num, stored in self.warehouse.records_of(list(latest)).items():
                    champion.engine.add_label(
                        champion.stored_record(stored.record), is_fraud=latest[trans_num]
                    )
            except FeatureStateUnavailableError:
                self._state_doubt.set()  # the warehouse has the labels: a rebuild reads them
                raise
        return outcome

    def get_transaction(self, trans_num: str) -> StoredTransaction | None:
        """What is stored about a transaction."""
        return self.warehouse.get_transaction(trans_num)

    # --- models ------------------------------------------------------------------------------

    def reload(self) -> ReloadReport:
        """Load the versions the aliases point at, check them, and swap in those that changed."""
        with self._reload_lock:
            current = self.models
            champion, champion_report = self._load_role(CHAMPION, current.champion)
            challenger, challenger_report = self._load_role(CHALLENGER, current.challenger)
            if (
                champion is not None
                and not self._readiness.state_ready
                and not self._state_rebuilding.locked()
            ):
                try:
                    self._ensure_state(champion)
                except FeatureStateUnavailableError as error:  # retried by the state watch
                    log.warning("the online feature state is unavailable", error=str(error))
                    self._readiness.state_reason = f"online feature state unavailable: {error}"
                    self._state_doubt.set()
            self.models = ServingModels(champion=champion, challenger=challenger)
            if champion is not None and self._readiness.state_ready:
                self._readiness.reason = None
        report = ReloadReport(champion=champion_report, challenger=challenger_report)
        for role_report in (champion_report, challenger_report):
            self.metrics.reloads.labels(outcome=role_report.outcome).inc()
        log.info(
            "models reloaded",
            champion=champion_report.outcome,
            champion_version=champion_report.version,
            challenger=challenger_report.outcome,
            challenger_version=challenger_report.version,
        )
        return report

    def _load_role(  # noqa: PLR0911 - one return per outcome reads best
        self, role: str, current: ServingModel | None
    ) -> tuple[ServingModel | None, RoleReload]:
        """The model to serve in a role after a reload, and what happened."""
        previous = None if current is None else current.version
        try:
            info = self.registry.resolve(role)
        except ModelNotFoundError as error:
            if current is not None and role == CHALLENGER:
                self._mark(role, None, current)
                return None, RoleReload(outcome="removed", version=None, previous=previous)
            outcome = "absent" if current is None else "unchanged"
            return current, RoleReload(
                outcome=outcome, version=previous, previous=previous, detail=str(error)
            )
        except Exception as error:  # the registry being down must not take the service down
            log.warning("registry unavailable", role=role, error=str(error))
            return current, RoleReload(
                outcome="failed", version=previous, previous=previous, detail=str(error)
            )
        if current is not None and current.version == info.version:
            return current, RoleReload(outcome="unchanged", version=previous, previous=previous)
        try:
            candidate = load_serving_model(
                registry=self.registry,
                alias=role,
                store=self.store,
                settings=self.settings,
                clock=self.clock,
            )
            checked = canary_check(candidate, list(self._recent))
        except ModelRefusedError as error:
            log.warning("model refused", role=role, version=info.version, error=str(error))
            return current, RoleReload(
                outcome="rejected", version=previous, previous=previous, detail=str(error)
            )
        except Exception as error:  # a model that fails to load must not replace a working one
            log.exception("model load failed", role=role, version=info.version)
            return current, RoleReload(
                outcome="failed", version=previous, previous=previous, detail=str(error)
            )
        self._mark(role, candidate, current)
        log.info("model ready", role=role, version=candidate.version, canary=checked)
        return candidate, RoleReload(
            outcome="swapped", version=candidate.version, previous=previous
        )

    def _mark(self, role: str, new: ServingModel | None, old: ServingModel | None) -> None:
        """Update the model-info metric for a role."""
        name = new.name if new is not None else (old.name if old is not None else "")
        self.metrics.set_model(
            role=role,
            name=name,
            version=None if new is None else str(new.version),
            previous=None if old is None else str(old.version),
        )

    def _watch_aliases(self) -> None:
        """Reload whenever an alias points at another version (polling the registry)."""
        interval = self.settings.model_watch_seconds
        while not self._stop.wait(interval):
            try:
                models = self.models
                serving = {
                    CHAMPION: None if models.champion is None else models.champion.version,
                    CHALLENGER: None if models.challenger is None else models.challenger.version,
                }
                if any(self._registered(role) != version for role, version in serving.items()):
                    self.reload()
            except Exception:  # keep watching through registry hiccups
                log.exception("watching the model aliases failed")

    def _registered(self, role: str) -> int | None:
        """The version an alias points at in the registry, None if it points nowhere."""
        try:
            return self.registry.resolve(role).version
        except ModelNotFoundError:
            return None

    # --- state -------------------------------------------------------------------------------

    def _require_state(self) -> None:
        """Raise FeatureStateUnavailableError unless the online state may be used now.

        After a state failure the store's initialised mark is checked first: if it is gone
        (Redis restarted empty) a rebuild starts in the background.
        """
        if self._state_doubt.is_set() and not self._state_rebuilding.locked():
            self._check_state()
        if not self._readiness.state_ready:
            reason = self._readiness.state_reason or "the online feature state is not built"
            raise FeatureStateUnavailableError(reason)

    def _check_state(self) -> None:
        """Whether the store still has its state: if not, start rebuilding it.

        Raises FeatureStateUnavailableError if the store cannot be reached.
        """
        initialised = self.store.initialised()
        self._state_doubt.clear()
        if initialised:
            if not self._readiness.state_ready and not self._state_rebuilding.locked():
                self._readiness.state_ready = True  # built by another replica meanwhile
                self._readiness.state_reason = None
            return
        champion = self.models.champion
        if champion is None or not self._state_rebuilding.acquire(blocking=False):
            return
        log.warning("the online feature state is gone from the store: rebuilding it")
        self._readiness.state_ready = False
        self._readiness.state_reason = "rebuilding the online feature state: the store lost it"
        threading.Thread(
            target=self._rebuild_in_background,
            args=(champion,),
            name="fraudops-state-rebuild",
            daemon=True,
        ).start()

    def _rebuild_in_background(self, champion: ServingModel) -> None:
        """Rebuild the state (holding `_state_rebuilding`, taken by the caller)."""
        try:
            self._ensure_state(champion)
        except Exception as error:  # the store or the warehouse failed: checked again later
            log.exception("rebuilding the online feature state failed")
            self._readiness.state_reason = f"rebuilding the online feature state failed: {error}"
            self._state_doubt.set()
        finally:
            self._state_rebuilding.release()

    def _watch_state(self) -> None:
        """Every few seconds: settle stale claims, and check the store's initialised mark
        (a restarted Redis lost it)."""
        while not self._stop.wait(STATE_CHECK_SECONDS):
            if self.models.champion is None or self._state_rebuilding.locked():
                continue
            try:
                if self._readiness.state_ready:
                    self._settle_stale_claims()
                self._check_state()
            except FeatureStateUnavailableError as error:
                self._state_doubt.set()
                log.warning("the online feature state is unavailable", error=str(error))
            except Exception:  # keep watching through any hiccup
                log.exception("checking the online feature state failed")

    def _ensure_state(self, champion: ServingModel) -> None:
        """Have the state built from history: build it here, or wait for whoever builds it."""
        while not self.store.initialised():
            with self.store.rebuild_lock() as mine:
                if mine:
                    if not self.store.initialised():  # unless another just finished
                        self._readiness.state_reason = (
                            "rebuilding the online feature state from the warehouse"
                        )
                        self._rebuild_state(champion)
                    continue
            self._readiness.state_reason = (
                "waiting for another process to rebuild the online feature state"
            )
            if self._stop.wait(REBUILD_POLL_SECONDS):
                return
        self.clock.seed(_epoch_ms(self.warehouse.event_clock()))
        self._settle_claims_at_start()
        if not self.store.initialised():  # settling found the state ahead: build it again
            self._ensure_state(champion)
            return
        self._readiness.state_ready = True
        self._readiness.state_reason = None

    def _rebuild_state(self, champion: ServingModel) -> None:
        """Replay the warehouse's recent history into state in process, then load it at once."""
        self._wait_for_writer()
        began = time.perf_counter()
        memory = InMemoryStateStore()
        engine = OnlineFeatureEngine(champion.bundle.spec, memory)
        latest = self.warehouse.event_clock()
        replayed = 0
        if latest is not None:
            windows = max(*CARD_WINDOWS.values(), *MERCHANT_WINDOWS.values())
            horizon = timedelta(milliseconds=windows + champion.bundle.spec.label_delay_ms)
            for stored in self.warehouse.transactions_since(latest - horizon):
                label = None if stored.label is None else int(stored.label.is_fraud)
                engine.update(champion.stored_record(stored.record), label=label)
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
        last = self._last_stored
        if last is not None:
            wait([last], timeout=WRITER_WAIT_SECONDS)

    # --- shadow ------------------------------------------------------------------------------

    def _queue_shadow(self, job: _ShadowJob) -> None:
        """Hand a transaction to the shadow thread; drop it if the thread is far behind."""
        try:
            self._shadow_jobs.put_nowait(job)
        except queue.Full:
            self.metrics.shadow.labels(outcome="dropped").inc()

    def _shadow_loop(self) -> None:
        """Score queued transactions with their challenger and store those scores."""
        while True:
            job = self._shadow_jobs.get()
            if job is None:
                return
            group = [job]
            while len(group) < 200:
                try:
                    more = self._shadow_jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._shadow_jobs.put(None)
                    break
                group.append(more)
            self._shadow_group(group)

    def _shadow_group(self, group: Sequence[_ShadowJob]) -> None:
        """Score one group in shadow once its champion rows are stored."""
        scores: list[tuple[str, ScoreRecord]] = []
        for job in group:
            try:
                job.stored.result(timeout=60)
            except Exception:  # the champion row was not stored: nothing to attach to
                self.metrics.shadow.labels(outcome="failed").inc()
                continue
            challenger = job.challenger
            features = job.features
            scored = challenger.model.score(features, top=self.settings.reasons)
            probability = scored.probability
            scores.append(
                (
                    job.transaction.trans_num,
                    ScoreRecord(
                        model_name=challenger.name,
                        model_version=str(challenger.version),
                        fraud_probability=probability,
                        decision=challenger.decide(probability),
                        scored_at=datetime.now(UTC),
                        reasons=scored.reasons,
                        features=dict(
                            zip(challenger.bundle.feature_names, features.tolist(), strict=True)
                        ),
                    ),
                )
            )
        try:
            stored = self.warehouse.store_shadow_scores(scores)
        except Exception:  # shadow scores are best effort; the champion's are what count
            log.exception("storing shadow scores failed", group=len(scores))
            self.metrics.shadow.labels(outcome="failed").inc(len(scores))
            return
        self.metrics.shadow.labels(outcome="stored").inc(stored)

    def _note_commit(self, results: Sequence[StoredResult], seconds: float) -> None:
        """Record one group commit: confirm its claims; its size, time, decisions, duplicates."""
        created = [result.trans_num for result in results if result.created]
        try:
            self.store.confirm(created)
        except FeatureStateUnavailableError as error:  # the stale-claim check settles them
            log.warning("confirming stored transactions failed", error=str(error))
        self.metrics.store_batch.observe(len(results))
        self.metrics.store_seconds.observe(seconds)
        for result in results:
            if result.created:
                self.metrics.decisions.labels(decision=result.score.decision).inc()
                self.metrics.scores.observe(result.score.fraud_probability)
            else:
                self.metrics.duplicates.inc()

    # --- claims ------------------------------------------------------------------------------

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
            self._state_doubt.set()


def _resolved(result: StoredResult) -> "Future[StoredResult]":
    """A future already holding a stored result."""
    future: Future[StoredResult] = Future()
    future.set_result(result)
    return future


def _as_repeat(first: "Future[StoredResult]") -> "Future[StoredResult]":
    """A future of a repeat in the same request: the first's result, as a duplicate."""
    repeat: Future[StoredResult] = Future()

    def settle(done: "Future[StoredResult]") -> None:
        error = done.exception()
        if error is not None:
            repeat.set_exception(error)
        else:
            repeat.set_result(dataclasses.replace(done.result(), created=False))

    first.add_done_callback(settle)
    return repeat


def _claimed_conflict(item: ProtectedTransaction, *, index: int) -> Problem:
    """The problem of a transaction whose trans_num another request claimed with other content."""
    return Problem(
        index,
        "trans_num",
        "sent by another request just now with different content; a trans_num names one "
        "transaction",
        item.trans_num,
    )


def _epoch_ms(moment: datetime | None) -> int | None:
    """Epoch milliseconds of a naive UTC time."""
    if moment is None:
        return None
    return (moment - datetime(1970, 1, 1)) // timedelta(milliseconds=1)
