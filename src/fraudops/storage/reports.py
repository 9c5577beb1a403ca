"""What the daily operations report (monitoring.daily) reads: one day's scored transactions,
their champion decisions, their labels and the model versions that scored them.

Each read is one statement, the same on SQLite and PostgreSQL, over the transactions whose
event time lies in [start, end); start and end are naive UTC. The decision of a transaction
is its champion's; its label is the current one (the `labels` table).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, select

from fraudops.storage.sql import SqlTables
from fraudops.storage.tables import CHAMPION_ROLE, LabelRow, ScoreRow, TransactionRow

ALERT_DECISIONS = ("review", "decline")


@dataclass(frozen=True, kw_only=True)
class DayTotals:
    """Counts and amounts of a window's transactions, by champion decision and by label."""

    transactions: int  # stored, scored or not
    scored: int  # with a champion score
    scored_amount: float
    reviews: int
    review_amount: float
    declines: int
    decline_amount: float
    frauds: int  # labelled fraud, scored or not
    fraud_amount: float


@dataclass(frozen=True, kw_only=True)
class LabelledAlert:
    """A review or decline of the window that has a label: when it happened and was labelled."""

    trans_num: str
    event_time: datetime
    scored_at: datetime
    label_time: datetime
    source: str
    is_fraud: bool


@dataclass(frozen=True, kw_only=True)
class ServedModel:
    """A model version that made champion decisions in the window, and how many."""

    model_name: str
    model_version: str
    scored: int
    first_scored_at: datetime
    last_scored_at: datetime


class ReportQueries(SqlTables):
    """Reads of one window of stored transactions for the daily operations report."""

    def day_totals(self, start: datetime, end: datetime) -> DayTotals:
        """Transactions, decisions and confirmed frauds of the window, with their amounts."""
        amount = TransactionRow.amount
        decision = ScoreRow.decision
        fraud = LabelRow.is_fraud.is_(True)
        statement = (
            select(
                func.count(),
                func.count(ScoreRow.id),
                _sum_where(ScoreRow.id.is_not(None), amount),
                _sum_where(decision == "review", 1),
                _sum_where(decision == "review", amount),
                _sum_where(decision == "decline", 1),
                _sum_where(decision == "decline", amount),
                _sum_where(fraud, 1),
                _sum_where(fraud, amount),
            )
            .select_from(TransactionRow)
            .outerjoin(ScoreRow, _champion_of_transaction())
            .outerjoin(LabelRow, LabelRow.trans_num == TransactionRow.trans_num)
            .where(_inside(start, end))
        )
        with self.engine.connect() as connection:
            row = connection.execute(statement).one()
        return DayTotals(
            transactions=int(row[0]),
            scored=int(row[1]),
            scored_amount=float(row[2] or 0.0),
            reviews=int(row[3] or 0),
            review_amount=float(row[4] or 0.0),
            declines=int(row[5] or 0),
            decline_amount=float(row[6] or 0.0),
            frauds=int(row[7] or 0),
            fraud_amount=float(row[8] or 0.0),
        )

    def labelled_alerts(self, start: datetime, end: datetime) -> list[LabelledAlert]:
        """The window's reviews and declines that carry a label, in event-time order."""
        statement = (
            select(
                TransactionRow.trans_num,
                TransactionRow.event_time,
                ScoreRow.scored_at,
                LabelRow.label_time,
                LabelRow.source,
                LabelRow.is_fraud,
            )
            .join(ScoreRow, _champion_of_transaction())
            .join(LabelRow, LabelRow.trans_num == TransactionRow.trans_num)
            .where(_inside(start, end), ScoreRow.decision.in_(ALERT_DECISIONS))
            .order_by(TransactionRow.event_time, TransactionRow.trans_num)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            LabelledAlert(
                trans_num=row.trans_num,
                event_time=row.event_time,
                scored_at=row.scored_at,
                label_time=row.label_time,
                source=row.source,
                is_fraud=bool(row.is_fraud),
            )
            for row in rows
        ]

    def served_models(self, start: datetime, end: datetime) -> list[ServedModel]:
        """The champion versions that scored the window's transactions, most used first."""
        statement = (
            select(
                ScoreRow.model_name,
                ScoreRow.model_version,
                func.count(),
                func.min(ScoreRow.scored_at),
                func.max(ScoreRow.scored_at),
            )
            .join(TransactionRow, TransactionRow.trans_num == ScoreRow.trans_num)
            .where(_inside(start, end), ScoreRow.role == CHAMPION_ROLE)
            .group_by(ScoreRow.model_name, ScoreRow.model_version)
            .order_by(func.count().desc(), ScoreRow.model_name, ScoreRow.model_version)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            ServedModel(
                model_name=name,
                model_version=version,
                scored=int(count),
                first_scored_at=first,
                last_scored_at=last,
            )
            for name, version, count, first, last in rows
        ]

    def alert_count(self, start: datetime, end: datetime) -> int:
        """Reviews and declines (champion decisions) of the window's transactions."""
        statement = (
            select(func.count())
            .select_from(TransactionRow)
            .join(ScoreRow, _champion_of_transaction())
            .where(_inside(start, end), ScoreRow.decision.in_(ALERT_DECISIONS))
        )
        with self.engine.connect() as connection:
            return int(connection.scalar(statement) or 0)

    def newest_event_time(self) -> datetime | None:
        """The latest stored event time, or None when nothing is stored."""
        with self.engine.connect() as connection:
            newest: datetime | None = connection.scalar(select(func.max(TransactionRow.event_time)))
        return newest

    def newest_scored_at(self) -> datetime | None:
        """When the newest stored transaction was scored by its champion (wall clock)."""
        statement = select(func.max(ScoreRow.scored_at)).where(ScoreRow.role == CHAMPION_ROLE)
        with self.engine.connect() as connection:
            newest: datetime | None = connection.scalar(statement)
        return newest


def _inside(start: datetime, end: datetime) -> ColumnElement[bool]:
    """The transaction's event time lies in [start, end)."""
    return and_(TransactionRow.event_time >= start, TransactionRow.event_time < end)


def _champion_of_transaction() -> ColumnElement[bool]:
    """Join condition: the champion score of the transaction."""
    return and_(ScoreRow.trans_num == TransactionRow.trans_num, ScoreRow.role == CHAMPION_ROLE)


def _sum_where(condition: ColumnElement[bool], value: object) -> ColumnElement[float]:
    """Sum of `value` over the rows meeting `condition` (0 where none does)."""
    summed: ColumnElement[float] = func.coalesce(func.sum(case((condition, value), else_=0)), 0)
    return summed
