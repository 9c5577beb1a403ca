"""Labels name the analyst who gave them (labels from the console), in both label tables.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("labels", "label_events")


def upgrade() -> None:
    """Add the nullable analyst column: earlier labels came from no named person."""
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("analyst", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop the analyst column."""
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("analyst")
