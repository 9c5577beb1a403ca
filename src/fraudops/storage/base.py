"""The transaction store edge: the records it keeps and what every store offers."""

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import pandas as pd

from fraudops.data.personal import ProtectedTransaction
from fraudops.data.schema import CanonicalTransaction

Decision = Literal["approve", "review", "decline"]


@dataclass(frozen=True)
class Reason:
    """Why a model scored as it did: a feature, its value, its pull towards fraud, in words."""

    feature: str
    value: float | None  # None: the feature was missing (e.g. a card's first purchase)
    contribution: float  # log-odds towards fraud
    text: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form, as stored and as the API answers it."""
        return {
            "feature": self.feature,
            "value": self.value,
            "contribution": self.contribution,
            "text": self.text,
        }


@dataclass(frozen=True, kw_only=True)
class ScoreRecord:
    """One model's verdict on a transaction; non-finite features are kept as NaN (null stored)."""

    model_name: str
    model_version: str
    fraud_probability: float
    decision: Decision
    scored_at: datetime
    reasons: tuple[Reason, ...] = ()
    features: Mapping[str, float] = field(default_factory=dict)
    latency_ms: float | None = None


@dataclass(frozen=True, kw_only=True)
class LabelRecord:
    """Whether a transaction was fraud, as known at `label_time` from `source`."""

    trans_num: str
    is_fraud: bool
    label_time: datetime
    source: str = "api"
    analyst: str | None = None  # who gave it, for labels from the console's analysts


@dataclass(frozen=True, kw_only=True)
class StoredResult:
    """The stored outcome of one transaction; `created` is False when it was already stored."""

    trans_num: str
    score: ScoreRecord
    shadow: ScoreRecord | None
    created: bool


@dataclass(frozen=True, kw_only=True)
class StoredTransaction:
    """A stored transaction with its raw record, every score and its label if one is known."""

    trans_num: str
    record: dict[str, Any]
    event_time: datetime
    received_at: datetime
    champion: ScoreRecord | None
    challengers: tuple[ScoreRecord, ...]
    label: LabelRecord | None
    card_last4: str | None = None
    sealed: str | None = None  # the raw record, encrypted (data.personal), if it was kept


@dataclass(frozen=True, kw_only=True)
class KnownTransaction:
    """A stored transaction as a new request with its trans_num is checked against it."""

    trans_num: str
    fingerprint: str | None  # of the stored content (data.personal); None if unknown
    record: dict[str, Any]
    result: StoredResult  # what a repeat of it answers


@dataclass(frozen=True, kw_only=True)
class HistoricTransaction:
    """A stored transaction's raw record with its label, for rebuilding online state."""

    record: dict[str, Any]
    event_time: datetime
    label: LabelRecord | None


@dataclass(frozen=True, kw_only=True)
class LabelOutcome:
    """What a batch of labels did: new, repeated, changed, and those with no transaction yet."""

    stored: int
    unchanged: int
    updated: int
    unknown_trans_nums: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ScoredTransaction:
    """One transaction with its champion score and optional shadow score, for batch storage."""

    transaction: "Mapping[str, Any] | CanonicalTransaction | ProtectedTransaction"
    score: ScoreRecord
    shadow: ScoreRecord | None = None


@dataclass(frozen=True, kw_only=True)
class LifecycleEvent:
    """One audited lifecycle decision: what was decided, why, by whom, on which evidence."""

    kind: str  # monitor, retrain, compare, promote, rollback
    trigger: str  # the policy reason, "schedule", "manual", "api", "registered"
    actor: str  # "scheduler", "cli", "api", "airflow", ...
    verdict: str  # e.g. "retrain", "ok", "promoted", "kept", "insufficient_evidence"
    detail: dict[str, Any] = field(default_factory=dict)  # inputs and metrics, JSON-ready
    model_name: str | None = None
    champion_version: str | None = None
    challenger_version: str | None = None
    as_of: datetime | None = None  # the event-time moment the decision looked from
    at: datetime | None = None  # wall clock; set when stored
    id: int | None = None  # set when stored


@dataclass(frozen=True, kw_only=True)
class MonitorRun:
    """A stored monitoring run: its verdict and its whole result document."""

    as_of: datetime
    model_name: str | None
    model_version: str | None
    retrain: bool
    reasons: list[str]
    result: dict[str, Any]  # JSON-ready
    run_at: datetime | None = None  # wall clock; set when stored
    id: int | None = None  # set when stored


class TransactionStore(Protocol):
    """Where scored transactions and labels are kept, idempotently by trans_num."""

    def store_scored(
        self,
        transaction: "Mapping[str, Any] | CanonicalTransaction",
        score: ScoreRecord,
        *,
        shadow: ScoreRecord | None = None,
    ) -> StoredResult:
        """Store a transaction with its scores, or return what is stored if it already is."""
        ...

    def store_scored_batch(
        self, items: Sequence[ScoredTransaction], *, labels: Sequence[LabelRecord] = ()
    ) -> list[StoredResult]:
        """Store many scored transactions (and labels that came with them) at once, in one
        database transaction."""
        ...

    def get_transaction(self, trans_num: str) -> StoredTransaction | None:
        """The stored transaction with its scores and label, or None."""
        ...

    def record_labels(
        self, labels: Sequence[LabelRecord], *, stored_elsewhere: Collection[str] = ()
    ) -> LabelOutcome:
        """Store labels idempotently; labels of unknown transactions are kept and reported
        (those in `stored_elsewhere`, durably on their way in, are known)."""
        ...

    def labelled_between(
        self, start: datetime, end: datetime, *, labels_known_by: datetime | None = None
    ) -> pd.DataFrame:
        """Labelled transactions with event_time in [start, end), with the champion score."""
        ...

    def transactions_since(self, time: datetime) -> Iterator[HistoricTransaction]:
        """Stored transactions with event_time at or after `time`, in event-time order."""
        ...
