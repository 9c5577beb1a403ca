"""What the analyst console reads: the review queue, a case's context, and the plots' counts.

Every read is one or two statements, the same on SQLite and PostgreSQL, built to use the
warehouse's indexes: the queue pages with ORDER BY ... LIMIT/OFFSET on the champion's
scores, a card's or merchant's history is bounded by event time. The queue holds the
transactions whose champion decided review or decline and that carry no label yet.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from sqlalchemy import ColumnElement, Select, and_, case, func, select

from fraudops.storage.sql import SqlTables
from fraudops.storage.tables import CHAMPION_ROLE, LabelRow, ScoreRow, TransactionRow

ALERT_DECISIONS = ("review", "decline")
QueueOrder = Literal["newest", "riskiest"]
# The queue's columns: trans_num, event_time, amount, merchant, category, card_last4,
# fraud_probability, decision, model_version.
QueueSelect = Select[str, datetime, float, str | None, str | None, str | None, float, str, str]


@dataclass(frozen=True, kw_only=True)
class QueueFilter:
    """Which alerts the queue shows; None means any."""

    decision: Literal["review", "decline"] | None = None
    min_amount: float | None = None
    max_amount: float | None = None
    category: str | None = None
    merchant: str | None = None
    model_version: str | None = None
    start: datetime | None = None  # event time, inclusive
    end: datetime | None = None  # event time, exclusive


@dataclass(frozen=True, kw_only=True)
class QueueItem:
    """One unlabelled alert as the queue lists it."""

    trans_num: str
    event_time: datetime
    amount: float
    merchant: str | None
    category: str | None
    card_last4: str | None
    fraud_probability: float
    decision: str
    model_version: str


@dataclass(frozen=True, kw_only=True)
class CardPoint:
    """One transaction of a card's recent history."""

    trans_num: str
    event_time: datetime
    amount: float
    fraud_probability: float | None
    decision: str | None
    is_fraud: bool | None


@dataclass(frozen=True, kw_only=True)
class MerchantRates:
    """A merchant's transactions over a window: how many alerted, how many are known fraud."""

    transactions: int
    alerts: int
    frauds: int
    labelled: int


@dataclass(frozen=True, kw_only=True)
class DayAlerts:
    """The reviews and declines of one event day."""

    day: date
    reviews: int
    declines: int


class ConsoleReads(SqlTables):
    """Reads of the warehouse for the analyst console's pages."""

    def alert_queue(
        self, which: QueueFilter, *, order: QueueOrder, limit: int, offset: int = 0
    ) -> list[QueueItem]:
        """One page of unlabelled reviews and declines, newest or riskiest first."""
        statement = _queue_select(which)
        if order == "riskiest":
            statement = statement.order_by(
                ScoreRow.fraud_probability.desc(),
                TransactionRow.event_time.desc(),
                TransactionRow.trans_num.desc(),
            )
        else:
            statement = statement.order_by(
                TransactionRow.event_time.desc(), TransactionRow.trans_num.desc()
            )
        with self.engine.connect() as connection:
            rows = connection.execute(statement.limit(limit).offset(offset)).all()
        return [
            QueueItem(
                trans_num=row.trans_num,
                event_time=row.event_time,
                amount=float(row.amount),
                merchant=row.merchant,
                category=row.category,
                card_last4=row.card_last4,
                fraud_probability=float(row.fraud_probability),
                decision=row.decision,
                model_version=row.model_version,
            )
            for row in rows
        ]

    def card_history(
        self, card_id: str, *, start: datetime, end: datetime, limit: int = 200
    ) -> list[CardPoint]:
        """The card's transactions with event time in [start, end], oldest first (at most
        the latest `limit`), with the champion's score and the label if any."""
        statement = (
            select(
                TransactionRow.trans_num,
                TransactionRow.event_time,
                TransactionRow.amount,
                ScoreRow.fraud_probability,
                ScoreRow.decision,
                LabelRow.is_fraud,
            )
            .outerjoin(ScoreRow, _champion_of_transaction())
            .outerjoin(LabelRow, LabelRow.trans_num == TransactionRow.trans_num)
            .where(
                TransactionRow.card_id == card_id,
                TransactionRow.event_time >= start,
                TransactionRow.event_time <= end,
            )
            .order_by(TransactionRow.event_time.desc(), TransactionRow.trans_num.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            CardPoint(
                trans_num=row.trans_num,
                event_time=row.event_time,
                amount=float(row.amount),
                fraud_probability=None
                if row.fraud_probability is None
                else float(row.fraud_probability),
                decision=row.decision,
                is_fraud=None if row.is_fraud is None else bool(row.is_fraud),
            )
            for row in reversed(rows)
        ]

    def card_of(self, trans_num: str) -> str | None:
        """The card id (keyed hash) of a stored transaction."""
        statement = select(TransactionRow.card_id).where(TransactionRow.trans_num == trans_num)
        with self.engine.connect() as connection:
            card: str | None = connection.scalar(statement)
        return card

    def merchant_rates(self, merchant: str, *, start: datetime, end: datetime) -> MerchantRates:
        """The merchant's transactions of [start, end), its alerts and its labelled frauds."""
        statement = (
            select(
                func.count(),
                _count_where(ScoreRow.decision.in_(ALERT_DECISIONS)),
                _count_where(LabelRow.is_fraud.is_(True)),
                func.count(LabelRow.trans_num),
            )
            .select_from(TransactionRow)
            .outerjoin(ScoreRow, _champion_of_transaction())
            .outerjoin(LabelRow, LabelRow.trans_num == TransactionRow.trans_num)
            .where(
                TransactionRow.merchant == merchant,
                TransactionRow.event_time >= start,
                TransactionRow.event_time < end,
            )
        )
        with self.engine.connect() as connection:
            row = connection.execute(statement).one()
        return MerchantRates(
            transactions=int(row[0]),
            alerts=int(row[1] or 0),
            frauds=int(row[2] or 0),
            labelled=int(row[3] or 0),
        )

    def alerts_per_day(self, start: datetime, end: datetime) -> list[DayAlerts]:
        """Reviews and declines per event day of [start, end), days without any left out."""
        day = func.date(TransactionRow.event_time)
        statement = (
            select(
                day,
                _count_where(ScoreRow.decision == "review"),
                _count_where(ScoreRow.decision == "decline"),
            )
            .select_from(TransactionRow)
            .join(ScoreRow, _champion_of_transaction())
            .where(
                TransactionRow.event_time >= start,
                TransactionRow.event_time < end,
                ScoreRow.decision.in_(ALERT_DECISIONS),
            )
            .group_by(day)
            .order_by(day)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            DayAlerts(day=_as_date(row[0]), reviews=int(row[1] or 0), declines=int(row[2] or 0))
            for row in rows
        ]

    def score_histogram(
        self, start: datetime, end: datetime, *, bins: int = 20
    ) -> tuple[list[int], list[int]]:
        """Champion scores of [start, end) in `bins` equal bins of [0, 1]: counts of the
        transactions labelled fraud, and of the others (unlabelled or legitimate)."""
        probability = ScoreRow.fraud_probability
        fraud = LabelRow.is_fraud.is_(True)
        columns = []
        for number in range(bins):
            low, high = number / bins, (number + 1) / bins
            inside = and_(
                probability >= low,
                probability <= high if number == bins - 1 else probability < high,
            )
            columns += [_count_where(and_(inside, fraud)), _count_where(inside)]
        statement = (
            select(*columns)
            .select_from(TransactionRow)
            .join(ScoreRow, _champion_of_transaction())
            .outerjoin(LabelRow, LabelRow.trans_num == TransactionRow.trans_num)
            .where(TransactionRow.event_time >= start, TransactionRow.event_time < end)
        )
        with self.engine.connect() as connection:
            row = connection.execute(statement).one()
        counts = [int(value or 0) for value in row]
        frauds = counts[0::2]
        others = [total - bad for total, bad in zip(counts[1::2], frauds, strict=True)]
        return frauds, others


def _queue_select(which: QueueFilter) -> QueueSelect:
    """The queue's columns and conditions: champion alerts without a label, filtered."""
    conditions: list[ColumnElement[bool]] = [
        LabelRow.trans_num.is_(None),
        ScoreRow.decision.in_(ALERT_DECISIONS if which.decision is None else (which.decision,)),
    ]
    if which.min_amount is not None:
        conditions.append(TransactionRow.amount >= which.min_amount)
    if which.max_amount is not None:
        conditions.append(TransactionRow.amount <= which.max_amount)
    if which.category is not None:
        conditions.append(TransactionRow.category == which.category)
    if which.merchant is not None:
        conditions.append(TransactionRow.merchant == which.merchant)
    if which.model_version is not None:
        conditions.append(ScoreRow.model_version == which.model_version)
    if which.start is not None:
        conditions.append(TransactionRow.event_time >= which.start)
    if which.end is not None:
        conditions.append(TransactionRow.event_time < which.end)
    return (
        select(
            TransactionRow.trans_num,
            TransactionRow.event_time,
            TransactionRow.amount,
            TransactionRow.merchant,
            TransactionRow.category,
            TransactionRow.card_last4,
            ScoreRow.fraud_probability,
            ScoreRow.decision,
            ScoreRow.model_version,
        )
        .join(ScoreRow, _champion_of_transaction())
        .outerjoin(LabelRow, LabelRow.trans_num == TransactionRow.trans_num)
        .where(*conditions)
    )


def _champion_of_transaction() -> ColumnElement[bool]:
    """Join condition: the champion score of the transaction."""
    return and_(ScoreRow.trans_num == TransactionRow.trans_num, ScoreRow.role == CHAMPION_ROLE)


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows meet the condition (0 where none does)."""
    counted: ColumnElement[int] = func.coalesce(func.sum(case((condition, 1), else_=0)), 0)
    return counted


def _as_date(value: object) -> date:
    """A day as SQLite (text) or PostgreSQL (date) gives it back."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
