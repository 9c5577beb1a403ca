"""Personal data: card ids become keyed hashes, with the last four digits and a content
fingerprint beside them, and the raw record only sealed; a table of warehouse facts.

Rows stored before this revision keep their clear card number until the warehouse rewrites
them (`Warehouse.migrate` does, with the card-hash key of the settings): a migration script
cannot know the key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the columns and the facts table."""
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("card_last4", sa.String(4), nullable=True))
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))
        batch.add_column(sa.Column("sealed", sa.Text(), nullable=True))
    op.create_table(
        "warehouse_facts",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_warehouse_facts")),
    )


def downgrade() -> None:
    """Drop them (card ids stay hashed: the numbers are gone)."""
    op.drop_table("warehouse_facts")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("sealed")
        batch.drop_column("fingerprint")
        batch.drop_column("card_last4")
