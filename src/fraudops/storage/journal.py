"""The scoring journal: an append-only local log, the durable commit point of a score.

A scored transaction is appended here and the group is flushed with one fdatasync before
its answer leaves; a writer then stores what the journal holds in the warehouse in large
batches. A process killed at any moment loses nothing answered: whatever a journal holds
that the warehouse may not is replayed into it when the next service starts.

Each process writes segments of its own, `<id>.log`, locked (flock) while it lives, so
that replicas and workers sharing a home never write or replay each other's live
segments; a segment nobody holds is an orphan of a process that is gone, replayed and
removed by the next one to start. A record is its length and CRC-32 (4 bytes each, little
endian) then its bytes; a torn record at the end (the process died mid-write, before its
flush, so it was never answered) ends a segment's replay.
"""

import fcntl
import os
import struct
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import structlog

from fraudops.data.personal import ProtectedTransaction
from fraudops.data.schema import stored_transaction
from fraudops.storage.base import (
    LabelRecord,
    Reason,
    ScoredTransaction,
    ScoreRecord,
    StoredResult,
    TransactionStore,
)

log = structlog.get_logger(__name__)

_HEADER = struct.Struct("<II")
SUFFIX = ".log"
# A segment is closed and a new one begun past this size; a closed one is removed once
# everything in it is in the warehouse.
SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class JournalEntry:
    """A scored transaction as journaled: what the warehouse is to store for it."""

    item: ScoredTransaction  # its transaction is a ProtectedTransaction
    label: LabelRecord | None


class JournalSegment:
    """One segment this process appends to, locked for as long as it is open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.size = os.fstat(self._fd).st_size

    def append(self, records: Sequence[bytes]) -> None:
        """Write the records and flush them to the disk (one fdatasync for all)."""
        data = framed(records)
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:])
        os.fdatasync(self._fd)
        self.size += len(data)

    def close(self) -> None:
        """Release the lock and the file."""
        os.close(self._fd)


class Journal:
    """The segments of one warehouse's journal in a folder: this process's and orphans."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open_segment(self) -> JournalSegment:
        """A new segment of this process's own: locked before it is named as a segment, so
        that no process starting meanwhile can take it for an orphan."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = uuid.uuid4().hex
        segment = JournalSegment(self.folder / f"{name}.new")
        path = self.folder / f"{name}{SUFFIX}"
        segment.path.rename(path)
        segment.path = path
        return segment

    def orphans(self) -> Iterator[tuple[Path, int]]:
        """Segments no live process holds, oldest first, each locked while the caller
        replays it (the file descriptor holding the lock is yielded with it)."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob(f"*{SUFFIX}"), key=_modified):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # replayed by another process meanwhile
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # a live process's segment
                    continue
                if path.exists():
                    yield path, fd
            finally:
                os.close(fd)


def _modified(path: Path) -> float:
    """When a segment was last written (0 if another process removed it meanwhile)."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def framed(records: Sequence[bytes]) -> bytes:
    """Records as a segment holds them: each after its length and CRC-32."""
    return b"".join(_HEADER.pack(len(r), zlib.crc32(r)) + r for r in records)


def read_records(path: Path) -> Iterator[bytes]:
    """The whole records of a segment in order; a torn or corrupt tail ends it."""
    return unframed(path.read_bytes(), source=str(path))


def unframed(data: bytes, *, source: str) -> Iterator[bytes]:
    """The whole records of framed bytes in order; a torn or corrupt tail ends them."""
    at = 0
    while at + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, at)
        start = at + _HEADER.size
        record = data[start : start + length]
        if len(record) < length or zlib.crc32(record) != crc:
            log.warning("journal records end in a torn one", source=source, offset=at)
            return
        yield record
        at = start + length


def encode_entry(entry: JournalEntry) -> bytes:
    """The journal record of a scored transaction (JSON)."""
    transaction = entry.item.transaction
    if not isinstance(transaction, ProtectedTransaction):
        msg = "the journal keeps protected transactions only"
        raise TypeError(msg)
    score = entry.item.score
    label = entry.label
    return orjson.dumps(
        {
            "transaction": orjson.Fragment(transaction.record_json),
            "card_last4": transaction.card_last4,
            "fingerprint": transaction.fingerprint,
            "sealed": transaction.sealed,
            "score": {
                "model_name": score.model_name,
                "model_version": score.model_version,
                "fraud_probability": score.fraud_probability,
                "decision": score.decision,
                "scored_at": score.scored_at,
                "reasons": [reason.as_dict() for reason in score.reasons],
                "features": score.features,
                "latency_ms": score.latency_ms,
            },
            "label": None
            if label is None
            else {
                "is_fraud": label.is_fraud,
                "label_time": label.label_time,
                "source": label.source,
                "analyst": label.analyst,
            },
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def store_entries(store: TransactionStore, entries: Sequence[JournalEntry]) -> list[StoredResult]:
    """Store journaled transactions, with the labels that came with them, in one warehouse
    transaction; results in order."""
    return store.store_scored_batch(
        [entry.item for entry in entries],
        labels=[entry.label for entry in entries if entry.label is not None],
    )


def decode_entry(record: bytes) -> JournalEntry:
    """A journaled scored transaction back (NaN features come back as NaN)."""
    raw = orjson.loads(record)
    # Any profile's: a Sparkov transaction, or one without a role or with extra columns.
    canonical = stored_transaction(raw["transaction"])
    score: dict[str, Any] = raw["score"]
    label: dict[str, Any] | None = raw["label"]
    item = ScoredTransaction(
        transaction=ProtectedTransaction(
            transaction=canonical,
            card_last4=raw["card_last4"],
            fingerprint=raw["fingerprint"],
            sealed=raw["sealed"],
        ),
        score=ScoreRecord(
            model_name=score["model_name"],
            model_version=score["model_version"],
            fraud_probability=score["fraud_probability"],
            decision=score["decision"],
            scored_at=datetime.fromisoformat(score["scored_at"]),
            reasons=tuple(Reason(**reason) for reason in score["reasons"]),
            features={
                name: float("nan") if value is None else value
                for name, value in score["features"].items()
            },
            latency_ms=score["latency_ms"],
        ),
    )
    return JournalEntry(
        item=item,
        label=None
        if label is None
        else LabelRecord(
            trans_num=canonical.trans_num,
            is_fraud=label["is_fraud"],
            label_time=datetime.fromisoformat(label["label_time"]),
            source=label["source"],
            analyst=label["analyst"],
        ),
    )
