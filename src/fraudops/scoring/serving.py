"""A registered model made ready to serve: fast scorer, online features, decision thresholds.

A model serves transactions of the profile it was trained on (its request schema,
fraudops.data.profile_schema). Loading checks that it passes a canary: its scores of recent
(or built-in) transactions are probabilities, and it explains them.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudops.config import Settings
from fraudops.data.profile_schema import TransactionSchema, example_records, transaction_schema
from fraudops.data.profiles import SPARKOV
from fraudops.data.schema import CanonicalTransaction
from fraudops.features.clock import EventClock
from fraudops.features.online import (
    EVENT_TIME_MS,
    OnlineFeatureEngine,
    transaction_record,
)
from fraudops.features.state import FeatureStateStore
from fraudops.registry.base import ModelRegistry, ModelVersionInfo
from fraudops.scoring.model import FastModel, Reason
from fraudops.storage.base import Decision, ScoreRecord
from fraudops.training.bundle import ModelBundle

# Built-in canary transactions, used with whatever the service saw most recently.
CANARY_TRANSACTIONS: tuple[dict[str, Any], ...] = (
    {
        "trans_num": "canary-quiet-grocery",
        "cc_num": 4_000_000_000_000_001,
        "merchant": "fraud_Canary Grocers",
        "category": "grocery_pos",
        "amt": 42.10,
        "gender": "F",
        "lat": 40.71,
        "long": -74.0,
        "city_pop": 1_000_000,
        "dob": "1980-05-17",
        "merch_lat": 40.75,
        "merch_long": -73.9,
        "trans_date_trans_time": "2024-03-05T14:21:00",
    },
    {
        "trans_num": "canary-night-online",
        "cc_num": 4_000_000_000_000_002,
        "merchant": "fraud_Canary Online",
        "category": "shopping_net",
        "amt": 1_249.99,
        "gender": "M",
        "lat": 33.75,
        "long": -84.39,
        "city_pop": 500_000,
        "dob": "1950-01-01",
        "merch_lat": 34.5,
        "merch_long": -85.2,
        "trans_date_trans_time": "2024-03-05T02:10:00",
    },
)


class ModelRefusedError(ValueError):
    """A model that cannot serve: wrong inputs or a failed canary check."""


@dataclass(frozen=True, kw_only=True)
class ServingModel:
    """One registered version in service, with its online feature engine and thresholds."""

    role: str
    name: str
    version: int
    bundle: ModelBundle
    model: FastModel
    engine: OnlineFeatureEngine
    review_threshold: float
    decline_threshold: float
    loaded_at: datetime
    info: ModelVersionInfo
    # The transactions this model reads: those of the profile it was trained on.
    schema: TransactionSchema

    def decide(self, probability: float) -> Decision:
        """approve, review or decline by the configured thresholds."""
        return decide(probability, review=self.review_threshold, decline=self.decline_threshold)

    def score_record(
        self,
        *,
        probability: float,
        reasons: tuple[Reason, ...],
        features: npt.NDArray[np.float64],
        latency_ms: float,
    ) -> ScoreRecord:
        """What the warehouse keeps of this model's verdict on one transaction."""
        return ScoreRecord(
            model_name=self.name,
            model_version=str(self.version),
            fraud_probability=probability,
            decision=self.decide(probability),
            scored_at=datetime.now(UTC),
            reasons=reasons,
            features=dict(zip(self.bundle.feature_names, features.tolist(), strict=True)),
            latency_ms=latency_ms,
        )

    def record(self, transaction: CanonicalTransaction) -> dict[str, Any]:
        """The online-engine record of a validated canonical transaction."""
        fields = self.schema.record(transaction)
        fields[EVENT_TIME_MS] = transaction.event_time_ms
        return transaction_record(fields, self.bundle.spec)

    def stored_record(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """The online-engine record of a transaction as the warehouse stored it."""
        return self.record(self.schema.stored(stored))

    def serves_like(self, other: "ServingModel") -> bool:
        """Whether both models read transactions of the same profile."""
        return self.bundle.spec.profile == other.bundle.spec.profile

    def shares_features_with(self, other: "ServingModel") -> bool:
        """Whether both models read the very same feature vector."""
        return self.bundle.spec == other.bundle.spec

    def knows_category(self, transaction: CanonicalTransaction) -> bool:
        """Whether the transaction's category was seen in training (else it one-hots to 0s)."""
        column = self.bundle.spec.profile.category
        vocabulary = None if column is None else self.bundle.spec.vocabularies.get(column)
        return vocabulary is None or transaction.category in vocabulary


@dataclass(frozen=True)
class ScoredRow:
    """One model's probability and reasons for one feature vector."""

    probability: float
    reasons: tuple[Reason, ...]


def decide(probability: float, *, review: float, decline: float) -> Decision:
    """approve, review or decline: decline from `decline` up, review from `review` up."""
    if probability >= decline:
        return "decline"
    if probability >= review:
        return "review"
    return "approve"


def decide_many(
    probabilities: npt.ArrayLike, *, review: float, decline: float
) -> npt.NDArray[np.str_]:
    """`decide` over an array of probabilities at once (the batch path, same rule)."""
    scores = np.asarray(probabilities, dtype=np.float64)
    return np.select(
        [scores >= decline, scores >= review], ["decline", "review"], default="approve"
    )


def decision_thresholds(bundle: ModelBundle, settings: Settings) -> tuple[float, float]:
    """(review, decline): the settings', else the trained ones.

    The trained review threshold is the one fitted to the alert budget (review_capacity)
    when the model has one, else half the decline threshold.
    """
    decline = (
        settings.decline_threshold
        if settings.decline_threshold is not None
        else float(bundle.threshold)
    )
    review = settings.review_threshold
    if review is None:
        review = bundle.review_threshold if bundle.review_threshold is not None else decline / 2
    return min(review, decline), decline


def load_serving_model(
    *,
    registry: ModelRegistry,
    alias: str,
    store: FeatureStateStore,
    settings: Settings,
    clock: EventClock | None = None,
) -> ServingModel:
    """The version an alias points at, loaded and checked as able to serve canonical input."""
    info = registry.resolve(alias)
    bundle = registry.load_version(info.version)
    return serving_model(
        bundle=bundle, info=info, role=alias, store=store, settings=settings, clock=clock
    )


def serving_model(
    *,
    bundle: ModelBundle,
    info: ModelVersionInfo,
    role: str,
    store: FeatureStateStore,
    settings: Settings,
    clock: EventClock | None = None,
) -> ServingModel:
    """Wrap a loaded bundle for serving transactions of the profile it was trained on."""
    review, decline = decision_thresholds(bundle, settings)
    return ServingModel(
        role=role,
        name=info.name,
        version=info.version,
        bundle=bundle,
        model=FastModel(bundle, tree_walk="background"),
        engine=OnlineFeatureEngine(bundle.spec, store, clock=clock, kernel="background"),
        review_threshold=review,
        decline_threshold=decline,
        loaded_at=datetime.now(UTC),
        info=info,
        schema=transaction_schema(bundle.spec.profile),
    )


def canary_check(candidate: ServingModel, recent: Iterable[Mapping[str, Any]]) -> int:
    """Score recent and built-in transactions (state unchanged); the number checked.

    Raises ModelRefusedError unless every score is a probability and every row explains.
    """
    records = [dict(r) for r in recent]
    records += [candidate.record(transaction) for transaction in canary_transactions(candidate)]
    try:
        rows = np.vstack([candidate.engine.features(record) for record in records])
        probabilities = candidate.model.predict_many(rows)
        for row in rows[: min(len(rows), 8)]:
            candidate.model.reasons(row, top=3)
    except Exception as error:  # any failure of an unknown model refuses it
        msg = f"model v{candidate.version} failed its canary check: {error}"
        raise ModelRefusedError(msg) from error
    bad = [p for p in probabilities.tolist() if not (math.isfinite(p) and 0.0 <= p <= 1.0)]
    if len(probabilities) != len(records) or bad:
        msg = f"model v{candidate.version} gave {len(bad)} scores that are not probabilities"
        raise ModelRefusedError(msg)
    return len(records)


def canary_transactions(model: ServingModel) -> list[CanonicalTransaction]:
    """The built-in canary transactions of the model's profile."""
    schema = model.schema
    profile = schema.profile
    raws = CANARY_TRANSACTIONS if profile == SPARKOV else example_records(profile)
    return [schema.canonical(raw) for raw in raws]
