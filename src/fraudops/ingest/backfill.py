"""A history file into the warehouse in one vectorised pass, as the scoring service stores it.

Replayed through the service (`fraudops ingest`), a history costs the per-transaction path of
live traffic: online features, one journal entry, and each label a delay behind through the
online state. For a history already complete on disk, the batch feature engine gives every
transaction the same point-in-time features at once (batch/online parity; each label known
from its label time, the delay after its transaction), the champion scores the whole matrix
in one call, and the warehouse takes thousands of rows per statement. What is stored is what
the replay stores: each transaction protected as admission protects it, the champion's score
with its reasons, decision and features, and every label with its label time.

Transactions already stored are left as they are (a backfill run twice stores nothing twice).
"""

import time
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import structlog

from fraudops.config import Settings
from fraudops.data.profile_schema import transaction_schema
from fraudops.data.profiles import SPARKOV, DatasetProfile
from fraudops.features.batch import batch_features
from fraudops.features.columns import event_times_ms
from fraudops.features.labels import LABEL_TIME
from fraudops.ingest.app import in_process_service
from fraudops.ingest.runner import validated
from fraudops.ingest.sources import FileReplaySource
from fraudops.ingest.spool import Item
from fraudops.scoring.admission import admit
from fraudops.storage.base import ScoredTransaction
from fraudops.times import utc_now

if TYPE_CHECKING:
    from fraudops.scoring.service import ScoringService

log = structlog.get_logger(__name__)

# Rows per warehouse statement batch (one database transaction each).
CHUNK = 5_000


@dataclass(frozen=True, kw_only=True)
class BackfillReport:
    """What a backfill stored, what it found stored already, and what it refused."""

    stored: int
    already_stored: int
    labels: int
    invalid: tuple[str, ...]
    seconds: float


def backfill(
    data: Path,
    settings: Settings,
    *,
    label_delay_ms: int,
    profile: DatasetProfile = SPARKOV,
) -> BackfillReport:
    """Score a history file with the champion in one pass and store it with its labels."""
    with in_process_service(settings, profile=profile) as service:
        return _backfill(service, data, label_delay_ms=label_delay_ms, profile=profile)


def _backfill(
    service: "ScoringService", data: Path, *, label_delay_ms: int, profile: DatasetProfile
) -> BackfillReport:
    """backfill with a ready service: its champion, personal data rules and warehouse."""
    began = time.perf_counter()
    champion = service.models.champion
    assert champion is not None  # noqa: S101 - a ready service has one
    with TemporaryDirectory(prefix="fraudops-backfill-") as folder:
        source = FileReplaySource(
            data, checkpoint=Path(folder) / "checkpoint.json", profile=profile,
            label_delay_ms=label_delay_ms,
        )  # fmt: skip
        items = _everything(source)
    transactions, labels, refused = validated(items, transaction_schema(profile))
    invalid = tuple(f"{item.kind} {item.position}: {why}" for item, why in refused)
    if invalid:
        log.warning("backfill refused items", count=len(invalid), first=invalid[:3])
    frame = source.frame
    positions = np.array([int(item.position) for _, item in transactions], dtype=np.int64)
    if profile.label is not None and profile.label in frame.columns:
        # Each label known the delay after its transaction, as the replay delivers it.
        frame[LABEL_TIME] = pd.to_datetime(event_times_ms(frame) + label_delay_ms, unit="ms")
    features_start = time.perf_counter()
    matrix = batch_features(frame, champion.bundle.spec)[positions]
    feature_seconds = time.perf_counter() - features_start
    admitted = admit(
        [transaction for transaction, _ in transactions],
        personal=service.personal,
        now=utc_now(),
        max_ahead_seconds=service.settings.max_event_ahead_seconds,
        known=service.warehouse.known_transactions,
    )
    rows = np.array([index for index, _ in admitted.new], dtype=np.int64)
    model_start = time.perf_counter()
    scored = champion.model.score_batch(matrix[rows], top=service.settings.reasons)
    per_row_ms = (feature_seconds + time.perf_counter() - model_start) / max(len(rows), 1) * 1000
    stored = 0
    for start in range(0, len(rows), CHUNK):
        batch = [
            ScoredTransaction(
                transaction=item,
                score=champion.score_record(
                    probability=verdict.probability,
                    reasons=verdict.reasons,
                    features=matrix[index],
                    latency_ms=per_row_ms,
                ),
            )
            for (index, item), verdict in zip(
                admitted.new[start : start + CHUNK], scored[start : start + CHUNK], strict=True
            )
        ]
        stored += sum(result.created for result in service.warehouse.store_scored_batch(batch))
    for start in range(0, len(labels), CHUNK):
        service.warehouse.record_labels(labels[start : start + CHUNK])
    report = BackfillReport(
        stored=stored,
        already_stored=len(transactions) - len(rows),
        labels=len(labels),
        invalid=invalid,
        seconds=time.perf_counter() - began,
    )
    log.info(
        "history backfilled",
        source=source.name,
        stored=report.stored,
        already_stored=report.already_stored,
        labels=report.labels,
        invalid=len(invalid),
        seconds=round(report.seconds, 1),
    )
    return report


def _everything(source: FileReplaySource) -> list[Item]:
    """Every transaction of the file, then every label (replayed as fast as possible)."""
    items: list[Item] = []
    while batch := source.read(max(len(source), 1)):
        items += batch
    return items
