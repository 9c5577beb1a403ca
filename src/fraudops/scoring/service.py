"""The scoring service without HTTP: online features, champion score, storage, shadow, reload.

`score` runs the fast path in the caller's thread (online features, champion probability,
reasons, decision) and returns a future that resolves once the result is durably stored;
the HTTP routes, the stream ingester and tests all drive this one object.

Models in service are one immutable `ServingModels` value: a request reads it once and
finishes on what it read, and a reload replaces it with a single assignment, so a swap
never mixes two versions within one request.

The online feature state is kept usable by a StateSupervisor (fraudops.scoring.supervision),
and the challenger scores in shadow on a thread of its own (fraudops.scoring.shadow).
"""

import dataclasses
import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from fraudops.config import Settings
from fraudops.data.personal import PersonalData, ProtectedTransaction
from fraudops.data.profile_schema import TransactionSchema, transaction_schema
from fraudops.data.profiles import SPARKOV
from fraudops.data.schema import CanonicalTransaction
from fraudops.features.clock import EventClock
from fraudops.features.formulas import FloatArray
from fraudops.features.online import EVENT_TIME_MS, LabelTarget, datetime_ms
from fraudops.features.state import (
    Claim,
    ClaimedError,
    FeatureStateStore,
    FeatureStateUnavailableError,
    InMemoryStateStore,
)
from fraudops.registry.base import CHALLENGER, CHAMPION, ModelNotFoundError, ModelRegistry
from fraudops.scoring.admission import Problem, TransactionsRefusedError, admit
from fraudops.scoring.drain import DrainProcess
from fraudops.scoring.journaling import JournaledWriter, Pending
from fraudops.scoring.label_targets import RecentLabelTargets
from fraudops.scoring.metrics import ServiceMetrics
from fraudops.scoring.model import Scored
from fraudops.scoring.seen import SeenFilter
from fraudops.scoring.serving import (
    ModelRefusedError,
    ServingModel,
    canary_check,
    load_serving_model,
)
from fraudops.scoring.shadow import ShadowJob, ShadowScorer
from fraudops.scoring.supervision import StateSupervisor
from fraudops.scoring.writer import GroupCommitWriter
from fraudops.storage.base import (
    KnownTransaction,
    LabelOutcome,
    LabelRecord,
    ScoredTransaction,
    StoredResult,
    StoredTransaction,
)
from fraudops.storage.journal import Journal
from fraudops.storage.warehouse import Warehouse
from fraudops.times import utc_now

log = structlog.get_logger(__name__)

RECENT_CANARY = 256
# How long a repeat of a transaction another replica is storing waits to find it stored.
CLAIMED_WAIT_SECONDS = 2.0
CLAIMED_POLL_SECONDS = 0.01
# How long labels wait for the transactions they follow to be stored.
SETTLE_SECONDS = 30.0


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
class _Prepared:
    """A transaction with its features, read before the champion scores it."""

    item: ProtectedTransaction
    record: dict[str, Any]
    features: FloatArray
    shadow_features: FloatArray | None
    feature_seconds: float
    index: int  # in the request
    repeat: bool = False  # of a transaction in flight: no state change, no label


class ScoringService:
    """Scores transactions of the champion's profile, stores them, shadows the challenger."""

    def __init__(
        self,
        *,
        settings: Settings,
        warehouse: Warehouse,
        registry: ModelRegistry,
        store: FeatureStateStore,
        metrics: ServiceMetrics | None = None,
        drain: DrainProcess | None = None,
    ) -> None:
        """`drain`: the process that stores the journal in the warehouse (else a thread)."""
        self.settings = settings
        self.warehouse = warehouse
        self.registry = registry
        self.store = store
        self.metrics = metrics if metrics is not None else ServiceMetrics()
        # "Now" in event time, shared by the engines of every model in service.
        self.clock = EventClock()
        self.models = ServingModels()
        # New transactions: durable in the journal, drained into the warehouse in batches.
        self._journal = JournaledWriter(
            warehouse,
            Journal(journal_folder(settings, warehouse)),
            on_durable=self._confirm,
            on_commit=self._note_drained,
            drain=drain,
        )
        # The trans_nums stored, when this process is the only one storing (in-process state).
        self._seen: SeenFilter | None = None
        # Repeats of a transaction another replica is storing: stored (or found) directly.
        self._writer = GroupCommitWriter(warehouse, on_commit=self._note_commit)
        self._shadow = ShadowScorer(
            warehouse=warehouse, metrics=self.metrics, reasons=settings.reasons
        )
        self._reload_lock = threading.Lock()
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_CANARY)
        # What labels of the latest transactions scored need, without reading the warehouse.
        self._label_targets = RecentLabelTargets()
        self._reason: str | None = "starting"  # why no champion serves yet, if none does
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        # The latest transaction handed to a writer: journaled, or its warehouse future.
        self._last_handed: Pending | Future[StoredResult] | None = None
        self.supervisor = StateSupervisor(
            store=store,
            warehouse=warehouse,
            clock=self.clock,
            metrics=self.metrics,
            champion=lambda: self.models.champion,
            last_stored=self._last_stored,
            stop=self._stop,
        )

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, *, block: bool = True, loaded: Callable[[], None] | None = None) -> None:
        """Migrate the warehouse, start the threads, then load the models and rebuild state.

        With block=False the loading goes on in a thread (readiness says so meanwhile), so
        a server answers its health checks during a long state rebuild. `loaded` is called
        once the models and the state are loaded (a server settles its process then).
        """
        self.warehouse.migrate()
        self._journal.start()  # replays what a dead process left, before any state is built
        if isinstance(self.store, InMemoryStateStore):
            stored = self.warehouse.stored_trans_nums()
            self._seen = SeenFilter.of(stored, count=len(stored))
        self._writer.start()
        self._shadow.start()
        if block:
            self._load_initial(loaded)
        else:
            threading.Thread(
                target=self._load_initial, args=(loaded,), name="fraudops-startup", daemon=True
            ).start()

    def _load_initial(self, loaded: Callable[[], None] | None) -> None:
        """Load the models in service, rebuild the state, then start watching both."""
        try:
            report = self.reload()
        except Exception as error:  # surfaced through readiness, not a dead thread
            log.exception("loading the models failed")
            self._reason = f"loading the models failed: {error}"
            return
        if self.models.champion is None:
            self._reason = f"no champion in service ({report.champion.detail})"
        if self.settings.model_watch_seconds > 0 and not self._stop.is_set():
            watcher = threading.Thread(
                target=self._watch_aliases, name="fraudops-model-watch", daemon=True
            )
            watcher.start()
            self._watcher = watcher  # only once started: `stop` may run from another thread
        if not self._stop.is_set():
            self.supervisor.start_watching()
        if loaded is not None:
            loaded()

    def stop(self) -> None:
        """Store everything accepted, finish the shadow work, stop the threads."""
        self._stop.set()
        self._journal.close()
        self._writer.close()
        self._shadow.stop()
        if self._watcher is not None:
            self._watcher.join(5)
        self.supervisor.join(5)
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

    @property
    def schema(self) -> TransactionSchema:
        """How transactions read now: the champion's profile (Sparkov until one is loaded)."""
        champion = self.models.champion
        return transaction_schema(SPARKOV) if champion is None else champion.schema

    def readiness(self) -> str | None:
        """None when ready to score, else why not."""
        if not self._writer.alive or not self._journal.alive:
            return "the warehouse writer is not running"
        return self.supervisor.reason or self._reason

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
        left); the champion then scores them all together (`FastModel.score_batch`), equal
        to scoring each alone. A refused transaction refuses the request (TransactionsRefusedError,
        before anything changed for an invalid or conflicting one). If the state fails
        part-way, those already read are still scored and stored before the error is raised.
        """
        futures: list[Future[StoredResult]] = []
        for outcome in self._score(transactions, each=False):
            if not isinstance(outcome, Future):  # not so: every refusal was raised
                raise outcome
            futures.append(outcome)
        return futures

    def score_each(
        self, transactions: Sequence[CanonicalTransaction]
    ) -> "list[Future[StoredResult] | Exception]":
        """Score transactions of separate requests together, each with its own outcome.

        As `score_many` (features in order, one model call, one look-up of their
        trans_nums), but a refused transaction is refused alone: its outcome is the error
        (TransactionsRefusedError, or FeatureStateUnavailableError for those the state
        failed before), the others' the future of their stored result. One repeating an
        earlier one is answered as its repeat, as if sent right after it. Errors of the
        whole service (NoModelError, the state known down) are raised.
        """
        return self._score(transactions, each=True)

    def _score(
        self, transactions: Sequence[CanonicalTransaction], *, each: bool
    ) -> "list[Future[StoredResult] | Exception]":
        """`score_many` (raising what refuses any) or `score_each` (outcomes per transaction)."""
        models = self.models  # read once: this request finishes on these models
        champion = models.champion
        if champion is None:
            raise NoModelError(self._reason or "no champion in service")
        self.supervisor.require()
        admitted = admit(
            transactions,
            personal=self.personal,
            now=utc_now(),
            max_ahead_seconds=self.settings.max_event_ahead_seconds,
            known=self._known,
            each=each,
        )
        challenger = models.challenger if self.settings.shadow else None
        prepared: list[_Prepared] = []
        conflicts: list[Problem] = []
        repeats: dict[int, Future[StoredResult]] = {}
        unavailable: FeatureStateUnavailableError | None = None
        try:
            for index, item, outcome in self._read_features(admitted.new, champion, challenger):
                if isinstance(outcome, _Prepared):
                    prepared.append(outcome)
                    continue
                if not isinstance(outcome, ClaimedError):
                    raise outcome
                # Another request has just sent it.
                if outcome.fingerprint != item.fingerprint:
                    conflicts.append(_claimed_conflict(item, index=index))
                    continue
                repeat = self._repeat_of_claimed(item.trans_num)
                if repeat is not None:
                    repeats[index] = repeat
                    continue
                prepared.append(
                    self._features(item, champion, challenger, index=index, repeat=True)
                )
        except FeatureStateUnavailableError as error:
            self.supervisor.doubt()
            unavailable = error
        stored = self._score_and_store(prepared, champion, challenger)
        if unavailable is not None and not each:
            raise unavailable
        if conflicts and not each:  # those scored are stored; the caller learns which were refused
            raise TransactionsRefusedError(conflicts, conflict=True)
        outcomes: dict[int, Future[StoredResult] | Exception] = dict(admitted.refused)
        outcomes.update((item.index, future) for item, future in zip(prepared, stored, strict=True))
        outcomes.update(repeats)
        for problem in conflicts:
            outcomes[problem.index] = TransactionsRefusedError([problem], conflict=True)
        for index, known in admitted.repeats_stored.items():
            outcomes[index] = _resolved(known.result)
        # Those the state failed before have no outcome yet: the failure is theirs.
        missing = unavailable or RuntimeError("a transaction was left without an outcome")
        for index, earlier in admitted.repeats_in_request.items():
            first = outcomes.get(earlier, missing)
            outcomes[index] = _as_repeat(first) if isinstance(first, Future) else first
        return [outcomes.get(index, missing) for index in range(len(transactions))]

    def _known(self, trans_nums: Sequence[str]) -> dict[str, KnownTransaction]:
        """The transactions among `trans_nums` stored: journaled here, or in the warehouse."""
        seen = self._seen
        if seen is not None:  # those never seen are new: no query
            trans_nums = [trans_num for trans_num in trans_nums if seen.may_contain(trans_num)]
            if not trans_nums:
                return {}
        known = self._journal.known(trans_nums)
        rest = [trans_num for trans_num in trans_nums if trans_num not in known]
        if rest:
            known.update(self.warehouse.known_transactions(rest))
        return known

    def _repeat_of_claimed(self, trans_num: str) -> "Future[StoredResult] | None":
        """The answer to a repeat of a transaction claimed just now, once it is stored: by
        this process (journaled), or by another replica (waited for in the warehouse).

        None if the other replica has not stored it within CLAIMED_WAIT_SECONDS (it may have
        died): the repeat is then scored and stored here, as the first sending would be.
        """
        deadline = time.monotonic() + CLAIMED_WAIT_SECONDS
        while True:
            pending = self._journal.pending(trans_num)
            if pending is not None:
                return _as_repeat(pending.durable)
            stored = self.warehouse.known_transactions([trans_num]).get(trans_num)
            if stored is not None:
                return _resolved(dataclasses.replace(stored.result, created=False))
            if time.monotonic() >= deadline or not self.blocking:
                # In-process state has no other replica: nothing to wait for.
                return None
            time.sleep(CLAIMED_POLL_SECONDS)

    def _read_features(
        self,
        new: Sequence[tuple[int, ProtectedTransaction]],
        champion: ServingModel,
        challenger: ServingModel | None,
    ) -> "Iterator[tuple[int, ProtectedTransaction, _Prepared | Exception]]":
        """Each new transaction's features, read and added to the online state in order with
        its trans_num claimed, or the error refusing it (ClaimedError, or a
        FeatureStateUnavailableError after which none is read).

        The champion's engine reads them all at once (a shared store sends their changes
        together), unless a challenger reads features of its own: those must be read
        before each transaction's update, so each is then read in turn.
        """
        if challenger is not None and not challenger.shares_features_with(champion):
            for index, item in new:
                try:
                    yield index, item, self._features(item, champion, challenger, index=index)
                except (ClaimedError, FeatureStateUnavailableError) as error:
                    yield index, item, error
                    if isinstance(error, FeatureStateUnavailableError):
                        return
            return
        if not new:
            return
        start = time.perf_counter()
        engine = champion.engine
        records = [champion.record(item.transaction) for _, item in new]
        outcomes = engine.features_then_update_each(
            [
                (record, item.transaction.is_fraud, Claim(item.trans_num, item.fingerprint))
                for record, (_, item) in zip(records, new, strict=True)
            ]
        )
        share = (time.perf_counter() - start) / len(new)
        for (index, item), record, outcome in zip(new, records, outcomes, strict=True):
            if isinstance(outcome, Exception):
                yield index, item, outcome
                continue
            self._count_if_late(record)
            target = engine.label_target(record)
            if target is not None:
                self._label_targets.add(engine, item.trans_num, target)
            self.metrics.feature_state.observe(share)
            yield index, item, _Prepared(item, record, outcome, None, share, index=index)

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
            engine = champion.engine
            features = engine.features_then_update(
                record,
                label=transaction.is_fraud,
                claim=Claim(item.trans_num, item.fingerprint),
            )
            self._count_if_late(record)
            target = engine.label_target(record)
            if target is not None:
                self._label_targets.add(engine, item.trans_num, target)
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
        stored_forms = []
        for item, verdict in zip(prepared, scored, strict=True):
            self.metrics.model_seconds.observe(model_share)
            stored_forms.append(self._stored_form(item, verdict, champion, model_share))
        journaled = iter(
            self._journal_all(
                [form for item, form in zip(prepared, stored_forms, strict=True) if not item.repeat]
            )
        )
        futures = []
        for item, (scored_transaction, label) in zip(prepared, stored_forms, strict=True):
            handed: Pending | Future[StoredResult]
            if item.repeat:  # of a transaction another replica stores: the warehouse decides
                handed = answered = self._writer.submit(scored_transaction, label=label)
            else:
                handed = next(journaled)
                answered = handed.durable
            self._last_handed = handed
            self._recent.append(item.record)
            if challenger is not None:
                features = item.features if item.shadow_features is None else item.shadow_features
                in_warehouse = handed.drained if isinstance(handed, Pending) else handed
                transaction = item.item.transaction
                self._shadow.submit(ShadowJob(transaction, features, challenger, in_warehouse))
            futures.append(answered)
        return futures

    def _journal_all(
        self, forms: Sequence[tuple[ScoredTransaction, LabelRecord | None]]
    ) -> list[Pending]:
        """Hand scored transactions to the journal. Scoring in a worker thread (PostgreSQL,
        Redis) journals them there at once; on the event loop they go to the journal thread,
        so that the loop never waits on the disk."""
        if self.blocking:
            return self._journal.journal_each(forms)
        return [self._journal.submit(item, label=label) for item, label in forms]

    def _stored_form(
        self,
        item: "_Prepared",
        scored: Scored,
        champion: ServingModel,
        model_seconds: float,
    ) -> tuple[ScoredTransaction, LabelRecord | None]:
        """One scored transaction as it is stored, with its label if it came with one."""
        transaction = item.item.transaction
        if not champion.knows_category(transaction):
            self.metrics.unknown_categories.inc()
        probability = scored.probability
        score = champion.score_record(
            probability=probability,
            reasons=scored.reasons,
            features=item.features,
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
        if self._seen is not None:
            self._seen.add(transaction.trans_num)
        return ScoredTransaction(transaction=item.item, score=score), label_record

    def _last_stored(self) -> "Future[StoredResult] | None":
        """The warehouse future of the latest transaction handed to a writer (both are FIFO:
        once it resolves, everything scored before it is stored)."""
        last = self._last_handed
        return last.drained if isinstance(last, Pending) else last

    def settle(self, timeout: float = SETTLE_SECONDS) -> bool:
        """Wait until everything scored so far is in the warehouse; whether it is."""
        last = self._last_stored()
        if last is None:
            return True
        wait([last], timeout=timeout)
        return last.done()

    # --- labels and look-ups -----------------------------------------------------------------

    def record_labels(self, labels: Sequence[LabelRecord]) -> LabelOutcome:
        """Store labels, and tell the online merchant state about those of known transactions."""
        journaled = self._journaled(labels)
        outcome = self.warehouse.record_labels(labels, stored_elsewhere=journaled)
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
            latest = {label.trans_num: label for label in labels}
            unknown = set(outcome.unknown_trans_nums)
            known = [trans_num for trans_num in latest if trans_num not in unknown]
            try:
                for trans_num, target in self._targets_of(known, champion, journaled).items():
                    label = latest[trans_num]
                    champion.engine.add_label_at(
                        target,
                        is_fraud=label.is_fraud,
                        label_time_ms=datetime_ms(label.label_time),
                    )
            except FeatureStateUnavailableError:
                self.supervisor.doubt()  # the warehouse has the labels: a rebuild reads them
                raise
        return outcome

    def _journaled(self, labels: Sequence[LabelRecord]) -> dict[str, Pending]:
        """The labels' transactions durably journaled and not yet in the warehouse.

        Their labels are stored beside them without waiting for the drain, unless one of them
        came with a label of its own: then everything is drained first, so that its label
        is stored before these, in the order they were sent.
        """
        pending = [
            found
            for trans_num in dict.fromkeys(label.trans_num for label in labels)
            if (found := self._journal.pending(trans_num)) is not None
        ]
        if not pending:
            return {}
        if any(found.entry.label is not None for found in pending):
            self.settle()
            return {}
        wait([found.durable for found in pending], timeout=SETTLE_SECONDS)
        return {
            found.result.trans_num: found
            for found in pending
            if found.durable.done() and found.durable.exception() is None
        }

    def _targets_of(
        self, trans_nums: Sequence[str], champion: ServingModel, journaled: dict[str, Pending]
    ) -> dict[str, LabelTarget]:
        """What labels of these stored transactions need: remembered from scoring them, read
        from the journal, else from the warehouse."""
        engine = champion.engine
        found: dict[str, LabelTarget] = {}
        unread: list[str] = []
        for trans_num in trans_nums:
            target = self._label_targets.get(engine, trans_num)
            if target is None and trans_num in journaled:
                record = champion.record(journaled[trans_num].protected.transaction)
                target = engine.label_target(record)
            if target is not None:
                found[trans_num] = target
            else:
                unread.append(trans_num)
        if unread:
            for trans_num, stored in self.warehouse.records_of(unread).items():
                target = engine.label_target(champion.stored_record(stored.record))
                if target is not None:
                    found[trans_num] = target
        return found

    def get_transaction(self, trans_num: str) -> StoredTransaction | None:
        """What is stored about a transaction (journaled and not yet drained, or in the
        warehouse)."""
        journaled = self._journal.stored_transaction(trans_num)
        if journaled is not None:
            # A label may be stored before its transaction is drained (record_labels).
            label = self.warehouse.label_of(trans_num) if journaled.label is None else None
            return journaled if label is None else dataclasses.replace(journaled, label=label)
        return self.warehouse.get_transaction(trans_num)

    # --- models ------------------------------------------------------------------------------

    def reload(self) -> ReloadReport:
        """Load the versions the aliases point at, check them, and swap in those that changed."""
        with self._reload_lock:
            current = self.models
            champion, champion_report = self._load_role(CHAMPION, current.champion)
            challenger, challenger_report = self._load_role(CHALLENGER, current.challenger)
            if champion is not None and challenger is not None:
                challenger, challenger_report = _shadowing(
                    challenger, champion=champion, report=challenger_report
                )
            previous = current.champion
            if champion is not None and previous is not None and not champion.serves_like(previous):
                self._recent.clear()  # records of the schema no longer served
            if champion is not None:
                self.supervisor.prepare(champion)
            self.models = ServingModels(champion=champion, challenger=challenger)
            if champion is not None and self.supervisor.ready:
                self._reason = None
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
            # Recent records are the served profile's: a model of another one skips them.
            served = self.models.champion
            recent = list(self._recent) if served is None or served.serves_like(candidate) else []
            checked = canary_check(candidate, recent)
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

    def _confirm(self, trans_nums: Sequence[str]) -> None:
        """Confirm the claims of transactions now durable (journaled, or in the warehouse)."""
        try:
            self.store.confirm(trans_nums)
        except FeatureStateUnavailableError as error:  # the stale-claim check settles them
            log.warning("confirming stored transactions failed", error=str(error))

    def _note_commit(self, results: Sequence[StoredResult], seconds: float) -> None:
        """Record one group commit of the warehouse writer: confirm its claims, note it."""
        self._confirm([result.trans_num for result in results if result.created])
        self._note_drained(results, seconds)

    def _note_drained(self, results: Sequence[StoredResult], seconds: float) -> None:
        """Record one warehouse commit: its size, time, decisions, duplicates."""
        self.metrics.store_batch.observe(len(results))
        self.metrics.store_seconds.observe(seconds)
        for result in results:
            if result.created:
                self.metrics.decisions.labels(decision=result.score.decision).inc()
                self.metrics.scores.observe(result.score.fraud_probability)
            else:
                self.metrics.duplicates.inc()


def _shadowing(
    challenger: ServingModel, *, champion: ServingModel, report: RoleReload
) -> tuple[ServingModel | None, RoleReload]:
    """The challenger, or none if it reads another profile's transactions than the champion."""
    if challenger.serves_like(champion):
        return challenger, report
    detail = (
        f"challenger v{challenger.version} reads profile "
        f"{challenger.bundle.spec.profile.name!r} transactions and cannot shadow a champion "
        f"serving {champion.bundle.spec.profile.name!r}"
    )
    log.warning("model refused", role=CHALLENGER, version=challenger.version, error=detail)
    return None, RoleReload(
        outcome="rejected", version=None, previous=report.previous, detail=detail
    )


def journal_folder(settings: Settings, warehouse: Warehouse) -> Path:
    """Where the service journals for this warehouse: under home, one folder per warehouse
    (a home shared by services of other warehouses never replays into the wrong one)."""
    url = warehouse.engine.url.render_as_string(hide_password=True)
    return settings.home / "journal" / hashlib.sha256(url.encode()).hexdigest()[:16]


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
        item.transaction.field_name("trans_num"),
        "sent by another request just now with different content; a trans_num names one "
        "transaction",
        item.trans_num,
    )
