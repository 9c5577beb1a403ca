"""The warehouse: transactions, scores, labels and label events.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SURROGATE_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the four warehouse tables with their indexes."""
    op.create_table(
        "transactions",
        sa.Column("trans_num", sa.String(128), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=True),
        sa.Column("merchant", sa.String(256), nullable=True),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.Column("event_time", sa.DateTime(), nullable=False),
        sa.Column("record", JSON_DOCUMENT, nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("trans_num", name="pk_transactions"),
    )
    op.create_index("ix_transactions_event_time", "transactions", ["event_time"])
    op.create_index("ix_transactions_card_id_event_time", "transactions", ["card_id", "event_time"])
    op.create_table(
        "scores",
        sa.Column("id", SURROGATE_KEY, autoincrement=True, nullable=False),
        sa.Column("trans_num", sa.String(128), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("fraud_probability", sa.Double(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reasons", JSON_DOCUMENT, nullable=False),
        sa.Column("features", JSON_DOCUMENT, nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=True),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("role IN ('champion', 'challenger')", name="ck_scores_role"),
        sa.CheckConstraint(
            "decision IN ('approve', 'review', 'decline')", name="ck_scores_decision"
        ),
        sa.ForeignKeyConstraint(
            ["trans_num"],
            ["transactions.trans_num"],
            name="fk_scores_trans_num_transactions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_scores"),
        sa.UniqueConstraint(
            "trans_num", "model_version", "role", name="uq_scores_trans_num_model_version_role"
        ),
    )
    op.create_table(
        "labels",
        sa.Column("trans_num", sa.String(128), nullable=False),
        sa.Column("is_fraud", sa.Boolean(), nullable=False),
        sa.Column("label_time", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("trans_num", name="pk_labels"),
    )
    op.create_table(
        "label_events",
        sa.Column("id", SURROGATE_KEY, autoincrement=True, nullable=False),
        sa.Column("trans_num", sa.String(128), nullable=False),
        sa.Column("is_fraud", sa.Boolean(), nullable=False),
        sa.Column("label_time", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_label_events"),
    )
    op.create_index("ix_label_events_trans_num", "label_events", ["trans_num"])


def downgrade() -> None:
    """Drop the warehouse tables, dependants first."""
    op.drop_index("ix_label_events_trans_num", table_name="label_events")
    op.drop_table("label_events")
    op.drop_table("labels")
    op.drop_table("scores")
    op.drop_index("ix_transactions_card_id_event_time", table_name="transactions")
    op.drop_index("ix_transactions_event_time", table_name="transactions")
    op.drop_table("transactions")
