"""The warehouse tables: scored transactions, their scores, labels and the labels' history.

Types are portable between SQLite and PostgreSQL: JSON (JSONB on PostgreSQL) and naive
date-times that always hold UTC. The Alembic migrations in `migrations/versions` create
exactly these tables; a test checks that the two never drift apart.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

CHAMPION_ROLE = "champion"
CHALLENGER_ROLE = "challenger"
DECISIONS = ("approve", "review", "decline")
# The rows of the partial indexes of the review queue: the champion's alerts.
ALERTS = text(f"role = '{CHAMPION_ROLE}' AND decision IN ('review', 'decline')")
CHAMPION = text(f"role = '{CHAMPION_ROLE}'")

# Named constraints keep migrations reproducible on every backend (SQLite batch mode needs them).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Surrogate keys: BIGINT on PostgreSQL, INTEGER on SQLite (its only auto-incrementing type).
SURROGATE_KEY: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")
JSON_DOCUMENT: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base holding the warehouse metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=False)}  # noqa: RUF012 - SQLAlchemy API


class TransactionRow(Base):
    """One scored transaction, keyed by its trans_num: its record with the card as a keyed
    hash and no identifying fields (data.personal), and the raw record only sealed."""

    __tablename__ = "transactions"
    __table_args__ = (
        Index("ix_transactions_event_time", "event_time"),
        # The console's case page: a card's and a merchant's recent transactions.
        Index("ix_transactions_card_id_event_time", "card_id", "event_time"),
        Index("ix_transactions_merchant_event_time", "merchant", "event_time"),
    )

    trans_num: Mapped[str] = mapped_column(String(128), primary_key=True)
    card_id: Mapped[str | None] = mapped_column(String(64))
    merchant: Mapped[str | None] = mapped_column(String(256))
    category: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[float] = mapped_column(Double())
    event_time: Mapped[datetime]
    record: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT)
    received_at: Mapped[datetime]
    card_last4: Mapped[str | None] = mapped_column(String(4))
    fingerprint: Mapped[str | None] = mapped_column(String(64))  # of the whole content
    sealed: Mapped[str | None] = mapped_column(Text())  # the raw record, encrypted


class ScoreRow(Base):
    """One model's score of a transaction: the champion's decision or a challenger's shadow."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("trans_num", "model_version", "role"),
        CheckConstraint(f"role IN ('{CHAMPION_ROLE}', '{CHALLENGER_ROLE}')", name="role"),
        CheckConstraint(
            "decision IN (" + ", ".join(f"'{d}'" for d in DECISIONS) + ")", name="decision"
        ),
        # The review queue: champion reviews and declines, newest or riskiest first.
        Index(
            "ix_scores_alert_trans_num", "trans_num", postgresql_where=ALERTS, sqlite_where=ALERTS
        ),
        Index(
            "ix_scores_alert_risk",
            "fraud_probability",
            postgresql_where=ALERTS,
            sqlite_where=ALERTS,
        ),
        # The newest champion score (ingestion lag); partial, see migration 0006.
        Index(
            "ix_scores_champion_scored_at",
            "scored_at",
            postgresql_where=CHAMPION,
            sqlite_where=CHAMPION,
        ),
    )

    id: Mapped[int] = mapped_column(SURROGATE_KEY, primary_key=True, autoincrement=True)
    trans_num: Mapped[str] = mapped_column(
        String(128), ForeignKey("transactions.trans_num", ondelete="CASCADE")
    )
    model_name: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    fraud_probability: Mapped[float] = mapped_column(Double())
    decision: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON_DOCUMENT)
    features: Mapped[dict[str, float | None]] = mapped_column(JSON_DOCUMENT)
    latency_ms: Mapped[float | None] = mapped_column(Double())
    scored_at: Mapped[datetime]


class LabelRow(Base):
    """The current label of a trans_num; no foreign key, since labels may come first."""

    __tablename__ = "labels"

    trans_num: Mapped[str] = mapped_column(String(128), primary_key=True)
    is_fraud: Mapped[bool] = mapped_column(Boolean())
    label_time: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(64))
    analyst: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime]


class LabelEventRow(Base):
    """Every label value a trans_num was given, in arrival order: the labels' history."""

    __tablename__ = "label_events"
    __table_args__ = (Index("ix_label_events_trans_num", "trans_num"),)

    id: Mapped[int] = mapped_column(SURROGATE_KEY, primary_key=True, autoincrement=True)
    trans_num: Mapped[str] = mapped_column(String(128))
    is_fraud: Mapped[bool] = mapped_column(Boolean())
    label_time: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(64))
    analyst: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime]


class MonitorRunRow(Base):
    """One monitoring run: when, over which window, for which champion, and what it found."""

    __tablename__ = "monitor_runs"
    __table_args__ = (Index("ix_monitor_runs_as_of", "as_of"),)

    id: Mapped[int] = mapped_column(SURROGATE_KEY, primary_key=True, autoincrement=True)
    run_at: Mapped[datetime]  # wall clock
    as_of: Mapped[datetime]  # the moment the run looked from (event time, UTC)
    model_name: Mapped[str | None] = mapped_column(String(256))
    model_version: Mapped[str | None] = mapped_column(String(64))
    retrain: Mapped[bool] = mapped_column(Boolean())
    reasons: Mapped[list[str]] = mapped_column(JSON_DOCUMENT)
    result: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT)


class LifecycleEventRow(Base):
    """The audit trail: every lifecycle decision with its trigger, inputs, metrics and verdict."""

    __tablename__ = "lifecycle_events"
    __table_args__ = (Index("ix_lifecycle_events_at", "at"),)

    id: Mapped[int] = mapped_column(SURROGATE_KEY, primary_key=True, autoincrement=True)
    at: Mapped[datetime]  # wall clock
    as_of: Mapped[datetime | None]  # event-time moment the decision looked from
    kind: Mapped[str] = mapped_column(String(32))  # monitor, retrain, compare, promote, rollback
    trigger: Mapped[str] = mapped_column(String(256))  # policy reason, schedule, manual, api
    actor: Mapped[str] = mapped_column(String(128))  # scheduler, cli:<user>, api, airflow
    model_name: Mapped[str | None] = mapped_column(String(256))
    champion_version: Mapped[str | None] = mapped_column(String(64))
    challenger_version: Mapped[str | None] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT)  # inputs and metrics


class WarehouseFactRow(Base):
    """A fact about the warehouse itself, e.g. which card-hash key made its card ids."""

    __tablename__ = "warehouse_facts"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class AlertOutboxRow(Base):
    """One alert waiting for (or done with) delivery: the durable outbox the sender drains."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        UniqueConstraint("dedup_key"),
        Index("ix_alert_outbox_delivered_at_next_attempt_at", "delivered_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(SURROGATE_KEY, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # decline, monitoring, lifecycle, quality
    dedup_key: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]  # wall clock, UTC
    payload: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT)  # the whole event
    attempts: Mapped[int] = mapped_column(Integer())
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text())
