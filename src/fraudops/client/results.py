"""What the service answers, typed: the mirror of its response schemas (api/schemas.py), kept
apart so that a client imports pydantic and httpx, not the service. Fields the service adds
later are ignored, so an older client keeps working."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ModelRef(_Answer):
    """A registered model version."""

    name: str
    version: str


class Reason(_Answer):
    """One reason for a score: the feature, its value, its pull towards fraud, in words."""

    feature: str
    value: float | None
    contribution: float
    text: str


class ScoreResult(_Answer):
    """The champion's verdict on one transaction, as stored; `duplicate` when the trans_num
    was stored before (by another client, or by an earlier attempt of this one)."""

    trans_num: str
    fraud_probability: float
    decision: Literal["approve", "review", "decline"]
    model: ModelRef
    reasons: tuple[Reason, ...]
    latency_ms: float
    scoring_latency_ms: float | None
    duplicate: bool


class LabelsResult(_Answer):
    """What labels did: new, repeated, changed, and those kept for transactions not seen yet."""

    stored: int
    unchanged: int
    updated: int
    unknown_trans_nums: tuple[str, ...]


class StoredScore(_Answer):
    """One stored model score of a transaction."""

    model: ModelRef
    fraud_probability: float
    decision: str
    scored_at: datetime
    reasons: tuple[Reason, ...]
    features: dict[str, float | None]
    latency_ms: float | None


class StoredLabel(_Answer):
    """A stored label."""

    is_fraud: bool
    label_time: datetime
    source: str
    analyst: str | None = None  # the person, for labels from the console's analysts


class StoredTransaction(_Answer):
    """What the service stores about a transaction (personal fields masked unless the token
    may read them)."""

    trans_num: str
    record: dict[str, Any]
    personal_data: Literal["masked", "shown"]
    raw_record: dict[str, Any] | None = None
    event_time: datetime
    received_at: datetime
    champion: StoredScore | None
    challengers: tuple[StoredScore, ...]
    label: StoredLabel | None


class ModelInfo(_Answer):
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


class ModelsInService(_Answer):
    """The champion and challenger in service."""

    champion: ModelInfo | None
    challenger: ModelInfo | None
