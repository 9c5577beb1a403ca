"""Drop the (card_id, event_time) index: no query reads by card, and every insert paid for it.

Its random key order cost about a third of a scored transaction's insert time on a warehouse
holding a few weeks of history (SQLite); the event-time index serves every time-range read.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_transactions_card_id_event_time", table_name="transactions")


def downgrade() -> None:
    """Create it again."""
    op.create_index("ix_transactions_card_id_event_time", "transactions", ["card_id", "event_time"])
