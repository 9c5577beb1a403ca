"""Shadow scoring: the challenger scores what the champion served, on a thread of its own.

Best effort by design: the queue is bounded (a challenger far behind drops work rather than
slowing the champion), a job waits for its champion row to be stored so that its score has a
transaction to attach to, and a failed store is counted, never raised.
"""

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from fraudops.data.schema import CanonicalTransaction
from fraudops.features.formulas import FloatArray
from fraudops.scoring.metrics import ServiceMetrics
from fraudops.scoring.serving import ServingModel
from fraudops.storage.base import ScoreRecord, StoredResult
from fraudops.storage.warehouse import Warehouse

log = structlog.get_logger(__name__)

SHADOW_QUEUE = 10_000
# Shadow scores stored per warehouse commit, at most.
SHADOW_GROUP = 200
# How long a job waits for its champion row to be stored.
CHAMPION_ROW_SECONDS = 60


@dataclass(frozen=True)
class ShadowJob:
    """A transaction for the challenger, with the features it reads (taken before update)."""

    transaction: CanonicalTransaction
    features: FloatArray
    challenger: ServingModel
    stored: "Future[StoredResult]"


class ShadowScorer:
    """Scores queued transactions with their challenger and stores those scores."""

    def __init__(self, *, warehouse: Warehouse, metrics: ServiceMetrics, reasons: int) -> None:
        self.warehouse = warehouse
        self.metrics = metrics
        self.reasons = reasons
        self._jobs: queue.Queue[ShadowJob | None] = queue.Queue(SHADOW_QUEUE)
        self._thread = threading.Thread(target=self._loop, name="fraudops-shadow", daemon=True)

    def start(self) -> None:
        """Start the shadow thread."""
        self._thread.start()

    def stop(self) -> None:
        """Finish the queued work, then stop the thread."""
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(30)

    def submit(self, job: ShadowJob) -> None:
        """Hand a transaction to the shadow thread; drop it if the thread is far behind."""
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.metrics.shadow.labels(outcome="dropped").inc()

    def _loop(self) -> None:
        """Take the queued jobs in groups until told to stop."""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            group = [job]
            while len(group) < SHADOW_GROUP:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._jobs.put(None)
                    break
                group.append(more)
            self._score_group(group)

    def _score_group(self, group: Sequence[ShadowJob]) -> None:
        """Score one group in shadow once its champion rows are stored."""
        scores: list[tuple[str, ScoreRecord]] = []
        for job in group:
            try:
                job.stored.result(timeout=CHAMPION_ROW_SECONDS)
            except Exception:  # the champion row was not stored: nothing to attach to
                self.metrics.shadow.labels(outcome="failed").inc()
                continue
            challenger = job.challenger
            features = job.features
            scored = challenger.model.score(features, top=self.reasons)
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
