"""Monitoring runs and the lifecycle audit trail.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SURROGATE_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create monitor_runs and lifecycle_events."""
    op.create_table(
        "monitor_runs",
        sa.Column("id", SURROGATE_KEY, autoincrement=True, nullable=False),
        sa.Column("run_at", sa.DateTime(), nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("retrain", sa.Boolean(), nullable=False),
        sa.Column("reasons", JSON_DOCUMENT, nullable=False),
        sa.Column("result", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_runs"),
    )
    op.create_index("ix_monitor_runs_as_of", "monitor_runs", ["as_of"])
    op.create_table(
        "lifecycle_events",
        sa.Column("id", SURROGATE_KEY, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(256), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=True),
        sa.Column("champion_version", sa.String(64), nullable=True),
        sa.Column("challenger_version", sa.String(64), nullable=True),
        sa.Column("verdict", sa.String(64), nullable=False),
        sa.Column("detail", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lifecycle_events"),
    )
    op.create_index("ix_lifecycle_events_at", "lifecycle_events", ["at"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index("ix_lifecycle_events_at", table_name="lifecycle_events")
    op.drop_table("lifecycle_events")
    op.drop_index("ix_monitor_runs_as_of", table_name="monitor_runs")
    op.drop_table("monitor_runs")
