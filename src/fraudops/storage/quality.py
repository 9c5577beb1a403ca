"""The counts the data-quality checks (monitoring.quality) judge, measured in the warehouse.

Each is one statement, the same on SQLite and PostgreSQL, over the transactions whose event
time lies in [start, end) unless it says otherwise; start and end are naive UTC.
"""

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, extract, func, or_, select
from sqlalchemy.sql.functions import Function

from fraudops.storage.sql import SqlTables
from fraudops.storage.tables import CHAMPION_ROLE, LabelRow, ScoreRow, TransactionRow

DAY = timedelta(days=1)


class QualityQueries(SqlTables):
    """Counts over a window of stored transactions, their scores and their labels."""

    def count_between(self, start: datetime, end: datetime) -> int:
        """How many transactions the window holds."""
        return self._count(select(func.count()).where(_inside(start, end)))

    def first_event_time(self) -> datetime | None:
        """The earliest event time stored, None if nothing is."""
        with self.engine.connect() as connection:
            earliest: datetime | None = connection.scalar(
                select(func.min(TransactionRow.event_time))
            )
        return earliest

    def counts_per_day(self, starts: Sequence[datetime]) -> list[int]:
        """For each start, how many transactions lie in [start, start + 1 day); one statement."""
        time = TransactionRow.event_time
        columns = [
            func.coalesce(func.sum(case((and_(time >= at, time < at + DAY), 1), else_=0)), 0)
            for at in starts
        ]
        with self.engine.connect() as connection:
            counts = connection.execute(
                select(*columns).where(time >= min(starts), time < max(starts) + DAY)
            ).one()
        return [int(count) for count in counts]

    def missing_counts(self, start: datetime, end: datetime, fields: Sequence[str]) -> list[int]:
        """Per record field, how many of the window's records lack it (absent or blank)."""
        values = [TransactionRow.record[name].as_string() for name in fields]
        columns = [_count_where(or_(v.is_(None), v == "")) for v in values]
        with self.engine.connect() as connection:
            counts = connection.execute(select(*columns).where(_inside(start, end))).one()
        return [int(missing or 0) for missing in counts]

    def amount_counts(self, start: datetime, end: datetime, *, extreme: float) -> tuple[int, int]:
        """How many of the window's amounts are not positive, and how many exceed `extreme`."""
        amount = TransactionRow.amount
        with self.engine.connect() as connection:
            non_positive, above = connection.execute(
                select(_count_where(amount <= 0), _count_where(amount > extreme)).where(
                    _inside(start, end)
                )
            ).one()
        return int(non_positive or 0), int(above or 0)

    def unscored_count(self, start: datetime, end: datetime) -> int:
        """How many of the window's transactions have no champion score."""
        scored = (
            select(ScoreRow.id)
            .where(ScoreRow.trans_num == TransactionRow.trans_num)
            .where(ScoreRow.role == CHAMPION_ROLE)
        )
        return self._count(select(func.count()).where(_inside(start, end), ~exists(scored)))

    def champion_latency_quantile(
        self, start: datetime, end: datetime, *, quantile: float
    ) -> tuple[int, float | None]:
        """How many champion scores of the window recorded a latency, and the latencies'
        quantile by nearest rank (None when none did)."""
        latency = ScoreRow.latency_ms
        scores = (
            select(latency)
            .join(TransactionRow, TransactionRow.trans_num == ScoreRow.trans_num)
            .where(_inside(start, end), ScoreRow.role == CHAMPION_ROLE, latency.is_not(None))
        )
        recorded = self._count(select(func.count()).select_from(scores.subquery()))
        if recorded == 0:
            return 0, None
        rank = max(math.ceil(quantile * recorded) - 1, 0)
        with self.engine.connect() as connection:
            value = float(connection.scalar(scores.order_by(latency).offset(rank).limit(1)) or 0.0)
        return recorded, value

    def duplicate_count(self, start: datetime, end: datetime) -> int:
        """Transactions repeating another's card, merchant, amount and time under a new id."""
        key = (
            TransactionRow.card_id,
            TransactionRow.merchant,
            TransactionRow.amount,
            TransactionRow.event_time,
        )
        groups = (
            select((func.count() - 1).label("extra"))
            .where(_inside(start, end))
            .group_by(*key)
            .having(func.count() > 1)
            .subquery()
        )
        return self._count(select(func.coalesce(func.sum(groups.c.extra), 0)))

    def late_count(self, start: datetime, end: datetime, *, after: timedelta) -> int:
        """How many of the window's transactions arrived more than `after` past their time."""
        lag = _seconds_between(self.dialect, TransactionRow.received_at, TransactionRow.event_time)
        return self._count(
            select(_count_where(lag > after.total_seconds())).where(_inside(start, end))
        )

    def unlabelled_count(
        self, start: datetime, end: datetime, *, known_by: datetime
    ) -> tuple[int, int]:
        """How many transactions the window holds, and how many had no label by `known_by`."""
        labelled = (
            select(LabelRow.trans_num)
            .where(LabelRow.trans_num == TransactionRow.trans_num)
            .where(LabelRow.label_time <= known_by)
        )
        with self.engine.connect() as connection:
            matured, unlabelled = connection.execute(
                select(func.count(), _count_where(~exists(labelled))).where(_inside(start, end))
            ).one()
        return int(matured), int(unlabelled or 0)

    def unknown_label_count(self, start: datetime, end: datetime) -> tuple[int, int]:
        """How many labels have a label time in [start, end), and how many of those belong
        to no stored transaction."""
        stored = select(TransactionRow.trans_num).where(
            TransactionRow.trans_num == LabelRow.trans_num
        )
        with self.engine.connect() as connection:
            labels, unknown = connection.execute(
                select(func.count(), _count_where(~exists(stored))).where(
                    LabelRow.label_time >= start, LabelRow.label_time < end
                )
            ).one()
        return int(labels), int(unknown or 0)

    def _count(self, statement: Any) -> int:
        """A statement's single count (0 when it is null)."""
        with self.engine.connect() as connection:
            return int(connection.scalar(statement) or 0)


def _inside(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Event time in [start, end)."""
    return and_(TransactionRow.event_time >= start, TransactionRow.event_time < end)


def _count_where(condition: ColumnElement[bool]) -> Function[Any]:
    """SUM(CASE WHEN condition THEN 1 ELSE 0 END): a count of the rows it holds for."""
    return func.sum(case((condition, 1), else_=0))


def _seconds_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    """`later - earlier` in seconds, in the dialect's own date arithmetic."""
    if dialect == "postgresql":
        return extract("epoch", later - earlier)
    result: ColumnElement[Any] = (func.julianday(later) - func.julianday(earlier)) * 86_400.0
    return result
