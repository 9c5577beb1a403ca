"""Indexes for the analyst console's reads: the review queue, a card's history, a merchant's
rates, and the newest champion score.

- `ix_scores_alert_trans_num` (partial: champion reviews and declines, ~1-2 % of scores)
  by `trans_num`: the queue, newest first, walks the transactions back in event time and
  looks each up in this small index (in memory), instead of reading every transaction's
  score row to see its decision (at 1 M transactions: 46 ms instead of 192).
- `ix_scores_alert_risk`, the same rows by `fraud_probability`: the queue, riskiest first,
  walks it backwards and stops at its page (2 ms).
- `ix_scores_champion_scored_at` (partial: champion scores) by `scored_at`: the newest
  champion score (the ingestion-lag alert). Partial, not (role, scored_at): SQLite, without
  statistics, would join scores on `role = 'champion'` through a (role, ...) index and read
  every champion score per transaction (a day's report on the demo's 146,000 rows ran for
  minutes).
- `ix_transactions_card_id_event_time` (dropped by 0002 when nothing read by card): a card's
  recent history on the case page.
- `ix_transactions_merchant_event_time`: a merchant's recent alert and fraud rates.

Labels need none: `labels.trans_num` is the primary key. The cost is on the write path:
each stored transaction now updates three indexes more (the partial ones only for alerts).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALERTS = sa.text("role = 'champion' AND decision IN ('review', 'decline')")
CHAMPION = sa.text("role = 'champion'")


def upgrade() -> None:
    """Create the indexes."""
    for name, column in (
        ("ix_scores_alert_trans_num", "trans_num"),
        ("ix_scores_alert_risk", "fraud_probability"),
    ):
        op.create_index(name, "scores", [column], postgresql_where=ALERTS, sqlite_where=ALERTS)
    op.create_index(
        "ix_scores_champion_scored_at",
        "scores",
        ["scored_at"],
        postgresql_where=CHAMPION,
        sqlite_where=CHAMPION,
    )
    op.create_index("ix_transactions_card_id_event_time", "transactions", ["card_id", "event_time"])
    op.create_index(
        "ix_transactions_merchant_event_time", "transactions", ["merchant", "event_time"]
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_transactions_merchant_event_time", table_name="transactions")
    op.drop_index("ix_transactions_card_id_event_time", table_name="transactions")
    op.drop_index("ix_scores_champion_scored_at", table_name="scores")
    op.drop_index("ix_scores_alert_risk", table_name="scores")
    op.drop_index("ix_scores_alert_trans_num", table_name="scores")
