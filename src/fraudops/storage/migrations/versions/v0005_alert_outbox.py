"""The alert outbox: events waiting for delivery by e-mail and webhook, with retry state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SURROGATE_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DUE_INDEX = "ix_alert_outbox_delivered_at_next_attempt_at"


def upgrade() -> None:
    """Create alert_outbox."""
    op.create_table(
        "alert_outbox",
        sa.Column("id", SURROGATE_KEY, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dedup_key", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_outbox"),
        sa.UniqueConstraint("dedup_key", name="uq_alert_outbox_dedup_key"),
    )
    op.create_index(DUE_INDEX, "alert_outbox", ["delivered_at", "next_attempt_at"])


def downgrade() -> None:
    """Drop alert_outbox."""
    op.drop_index(DUE_INDEX, table_name="alert_outbox")
    op.drop_table("alert_outbox")
