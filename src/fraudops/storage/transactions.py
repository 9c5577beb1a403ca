"""Scored transactions, their scores and their labels: stored idempotently, looked up.

Storing is idempotent by trans_num: INSERT ... ON CONFLICT DO NOTHING, then the stored result
is read back, so a transaction sent twice (or by two replicas at once) is written once.

Labels keep one current row per trans_num in `labels` and every value it was given in
`label_events`: a repeated label writes nothing, a changed one updates the row and appends an
event. Labels of transactions not stored yet are kept and match them when they arrive.
"""

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import Connection, insert, select, update

from fraudops.alerts.events import AlertEvent, decline_event
from fraudops.data.personal import ProtectedTransaction
from fraudops.data.schema import CanonicalTransaction, stored_transaction
from fraudops.storage.base import (
    HistoricTransaction,
    KnownTransaction,
    LabelOutcome,
    LabelRecord,
    Reason,
    ScoredTransaction,
    ScoreRecord,
    StoredResult,
    StoredTransaction,
)
from fraudops.storage.outbox import OutboxTables
from fraudops.storage.sql import chunks
from fraudops.storage.tables import (
    CHALLENGER_ROLE,
    CHAMPION_ROLE,
    LabelEventRow,
    LabelRow,
    ScoreRow,
    TransactionRow,
)
from fraudops.times import utc_naive, utc_now

log = structlog.get_logger(__name__)

# Which of a list of trans_nums are stored (PostgreSQL; psycopg prepares it after a few uses).
STORED_AMONG = "SELECT trans_num FROM transactions WHERE trans_num = ANY(%(trans_nums)s)"


class TransactionTables(OutboxTables):
    """The `transactions`, `scores`, `labels` and `label_events` tables: writes and lookups.

    With an alert rule set, each newly stored decline the rule picks is put in the alert
    outbox in the same database transaction: stored together, or not at all.
    """

    def store_scored(
        self,
        transaction: Mapping[str, Any] | CanonicalTransaction,
        score: ScoreRecord,
        *,
        shadow: ScoreRecord | None = None,
    ) -> StoredResult:
        """Store a transaction with its scores, or return what is stored if it already is."""
        item = ScoredTransaction(transaction=transaction, score=score, shadow=shadow)
        return self.store_scored_batch([item])[0]

    def _transaction_row(
        self,
        transaction: Mapping[str, Any] | CanonicalTransaction | ProtectedTransaction,
        *,
        received_at: datetime,
    ) -> dict[str, Any]:
        """The `transactions` row of a transaction, protected here unless it already is."""
        if not isinstance(transaction, ProtectedTransaction):
            canonical = (
                transaction
                if isinstance(transaction, CanonicalTransaction)
                else stored_transaction(dict(transaction))
            )
            transaction = self.personal.protect(canonical)
        canonical = transaction.transaction
        return {
            "trans_num": canonical.trans_num,
            "card_id": None if canonical.cc_num is None else str(canonical.cc_num),
            "merchant": canonical.merchant,
            "category": canonical.category,
            "amount": canonical.amt,
            "event_time": canonical.event_time,
            "record": orjson.Fragment(transaction.record_json),  # JSON text already
            "received_at": received_at,
            "card_last4": transaction.card_last4,
            "fingerprint": transaction.fingerprint,
            "sealed": transaction.sealed,
        }

    def store_scored_batch(
        self, items: Sequence[ScoredTransaction], *, labels: Sequence[LabelRecord] = ()
    ) -> list[StoredResult]:
        """Store many scored transactions in one database transaction; results in input order.

        `labels` (those that came with the transactions) are stored in the same database
        transaction: all of it is stored, or none.
        """
        received_at = utc_now()
        prepared = [
            (self._transaction_row(item.transaction, received_at=received_at), item)
            for item in items
        ]
        first: dict[str, ScoredTransaction] = {}
        rows: list[dict[str, Any]] = []
        for row, item in prepared:
            if row["trans_num"] not in first:
                first[row["trans_num"]] = item
                rows.append(row)
        if not rows:
            return []
        with self.engine.begin() as connection:
            inserted = self._insert_new(connection, rows)
            score_rows = [
                _score_row(trans_num, score, role=role)
                for trans_num in inserted
                for role, score in (
                    (CHAMPION_ROLE, first[trans_num].score),
                    (CHALLENGER_ROLE, first[trans_num].shadow),
                )
                if score is not None
            ]
            if score_rows:
                self._insert_ignoring(
                    connection, ScoreRow, score_rows, key=("trans_num", "model_version", "role")
                )
            existing = [t for t in first if t not in inserted]
            stored = self._first_scores(connection, existing)
            if labels:
                self._record_labels(connection, labels)
            if self.alert_rule is not None:
                self._enqueue_alerts(
                    connection,
                    self._decline_alerts([r for r in rows if r["trans_num"] in inserted], first),
                )
        results: list[StoredResult] = []
        created: set[str] = set()
        for row, _ in prepared:
            trans_num = row["trans_num"]
            if trans_num in inserted and trans_num not in created:
                created.add(trans_num)
                item = first[trans_num]
                result = StoredResult(
                    trans_num=trans_num, score=item.score, shadow=item.shadow, created=True
                )
            elif trans_num in inserted:
                item = first[trans_num]
                result = StoredResult(
                    trans_num=trans_num, score=item.score, shadow=item.shadow, created=False
                )
            else:
                result = _stored_result(trans_num, stored.get(trans_num, {}))
            results.append(result)
        log.debug("scored transactions stored", new=len(inserted), sent=len(items))
        return results

    def _decline_alerts(
        self, rows: Sequence[dict[str, Any]], items: Mapping[str, ScoredTransaction]
    ) -> list[AlertEvent]:
        """The alerts of the declines among newly stored transaction rows, as the rule says."""
        rule = self.alert_rule
        if rule is None:
            return []
        events = []
        for row in rows:
            score = items[row["trans_num"]].score
            if score.decision == "decline" and rule.matches(
                fraud_probability=score.fraud_probability, amount=row["amount"]
            ):
                events.append(
                    decline_event(
                        trans_num=row["trans_num"],
                        amount=row["amount"],
                        merchant=row["merchant"],
                        score=score,
                        console_url=rule.console_url,
                    )
                )
        return events

    def get_transaction(self, trans_num: str) -> StoredTransaction | None:
        """The stored transaction with its scores and label, or None."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(TransactionRow).where(TransactionRow.trans_num == trans_num)
            ).first()
            if row is None:
                return None
            scores = connection.execute(
                select(ScoreRow).where(ScoreRow.trans_num == trans_num).order_by(ScoreRow.id)
            ).all()
            label = connection.execute(
                select(LabelRow).where(LabelRow.trans_num == trans_num)
            ).first()
        champions = [_score_record(s) for s in scores if s.role == CHAMPION_ROLE]
        return StoredTransaction(
            trans_num=row.trans_num,
            record=dict(row.record),
            event_time=row.event_time,
            received_at=row.received_at,
            champion=champions[0] if champions else None,
            challengers=tuple(_score_record(s) for s in scores if s.role == CHALLENGER_ROLE),
            label=None if label is None else _label_record(label),
            card_last4=row.card_last4,
            sealed=row.sealed,
        )

    def label_of(self, trans_num: str) -> LabelRecord | None:
        """A transaction's stored label, if any (its transaction may not be stored yet)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(LabelRow).where(LabelRow.trans_num == trans_num)
            ).first()
        return None if row is None else _label_record(row)

    def stored_trans_nums(self) -> list[str]:
        """Every stored trans_num (a process that is the only writer indexes them)."""
        with self.engine.connect() as connection:
            return list(connection.scalars(select(TransactionRow.trans_num)))

    def known_transactions(self, trans_nums: Sequence[str]) -> dict[str, KnownTransaction]:
        """The stored transactions among `trans_nums`, with their fingerprints and results."""
        found: dict[str, KnownTransaction] = {}
        unique = list(dict.fromkeys(trans_nums))
        if self.lookups is not None:  # nearly all are new: one cheap look-up says so
            unique = self._stored_among(unique)
            if not unique:
                return found
        with self.engine.connect() as connection:
            rows = [
                row
                for part in chunks(unique)
                for row in connection.execute(
                    select(
                        TransactionRow.trans_num,
                        TransactionRow.fingerprint,
                        TransactionRow.record,
                    ).where(TransactionRow.trans_num.in_(part))
                )
            ]
            if not rows:
                return found
            scores = self._first_scores(connection, [row.trans_num for row in rows])
        for row in rows:
            found[row.trans_num] = KnownTransaction(
                trans_num=row.trans_num,
                fingerprint=row.fingerprint,
                record=dict(row.record),
                result=_stored_result(row.trans_num, scores.get(row.trans_num, {})),
            )
        return found

    def _stored_among(self, trans_nums: list[str]) -> list[str]:
        """The trans_nums stored, by one primary-key look-up on a lookup connection."""
        assert self.lookups is not None  # noqa: S101 - PostgreSQL only
        with self.lookups.connect() as connection:
            return list(
                connection.exec_driver_sql(STORED_AMONG, {"trans_nums": trans_nums}).scalars()
            )

    def record_labels(
        self, labels: Sequence[LabelRecord], *, stored_elsewhere: Collection[str] = ()
    ) -> LabelOutcome:
        """Store labels idempotently; labels of unknown transactions are kept and reported.

        `stored_elsewhere`: trans_nums the caller holds durably on their way into the
        warehouse (a scorer's journal), known as if stored.
        """
        with self.engine.begin() as connection:
            return self._record_labels(connection, labels, stored_elsewhere=stored_elsewhere)

    def _record_labels(
        self,
        connection: Connection,
        labels: Sequence[LabelRecord],
        *,
        stored_elsewhere: Collection[str] = (),
    ) -> LabelOutcome:
        """record_labels within a database transaction."""
        stored = unchanged = updated = 0
        now = utc_now()
        trans_nums = list(dict.fromkeys(label.trans_num for label in labels))
        current = {
            row.trans_num: row.is_fraud
            for part in chunks(trans_nums)
            for row in connection.execute(
                select(LabelRow.trans_num, LabelRow.is_fraud)
                .where(LabelRow.trans_num.in_(part))
                .with_for_update()
            )
        }
        unread = [t for t in trans_nums if t not in stored_elsewhere]
        known = {
            trans_num
            for part in chunks(unread)
            for trans_num in connection.scalars(
                select(TransactionRow.trans_num).where(TransactionRow.trans_num.in_(part))
            )
        }
        # New labels, the usual case, in bulk: the first label of each new trans_num.
        first_new: dict[str, LabelRecord] = {}
        for label in labels:
            if label.trans_num not in current:
                first_new.setdefault(label.trans_num, label)
        inserted = self._insert_labels(
            connection, [_label_values(label, received_at=now) for label in first_new.values()]
        )
        stored += len(inserted)
        for trans_num in inserted:
            current[trans_num] = first_new[trans_num].is_fraud
        for label in labels:
            if label.trans_num in inserted and first_new.get(label.trans_num) is label:
                continue  # stored just now
            values = _label_values(label, received_at=now)
            if label.trans_num not in current:
                # Another writer stored it first: compare with what it stored.
                current[label.trans_num] = connection.scalars(
                    select(LabelRow.is_fraud).where(LabelRow.trans_num == label.trans_num)
                ).one()
            if current[label.trans_num] == label.is_fraud:
                unchanged += 1
                continue
            connection.execute(
                update(LabelRow).where(LabelRow.trans_num == label.trans_num).values(values)
            )
            connection.execute(insert(LabelEventRow), values)
            current[label.trans_num] = label.is_fraud
            updated += 1
        unknown = tuple(t for t in trans_nums if t not in known and t not in stored_elsewhere)
        outcome = LabelOutcome(
            stored=stored, unchanged=unchanged, updated=updated, unknown_trans_nums=unknown
        )
        log.debug(
            "labels recorded",
            stored=stored,
            unchanged=unchanged,
            updated=updated,
            unknown=len(unknown),
        )
        return outcome

    def store_shadow_scores(self, scores: Sequence[tuple[str, ScoreRecord]]) -> int:
        """Store challenger scores of stored transactions; those already stored are skipped."""
        rows = [_score_row(trans_num, score, role=CHALLENGER_ROLE) for trans_num, score in scores]
        if not rows:
            return 0
        statement = (
            self._insert(ScoreRow)
            .on_conflict_do_nothing(index_elements=["trans_num", "model_version", "role"])
            .returning(ScoreRow.id)
        )
        with self.engine.begin() as connection:
            return len(connection.scalars(statement, rows).all())

    def records_of(self, trans_nums: Sequence[str]) -> dict[str, HistoricTransaction]:
        """The stored records (with event time, without label) of the trans_nums that exist."""
        found: dict[str, HistoricTransaction] = {}
        with self.engine.connect() as connection:
            for part in chunks(list(dict.fromkeys(trans_nums))):
                rows = connection.execute(
                    select(
                        TransactionRow.trans_num, TransactionRow.record, TransactionRow.event_time
                    ).where(TransactionRow.trans_num.in_(part))
                )
                for row in rows:
                    found[row.trans_num] = HistoricTransaction(
                        record=dict(row.record), event_time=row.event_time, label=None
                    )
        return found

    def _insert_new(self, connection: Connection, rows: list[dict[str, Any]]) -> set[str]:
        """Insert transaction rows whose trans_num is new; the trans_nums actually inserted."""
        return self._insert_new_keys(connection, TransactionRow, rows)

    def _insert_new_keys(
        self,
        connection: Connection,
        entity: type[TransactionRow] | type[LabelRow],
        rows: Sequence[dict[str, Any]],
    ) -> set[str]:
        """Insert rows (keyed by trans_num, all with one received_at) whose trans_num is not
        stored yet; the trans_nums actually inserted.

        SQLite: one multi-row INSERT per chunk (one step of the engine, so the thread gives
        up and takes back Python's GIL once per chunk, not once per row); when some rows
        were there already, ours are those carrying this call's received_at (the transaction
        holds SQLite's write lock, so no other writer's rows can match). PostgreSQL copies
        the rows in and returns the inserted keys (see _copy_ignoring).
        """
        if self.dialect == "postgresql":
            return set(self._copy_ignoring(connection, entity, rows, key=("trans_num",)))
        inserted: set[str] = set()
        for part in chunks(rows):
            keys = [row["trans_num"] for row in part]
            count = self._insert_ignoring(connection, entity, part, key=("trans_num",))
            if count == len(part):
                inserted.update(keys)
                continue
            inserted.update(
                connection.scalars(
                    select(entity.trans_num).where(
                        entity.trans_num.in_(keys),
                        entity.received_at == part[0]["received_at"],
                    )
                )
            )
        return inserted

    def _insert_labels(self, connection: Connection, rows: list[dict[str, Any]]) -> set[str]:
        """Insert label rows whose trans_num has none, and their history events; the
        trans_nums inserted (a concurrent writer may have stored some first)."""
        if not rows:
            return set()
        inserted = self._insert_new_keys(connection, LabelRow, rows)
        events = [row for row in rows if row["trans_num"] in inserted]
        if events:
            self._insert_ignoring(connection, LabelEventRow, events, key=("id",))
        return inserted

    def _first_scores(
        self, connection: Connection, trans_nums: list[str]
    ) -> dict[str, dict[str, ScoreRecord]]:
        """The first stored score of each role, per trans_num."""
        found: dict[str, dict[str, ScoreRecord]] = {}
        for part in chunks(trans_nums):
            rows = connection.execute(
                select(ScoreRow).where(ScoreRow.trans_num.in_(part)).order_by(ScoreRow.id)
            )
            for row in rows:
                found.setdefault(row.trans_num, {}).setdefault(row.role, _score_record(row))
        return found


def _score_row(trans_num: str, score: ScoreRecord, *, role: str) -> dict[str, Any]:
    """The `scores` row of one model's score; non-finite features become null."""
    return {
        "trans_num": trans_num,
        "model_name": score.model_name,
        "model_version": str(score.model_version),
        "role": role,
        "fraud_probability": float(score.fraud_probability),
        "decision": score.decision,
        "reasons": [reason.as_dict() for reason in score.reasons],
        "features": score.features,  # NaN and infinities are stored as null
        "latency_ms": None if score.latency_ms is None else float(score.latency_ms),
        "scored_at": utc_naive(score.scored_at),
    }


def _score_record(row: Any) -> ScoreRecord:
    """A stored score back as a record; null features read back as NaN."""
    return ScoreRecord(
        model_name=row.model_name,
        model_version=row.model_version,
        fraud_probability=row.fraud_probability,
        decision=row.decision,
        scored_at=row.scored_at,
        reasons=tuple(Reason(**reason) for reason in row.reasons),
        features={
            name: math.nan if value is None else float(value)
            for name, value in row.features.items()
        },
        latency_ms=row.latency_ms,
    )


def _stored_result(trans_num: str, scores: Mapping[str, ScoreRecord]) -> StoredResult:
    """The result of a transaction that was already stored."""
    champion = scores.get(CHAMPION_ROLE)
    if champion is None:
        msg = f"transaction {trans_num} is stored without a champion score"
        raise LookupError(msg)
    return StoredResult(
        trans_num=trans_num, score=champion, shadow=scores.get(CHALLENGER_ROLE), created=False
    )


def _label_values(label: LabelRecord, *, received_at: datetime) -> dict[str, Any]:
    """The `labels` (and `label_events`) row of a label."""
    return {
        "trans_num": label.trans_num,
        "is_fraud": bool(label.is_fraud),
        "label_time": utc_naive(label.label_time),
        "source": label.source,
        "analyst": label.analyst,
        "received_at": received_at,
    }


def _label_record(row: Any) -> LabelRecord:
    """A stored label back as a record."""
    return LabelRecord(
        trans_num=row.trans_num,
        is_fraud=row.is_fraud,
        label_time=row.label_time,
        source=row.source,
        analyst=row.analyst,
    )
