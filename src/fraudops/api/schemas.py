"""Request and response bodies of the HTTP service (the OpenAPI document is built from them)."""

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Body
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fraudops.data.personal import masked_record
from fraudops.data.schema import CanonicalTransaction, refuse_nul
from fraudops.lifecycle.jobs import Job, Submission
from fraudops.scoring.service import ReloadReport, RoleReload
from fraudops.scoring.serving import ServingModel
from fraudops.storage.base import (
    LabelOutcome,
    LabelRecord,
    ScoreRecord,
    StoredResult,
    StoredTransaction,
)
from fraudops.times import utc_naive


class ReasonOut(BaseModel):
    """One reason for a score: the feature, its value, its pull towards fraud, in words."""

    feature: str
    value: float | None
    contribution: float = Field(description="Log-odds contribution towards fraud.")
    text: str


class ModelRef(BaseModel):
    """A registered model version."""

    name: str
    version: str


class ScoreResponse(BaseModel):
    """The champion's verdict on one transaction, as stored."""

    trans_num: str
    fraud_probability: float
    decision: Literal["approve", "review", "decline"]
    model: ModelRef
    reasons: list[ReasonOut]
    latency_ms: float = Field(
        description="Server-side time from validated request to stored result."
    )
    scoring_latency_ms: float | None = Field(
        description="Time the model path took when the transaction was first scored "
        "(features, probability, reasons)."
    )
    duplicate: bool = Field(
        description="True when the trans_num was already stored: this is the stored result "
        "and nothing new was written."
    )


def score_payload(outcome: StoredResult, *, latency_ms: float) -> dict[str, Any]:
    """The ScoreResponse of a stored outcome as plain data, ready for JSON (the fast path)."""
    score = outcome.score
    return {
        "trans_num": outcome.trans_num,
        "fraud_probability": score.fraud_probability,
        "decision": score.decision,
        "model": {"name": score.model_name, "version": score.model_version},
        "reasons": [reason.as_dict() for reason in score.reasons],
        "latency_ms": latency_ms,
        "scoring_latency_ms": score.latency_ms,
        "duplicate": not outcome.created,
    }


class BatchRequest(BaseModel):
    """Several transactions to score in one request."""

    model_config = ConfigDict(extra="forbid")

    transactions: list[CanonicalTransaction] = Field(min_length=1)


class SplitDocument(BaseModel):
    """Transactions as pandas writes a frame with `to_json(orient="split")`: what the live
    feed sends (its JSON string decoded once), one row per transaction."""

    model_config = ConfigDict(extra="forbid")

    columns: list[str] = Field(min_length=1, description="Field names, one per value of a row.")
    index: list[Any] | None = Field(default=None, description="Row labels; ignored.")
    data: list[list[Any]] = Field(
        min_length=1, description="One list of values per transaction, in column order."
    )


BATCH_SHAPES = (
    'a batch is one of: {"transactions": [{...}, ...]}; a JSON array of transactions '
    '[{...}, ...]; a split document {"columns": [...], "index": [...], "data": [[...], ...]} '
    "as pandas to_json(orient='split') writes it, or the live feed's JSON string holding one"
)
SCORE_SHAPE = (
    "one transaction is a JSON object of its fields; several (an array, "
    '{"transactions": [...]} or a split document) go to POST /v1/score/batch'
)

BatchBody = Annotated[
    BatchRequest | Annotated[list[CanonicalTransaction], Field(min_length=1)] | SplitDocument | str,
    Body(
        description="The transactions, in one of the accepted shapes: "
        + BATCH_SHAPES
        + " (the string is decoded, then read as a split document).",
    ),
]


class BatchResponse(BaseModel):
    """One result per transaction, in request order."""

    results: list[ScoreResponse]


class LabelIn(BaseModel):
    """Whether a transaction was fraud, and when that became known."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    trans_num: str = Field(min_length=1, max_length=128)
    is_fraud: bool
    label_time: datetime | None = Field(
        default=None, description="When the label became known; defaults to now."
    )
    source: str = Field(default="api", min_length=1, max_length=64)
    analyst: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Who gave the label, when a person did (the console sends its analyst).",
    )

    @field_validator("trans_num", "source", "analyst")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None:
            refuse_nul(value)
        return value

    @field_validator("label_time")
    @classmethod
    def _utc_since_1970(cls, value: datetime | None) -> datetime | None:
        """As a naive UTC time, on or after 1970-01-01."""
        if value is None:
            return None
        if value.tzinfo is not None:
            try:
                value = utc_naive(value)
            except OverflowError:
                msg = "is out of range once converted to UTC"
                raise ValueError(msg) from None
        if value < datetime(1970, 1, 1):
            msg = "must be on or after 1970-01-01"
            raise ValueError(msg)
        return value

    def record(self, *, now: datetime) -> LabelRecord:
        """The label record to store (known now when no label_time was given)."""
        time = self.label_time if self.label_time is not None else now
        return LabelRecord(
            trans_num=self.trans_num,
            is_fraud=self.is_fraud,
            label_time=time,
            source=self.source,
            analyst=self.analyst,
        )


class LabelsIn(BaseModel):
    """Several labels at once."""

    model_config = ConfigDict(extra="forbid")

    labels: list[LabelIn] = Field(min_length=1)


class LabelsResponse(BaseModel):
    """What the labels did: new, repeated, changed, and those with no transaction yet."""

    stored: int
    unchanged: int
    updated: int
    unknown_trans_nums: list[str] = Field(
        description="Labels kept for transactions not stored yet; they match on arrival."
    )

    @classmethod
    def from_outcome(cls, outcome: LabelOutcome) -> "LabelsResponse":
        """The response for a label outcome."""
        return cls(
            stored=outcome.stored,
            unchanged=outcome.unchanged,
            updated=outcome.updated,
            unknown_trans_nums=list(outcome.unknown_trans_nums),
        )


class StoredScoreOut(BaseModel):
    """One stored model score."""

    model: ModelRef
    fraud_probability: float
    decision: str
    scored_at: datetime
    reasons: list[ReasonOut]
    features: dict[str, float | None]
    latency_ms: float | None

    @classmethod
    def from_record(cls, score: ScoreRecord) -> "StoredScoreOut":
        """The output form of a stored score (missing feature values as null)."""
        return cls(
            model=ModelRef(name=score.model_name, version=score.model_version),
            fraud_probability=score.fraud_probability,
            decision=score.decision,
            scored_at=score.scored_at,
            reasons=[ReasonOut(**vars(reason)) for reason in score.reasons],
            features={
                name: (None if math.isnan(value) else value)  # NaN is not JSON
                for name, value in score.features.items()
            },
            latency_ms=score.latency_ms,
        )


class LabelOut(BaseModel):
    """A stored label."""

    is_fraud: bool
    label_time: datetime
    source: str
    analyst: str | None = None


class TransactionOut(BaseModel):
    """What is stored about a transaction."""

    trans_num: str
    record: dict[str, Any] = Field(
        description="The stored record; personal fields masked (the card as `card_last4`) "
        "unless the token may read personal data."
    )
    personal_data: Literal["masked", "shown"] = Field(
        description="Whether the record shows personal fields."
    )
    raw_record: dict[str, Any] | None = Field(
        default=None,
        description="The record as received, names and street included: for tokens that may "
        "read personal data, when the service keeps raw records (FRAUDOPS_RAW_RECORD_KEY).",
    )
    event_time: datetime
    received_at: datetime
    champion: StoredScoreOut | None
    challengers: list[StoredScoreOut]
    label: LabelOut | None

    @classmethod
    def from_stored(
        cls, stored: StoredTransaction, *, personal: bool, raw: dict[str, Any] | None = None
    ) -> "TransactionOut":
        """The output form of a stored transaction; personal fields only if `personal`."""
        record = (
            {**stored.record, "card_last4": stored.card_last4}
            if personal
            else masked_record(stored.record, card_last4=stored.card_last4)
        )
        return cls(
            trans_num=stored.trans_num,
            record=record,
            personal_data="shown" if personal else "masked",
            raw_record=raw if personal else None,
            event_time=stored.event_time,
            received_at=stored.received_at,
            champion=None
            if stored.champion is None
            else StoredScoreOut.from_record(stored.champion),
            challengers=[StoredScoreOut.from_record(s) for s in stored.challengers],
            label=None
            if stored.label is None
            else LabelOut(
                is_fraud=stored.label.is_fraud,
                label_time=stored.label.label_time,
                source=stored.label.source,
                analyst=stored.label.analyst,
            ),
        )


class ModelOut(BaseModel):
    """A model in service: version, thresholds and what it scored in training."""

    name: str
    version: str
    model_type: str
    loaded_at: datetime
    registered_at: datetime
    review_threshold: float
    decline_threshold: float
    trained_threshold: float
    metrics: dict[str, float]
    training: dict[str, str]

    @classmethod
    def from_serving(cls, model: ServingModel) -> "ModelOut":
        """The output form of a serving model."""
        return cls(
            name=model.name,
            version=str(model.version),
            model_type=model.bundle.model_type,
            loaded_at=model.loaded_at,
            registered_at=model.info.created_at,
            review_threshold=model.review_threshold,
            decline_threshold=model.decline_threshold,
            trained_threshold=float(model.bundle.threshold),
            metrics={**model.bundle.metrics, **model.info.metrics},
            training=dict(model.bundle.training),
        )


class ModelsResponse(BaseModel):
    """The champion and challenger in service."""

    champion: ModelOut | None
    challenger: ModelOut | None


class RoleReloadOut(BaseModel):
    """What a reload did to one role."""

    outcome: Literal["swapped", "unchanged", "removed", "rejected", "failed", "absent"]
    version: str | None
    previous: str | None
    detail: str | None

    @classmethod
    def from_report(cls, report: RoleReload) -> "RoleReloadOut":
        """The output form of one role's reload."""
        return cls(
            outcome=report.outcome,
            version=None if report.version is None else str(report.version),
            previous=None if report.previous is None else str(report.previous),
            detail=report.detail,
        )


class ReloadResponse(BaseModel):
    """What a reload did."""

    changed: bool
    champion: RoleReloadOut
    challenger: RoleReloadOut

    @classmethod
    def from_report(cls, report: ReloadReport) -> "ReloadResponse":
        """The output form of a reload report."""
        return cls(
            changed=report.changed,
            champion=RoleReloadOut.from_report(report.champion),
            challenger=RoleReloadOut.from_report(report.challenger),
        )


class Problem(BaseModel):
    """An error: what went wrong, and for bad input which fields and why."""

    detail: str | list[dict[str, Any]]


class RetrainRequest(BaseModel):
    """Options of a retraining; every field may be left out."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    trigger: str = Field(
        default="api",
        min_length=1,
        max_length=64,
        description="Why the retraining was asked for, as recorded in the audit trail.",
    )
    as_of: datetime | None = Field(
        default=None,
        description="The moment to retrain as of (labels known by then, matured up to it "
        "minus the label delay); defaults to the latest stored transaction.",
    )

    @field_validator("trigger")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        refuse_nul(value)
        return value


class JobAccepted(BaseModel):
    """A background job: the one just started, or the one already running."""

    job_id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    status_url: str = Field(description="Where to poll the job's status (GET).")
    accepted: bool = Field(
        description="False when another job was running: this is that job, and nothing new "
        "was started (one job runs at a time)."
    )
    detail: str

    @classmethod
    def from_submission(cls, submission: Submission, *, status_url: str) -> "JobAccepted":
        """The answer to a submission."""
        job = submission.job
        detail = (
            f"{job.kind} job started"
            if submission.accepted
            else f"a {job.kind} job is already {job.status}; nothing new was started"
        )
        return cls(
            job_id=job.id,
            kind=job.kind,
            status=job.status,
            status_url=status_url,
            accepted=submission.accepted,
            detail=detail,
        )


class JobOut(BaseModel):
    """A background job's status and, once finished, its result or error."""

    job_id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None = Field(
        description="What the job produced (for a retraining: the version registered, its "
        "alias, the data it learnt from, its validation metrics, the reload)."
    )
    error: str | None

    @classmethod
    def from_job(cls, job: Job) -> "JobOut":
        """The output form of a job."""
        return cls(
            job_id=job.id,
            kind=job.kind,
            status=job.status,
            submitted_at=job.submitted_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            result=job.result,
            error=job.error,
        )
