"""The SQL warehouse: scored transactions and labels through SQLAlchemy, schema by Alembic.

SQLite by default, PostgreSQL in production; the same statements run on both. Storing is
idempotent by trans_num: INSERT ... ON CONFLICT DO NOTHING, then the stored result is read
back, so a transaction sent twice (or by two replicas at once) is written once.

Labels keep one current row per trans_num in `labels` and every value it was given in
`label_events`: a repeated label writes nothing, a changed one updates the row and appends an
event. Labels of transactions not stored yet are kept and match them when they arrive.
"""

import dataclasses
import math
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pandas as pd
import structlog
from alembic import command
from alembic.config import Config
from pydantic import ValidationError
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from fraudops.config import Settings, get_settings
from fraudops.data.personal import (
    DROPPED_FIELDS,
    PersonalData,
    PersonalDataError,
    ProtectedTransaction,
    is_card_id,
    personal_data,
)
from fraudops.data.schema import CanonicalTransaction
from fraudops.storage.base import (
    HistoricTransaction,
    KnownTransaction,
    LabelOutcome,
    LabelRecord,
    LifecycleEvent,
    MonitorRun,
    Reason,
    ScoredTransaction,
    ScoreRecord,
    StoredResult,
    StoredTransaction,
)
from fraudops.storage.tables import (
    CHALLENGER_ROLE,
    CHAMPION_ROLE,
    Base,
    LabelEventRow,
    LabelRow,
    LifecycleEventRow,
    MonitorRunRow,
    ScoreRow,
    TransactionRow,
    WarehouseFactRow,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Rows per statement when a batch is looked up by trans_num (well under every bind limit).
CHUNK = 500
# The event clock: of the latest CLOCK_SAMPLE event times, skip one in CLOCK_OUTLIER_SHARE
# from the top, and never go further than CLOCK_CEILING ahead of the wall clock.
CLOCK_SAMPLE = 1_000
CLOCK_OUTLIER_SHARE = 100
CLOCK_CEILING = timedelta(days=1)
# The fact telling which card-hash key chain made the stored card ids.
CARD_KEY_FACT = "card_hash_key_check"
LABELLED_COLUMNS = (
    "trans_num",
    "event_time",
    "is_fraud",
    "label_time",
    "label_source",
    "model_name",
    "model_version",
    "fraud_probability",
    "decision",
)

log = structlog.get_logger(__name__)
_T = TypeVar("_T")
# Columns copied to PostgreSQL as JSON text.
_JSON_COLUMNS = frozenset({"record", "reasons", "features"})


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic settings for the migrations shipped in this package; no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS.as_posix())
    config.attributes["connection"] = connection
    return config


class Warehouse:
    """The transaction store on a SQL database named by a SQLAlchemy URL."""

    def __init__(
        self, url: str, *, echo: bool = False, personal: PersonalData | None = None
    ) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            msg = f"the warehouse supports SQLite and PostgreSQL, not {self.dialect!r}"
            raise ValueError(msg)
        options: dict[str, Any] = {}
        if self.dialect == "sqlite":
            if parsed.database in (None, "", ":memory:"):
                # One shared connection, or every connection would see its own empty database.
                options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
            else:
                _private_file(Path(parsed.database))
        self.engine: Engine = create_engine(
            parsed,
            echo=echo,
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
            **options,
        )
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._processors: dict[Any, Callable[[Any], Any] | None] = {}
        self._personal = personal
        self._key_checked = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "Warehouse":
        """The warehouse the settings name: FRAUDOPS_DATABASE_URL or SQLite under home."""
        return cls(settings.resolved_database_url, personal=personal_data(settings))

    @property
    def personal(self) -> PersonalData:
        """The keys protecting personal data here, checked against the warehouse's card ids.

        A warehouse built without keys gets a key of this process's own (tests, tools that
        only read); the first one used on a warehouse is recorded, and a key that does not
        match it is refused, since its card ids would never equal the stored ones.
        """
        if self._personal is None:
            self._personal = _process_keys()
        if not self._key_checked:
            self._check_card_key(self._personal)
            self._key_checked = True
        return self._personal

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema up to `revision` with Alembic; a no-op when it is already there.

        At head, rows stored before card numbers were hashed (revision 0004) are rewritten
        as they would be stored now.
        """
        with self.engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
        log.info("warehouse migrated", revision=revision, dialect=self.dialect)
        if revision == "head":
            self._protect_earlier_rows()

    def _check_card_key(self, personal: PersonalData) -> None:
        """Record the card-hash key's check value, or refuse a key other than the recorded."""
        name = CARD_KEY_FACT
        with self.engine.begin() as connection:
            recorded = connection.scalar(
                select(WarehouseFactRow.value).where(WarehouseFactRow.name == name)
            )
            if recorded is None:
                self._insert_ignoring(
                    connection,
                    WarehouseFactRow,
                    [{"name": name, "value": personal.key_check}],
                    key=("name",),
                )
                recorded = connection.scalar(
                    select(WarehouseFactRow.value).where(WarehouseFactRow.name == name)
                )
        if recorded != personal.key_check:
            msg = (
                "this warehouse's card ids were made with another card-hash key: set "
                "FRAUDOPS_CARD_HASH_KEY to the key the other services use (see the README, "
                "Security)"
            )
            raise PersonalDataError(msg)

    def rotate_card_key(self, new_key: bytes) -> PersonalData:
        """Add a key to the card-hash chain: every stored card id and fingerprint hashed once
        more with it, in one database transaction; the keys to use from now on.

        Stop the services first: what they store meanwhile would carry the old ids.
        """
        current = self.personal  # checked against the warehouse's card ids
        rotated = current.rotated(new_key)

        def again(value: Any) -> Any:
            return None if value is None else current.rekeyed(str(value), new_key=new_key)

        rewrite = (
            update(TransactionRow)
            .where(TransactionRow.trans_num == bindparam("key"))
            .values(
                card_id=bindparam("card"),
                fingerprint=bindparam("print"),
                record=bindparam("doc", type_=TransactionRow.record.type),
            )
        )
        changed = 0
        last = ""
        with self.engine.begin() as connection:
            while True:
                rows = connection.execute(
                    select(
                        TransactionRow.trans_num,
                        TransactionRow.card_id,
                        TransactionRow.fingerprint,
                        TransactionRow.record,
                    )
                    .where(TransactionRow.trans_num > last)
                    .order_by(TransactionRow.trans_num)
                    .limit(CHUNK)
                ).all()
                if not rows:
                    break
                connection.execute(
                    rewrite,
                    [
                        {
                            "key": row.trans_num,
                            "card": again(row.card_id),
                            "print": again(row.fingerprint),
                            "doc": {**row.record, "cc_num": again(row.record.get("cc_num"))},
                        }
                        for row in rows
                    ],
                )
                changed += len(rows)
                last = rows[-1].trans_num
            connection.execute(
                update(WarehouseFactRow)
                .where(WarehouseFactRow.name == CARD_KEY_FACT)
                .values(value=rotated.key_check)
            )
        self._personal = rotated
        log.info("card-hash key rotated", transactions=changed)
        return rotated

    def _protect_earlier_rows(self) -> None:
        """Rewrite rows holding a clear card number (stored before revision 0004)."""
        earlier = (
            select(TransactionRow.trans_num, TransactionRow.record)
            .where(TransactionRow.fingerprint.is_(None))
            .limit(CHUNK)
        )
        rewritten = 0
        while True:
            with self.engine.begin() as connection:
                rows = connection.execute(earlier).all()
                if not rows:
                    break
                for row in rows:
                    values = _protected_values(row.record, self.personal)
                    connection.execute(
                        update(TransactionRow)
                        .where(TransactionRow.trans_num == row.trans_num)
                        .values(values)
                    )
            rewritten += len(rows)
        if rewritten:
            log.info("card numbers of earlier rows replaced by card ids", rows=rewritten)

    def downgrade(self, revision: str) -> None:
        """Take the schema down to `revision` ("base" drops every warehouse table)."""
        with self.engine.begin() as connection:
            command.downgrade(alembic_config(connection), revision)
        log.info("warehouse downgraded", revision=revision, dialect=self.dialect)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

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
                else CanonicalTransaction.from_record(dict(transaction))
            )
            transaction = self.personal.protect(canonical)
        canonical = transaction.transaction
        return {
            "trans_num": canonical.trans_num,
            "card_id": str(canonical.cc_num),
            "merchant": canonical.merchant,
            "category": canonical.category,
            "amount": canonical.amt,
            "event_time": canonical.event_time,
            "record": canonical.model_dump(mode="json", exclude_none=True),
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
        received_at = _utcnow()
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

    def known_transactions(self, trans_nums: Sequence[str]) -> dict[str, KnownTransaction]:
        """The stored transactions among `trans_nums`, with their fingerprints and results."""
        found: dict[str, KnownTransaction] = {}
        unique = list(dict.fromkeys(trans_nums))
        with self.engine.connect() as connection:
            rows = [
                row
                for part in _chunks(unique)
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

    def record_labels(self, labels: Sequence[LabelRecord]) -> LabelOutcome:
        """Store labels idempotently; labels of unknown transactions are kept and reported."""
        with self.engine.begin() as connection:
            return self._record_labels(connection, labels)

    def _record_labels(self, connection: Connection, labels: Sequence[LabelRecord]) -> LabelOutcome:
        """record_labels within a database transaction."""
        stored = unchanged = updated = 0
        now = _utcnow()
        trans_nums = list(dict.fromkeys(label.trans_num for label in labels))
        current = {
            row.trans_num: row.is_fraud
            for part in _chunks(trans_nums)
            for row in connection.execute(
                select(LabelRow.trans_num, LabelRow.is_fraud)
                .where(LabelRow.trans_num.in_(part))
                .with_for_update()
            )
        }
        known = {
            trans_num
            for part in _chunks(trans_nums)
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
        unknown = tuple(t for t in trans_nums if t not in known)
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

    def labelled_between(
        self, start: datetime, end: datetime, *, labels_known_by: datetime | None = None
    ) -> pd.DataFrame:
        """Labelled transactions with event_time in [start, end), with the champion score.

        One row per transaction: the raw record's fields, `event_time`, the label (`is_fraud`
        as 0/1, `label_time`, `label_source`) and the first champion score stored. With
        `labels_known_by`, only labels known by then count (point-in-time monitoring).
        """
        champion = (
            select(ScoreRow.trans_num, func.min(ScoreRow.id).label("score_id"))
            .where(ScoreRow.role == CHAMPION_ROLE)
            .group_by(ScoreRow.trans_num)
            .subquery()
        )
        statement = (
            select(
                TransactionRow.trans_num,
                TransactionRow.record,
                TransactionRow.event_time,
                LabelRow.is_fraud,
                LabelRow.label_time,
                LabelRow.source.label("label_source"),
                ScoreRow.model_name,
                ScoreRow.model_version,
                ScoreRow.fraud_probability,
                ScoreRow.decision,
            )
            .join(LabelRow, LabelRow.trans_num == TransactionRow.trans_num)
            .outerjoin(champion, champion.c.trans_num == TransactionRow.trans_num)
            .outerjoin(ScoreRow, ScoreRow.id == champion.c.score_id)
            .where(TransactionRow.event_time >= _utc_naive(start))
            .where(TransactionRow.event_time < _utc_naive(end))
            .order_by(TransactionRow.event_time, TransactionRow.trans_num)
        )
        if labels_known_by is not None:
            statement = statement.where(LabelRow.label_time <= _utc_naive(labels_known_by))
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        records = [
            {
                **row.record,
                "trans_num": row.trans_num,
                "event_time": row.event_time,
                "is_fraud": int(row.is_fraud),
                "label_time": row.label_time,
                "label_source": row.label_source,
                "model_name": row.model_name,
                "model_version": row.model_version,
                "fraud_probability": row.fraud_probability,
                "decision": row.decision,
            }
            for row in rows
        ]
        frame = pd.DataFrame.from_records(records)
        record_columns = [c for c in frame.columns if c not in LABELLED_COLUMNS]
        return frame.reindex(columns=[*record_columns, *LABELLED_COLUMNS])

    def transactions_since(self, time: datetime) -> Iterator[HistoricTransaction]:
        """Stored transactions with event_time at or after `time`, in event-time order."""
        statement = (
            select(
                TransactionRow.record,
                TransactionRow.event_time,
                TransactionRow.trans_num,
                LabelRow.is_fraud,
                LabelRow.label_time,
                LabelRow.source,
            )
            .outerjoin(LabelRow, LabelRow.trans_num == TransactionRow.trans_num)
            .where(TransactionRow.event_time >= _utc_naive(time))
            .order_by(TransactionRow.event_time, TransactionRow.trans_num)
        )
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=1_000).execute(statement)
            for row in result:
                label = None
                if row.is_fraud is not None:
                    label = LabelRecord(
                        trans_num=row.trans_num,
                        is_fraud=row.is_fraud,
                        label_time=row.label_time,
                        source=row.source,
                    )
                yield HistoricTransaction(
                    record=dict(row.record), event_time=row.event_time, label=label
                )

    def history_frame(
        self, start: datetime, end: datetime, *, labels_known_by: datetime
    ) -> pd.DataFrame:
        """Stored transactions with event_time in [start, end) as the readers load a file.

        The frame has the canonical (Sparkov) columns parsed as `load_transactions` parses
        them, `event_time`, and the labels as known at `labels_known_by`: `is_fraud` (0/1,
        0 where no label was known yet), `labelled` (whether one was) and `label_time`.
        This is what retraining and champion/challenger evaluation read.
        """
        from fraudops.data.profiles import SPARKOV  # noqa: PLC0415 - data imports storage
        from fraudops.data.validation import check_frame  # noqa: PLC0415

        known = (
            select(LabelRow.trans_num, LabelRow.is_fraud, LabelRow.label_time)
            .where(LabelRow.label_time <= _utc_naive(labels_known_by))
            .subquery()
        )
        statement = (
            select(
                TransactionRow.trans_num,
                TransactionRow.record,
                TransactionRow.event_time,
                known.c.is_fraud,
                known.c.label_time,
            )
            .outerjoin(known, known.c.trans_num == TransactionRow.trans_num)
            .where(TransactionRow.event_time >= _utc_naive(start))
            .where(TransactionRow.event_time < _utc_naive(end))
            .order_by(TransactionRow.event_time, TransactionRow.trans_num)
        )
        with self.engine.connect() as connection:
            rows = connection.execution_options(yield_per=10_000).execute(statement).all()
        timestamps = {spec.column for spec in SPARKOV.timestamps}
        raw = pd.DataFrame.from_records(
            [
                {k: v for k, v in row.record.items() if k not in timestamps}
                | {
                    "trans_num": row.trans_num,
                    "trans_date_trans_time": row.event_time.strftime("%Y-%m-%d %H:%M:%S"),
                }
                for row in rows
            ]
        )
        if raw.empty:
            return pd.DataFrame(columns=["trans_num", "event_time", "is_fraud", "labelled"])
        raw = raw.drop(columns=["event_time"], errors="ignore")
        frame = check_frame(raw, SPARKOV, require_label=False).clean_frame()
        labels = {row.trans_num: (row.is_fraud, row.label_time) for row in rows}
        known_label = frame["trans_num"].map(lambda t: labels[t][0])
        frame["labelled"] = known_label.notna().to_numpy()
        frame["is_fraud"] = known_label.fillna(value=False).astype("int8").to_numpy()
        frame["label_time"] = pd.to_datetime(frame["trans_num"].map(lambda t: labels[t][1]))
        return frame.reset_index(drop=True)

    def served_between(
        self, start: datetime, end: datetime, *, limit: int | None = None
    ) -> pd.DataFrame:
        """The champion's first score of each transaction with event_time in [start, end).

        Columns: trans_num, event_time, model_name, model_version, fraud_probability,
        decision, then one column per feature the champion computed (NaN where missing).
        With `limit`, only the latest `limit` transactions of the window (a drift sample).
        """
        champion = (
            select(func.min(ScoreRow.id).label("score_id"))
            .join(TransactionRow, TransactionRow.trans_num == ScoreRow.trans_num)
            .where(ScoreRow.role == CHAMPION_ROLE)
            .where(TransactionRow.event_time >= _utc_naive(start))
            .where(TransactionRow.event_time < _utc_naive(end))
            .group_by(ScoreRow.trans_num)
            .subquery()
        )
        statement = (
            select(
                ScoreRow.trans_num,
                TransactionRow.event_time,
                ScoreRow.model_name,
                ScoreRow.model_version,
                ScoreRow.fraud_probability,
                ScoreRow.decision,
                ScoreRow.features,
            )
            .join(champion, champion.c.score_id == ScoreRow.id)
            .join(TransactionRow, TransactionRow.trans_num == ScoreRow.trans_num)
            .order_by(TransactionRow.event_time.desc(), ScoreRow.trans_num)
        )
        if limit is not None:
            statement = statement.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execution_options(yield_per=10_000).execute(statement).all()
        base = pd.DataFrame(
            {
                "trans_num": [r.trans_num for r in rows],
                "event_time": pd.to_datetime([r.event_time for r in rows]),
                "model_name": [r.model_name for r in rows],
                "model_version": [r.model_version for r in rows],
                "fraud_probability": [float(r.fraud_probability) for r in rows],
                "decision": [r.decision for r in rows],
            }
        )
        features = pd.DataFrame.from_records([r.features or {} for r in rows]).astype("float64")
        frame = pd.concat([base, features], axis=1)
        return frame.iloc[::-1].reset_index(drop=True)

    def record_event(self, event: LifecycleEvent) -> LifecycleEvent:
        """Append a decision to the audit trail; returns it with its id and time."""
        at = _utc_naive(event.at or _utcnow())
        values: dict[str, Any] = {
            "at": at,
            "as_of": None if event.as_of is None else _utc_naive(event.as_of),
            "kind": event.kind,
            "trigger": event.trigger,
            "actor": event.actor,
            "model_name": event.model_name,
            "champion_version": event.champion_version,
            "challenger_version": event.challenger_version,
            "verdict": event.verdict,
            "detail": event.detail,
        }
        with self.engine.begin() as connection:
            event_id = connection.scalar(
                insert(LifecycleEventRow).values(values).returning(LifecycleEventRow.id)
            )
        return dataclasses.replace(event, id=event_id, at=at)

    def events(self, *, limit: int = 100, kind: str | None = None) -> list[LifecycleEvent]:
        """The latest audited decisions, newest first."""
        statement = select(LifecycleEventRow).order_by(LifecycleEventRow.id.desc()).limit(limit)
        if kind is not None:
            statement = statement.where(LifecycleEventRow.kind == kind)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            LifecycleEvent(
                id=row.id,
                at=row.at,
                as_of=row.as_of,
                kind=row.kind,
                trigger=row.trigger,
                actor=row.actor,
                model_name=row.model_name,
                champion_version=row.champion_version,
                challenger_version=row.challenger_version,
                verdict=row.verdict,
                detail=dict(row.detail),
            )
            for row in rows
        ]

    def store_monitor_run(self, run: MonitorRun) -> MonitorRun:
        """Keep a monitoring run; returns it with its id and time."""
        run_at = _utc_naive(run.run_at or _utcnow())
        values: dict[str, Any] = {
            "run_at": run_at,
            "as_of": _utc_naive(run.as_of),
            "model_name": run.model_name,
            "model_version": run.model_version,
            "retrain": run.retrain,
            "reasons": list(run.reasons),
            "result": run.result,
        }
        with self.engine.begin() as connection:
            run_id = connection.scalar(
                insert(MonitorRunRow).values(values).returning(MonitorRunRow.id)
            )
        return dataclasses.replace(run, id=run_id, run_at=run_at)

    def monitor_runs(self, *, limit: int = 20) -> list[MonitorRun]:
        """The latest monitoring runs, newest first."""
        statement = select(MonitorRunRow).order_by(MonitorRunRow.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            MonitorRun(
                id=row.id,
                run_at=row.run_at,
                as_of=row.as_of,
                model_name=row.model_name,
                model_version=row.model_version,
                retrain=row.retrain,
                reasons=list(row.reasons),
                result=dict(row.result),
            )
            for row in rows
        ]

    def count_transactions(self) -> int:
        """How many transactions are stored."""
        with self.engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(TransactionRow)) or 0)

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

    def event_clock(self, *, now: datetime | None = None) -> datetime | None:
        """ "Now" in the data's event time, robust to outliers; None if nothing is stored.

        Of the CLOCK_SAMPLE latest event times, the value above which one in a hundred lie
        (the latest itself with fewer than a hundred), and never later than the wall clock
        `now` (default: the current time) plus a day: transactions dated far ahead, already
        stored, do not move it.
        """
        statement = (
            select(TransactionRow.event_time)
            .order_by(TransactionRow.event_time.desc())
            .limit(CLOCK_SAMPLE)
        )
        with self.engine.connect() as connection:
            latest = list(connection.scalars(statement))
        if not latest:
            return None
        ceiling = _utc_naive(now or datetime.now(UTC)) + CLOCK_CEILING
        below = [time for time in latest if time <= ceiling]
        if not below:
            return ceiling
        return below[len(below) // CLOCK_OUTLIER_SHARE]

    def records_of(self, trans_nums: Sequence[str]) -> dict[str, HistoricTransaction]:
        """The stored records (with event time, without label) of the trans_nums that exist."""
        found: dict[str, HistoricTransaction] = {}
        with self.engine.connect() as connection:
            for part in _chunks(list(dict.fromkeys(trans_nums))):
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

    def _insert(self, entity: type[Base]) -> "sqlite.Insert | postgresql.Insert":
        """The dialect's INSERT, which knows ON CONFLICT."""
        if self.dialect == "postgresql":
            return postgresql.insert(entity)
        return sqlite.insert(entity)

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
        for part in _chunks(rows):
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

    def _insert_ignoring(
        self,
        connection: Connection,
        entity: type[Base],
        rows: Sequence[dict[str, Any]],
        *,
        key: tuple[str, ...],
    ) -> int:
        """INSERT rows, skipping those whose `key` is stored; how many were inserted.

        PostgreSQL: through COPY. SQLite: one multi-row statement per chunk, written out
        here (SQLAlchemy would compile a multi-row statement afresh on every call), its
        values converted by the columns' own bind processors, as SQLAlchemy would.
        """
        if self.dialect == "postgresql":
            return len(self._copy_ignoring(connection, entity, rows, key=key))
        columns = list(rows[0])
        converters = self._converters(entity, columns, json_text=False)
        inserted = 0
        for part in _chunks(rows):
            values = "(" + ",".join("?" * len(columns)) + ")"
            sql = (
                f"INSERT INTO {entity.__tablename__} ({','.join(columns)}) "  # noqa: S608 - names, not data
                f"VALUES {','.join([values] * len(part))} "
                f"ON CONFLICT ({','.join(key)}) DO NOTHING"
            )
            parameters = [value for row in part for value in _converted(row, columns, converters)]
            inserted += connection.exec_driver_sql(sql, tuple(parameters)).rowcount
        return inserted

    def _copy_ignoring(
        self,
        connection: Connection,
        entity: type[Base],
        rows: Sequence[dict[str, Any]],
        *,
        key: tuple[str, ...],
    ) -> list[str]:
        """PostgreSQL: COPY the rows into a temporary table, then INSERT those whose `key`
        is new; the first key column of each row inserted.

        COPY streams a whole group in one round trip with psycopg's C row writer, where an
        INSERT per row (or SQLAlchemy's multi-row statements, parsed again by the driver
        for every group) cost ~5x the time, most of it holding Python's GIL.
        """
        table = entity.__tablename__
        staging = f"incoming_{table}"
        columns = list(rows[0])
        converters = self._converters(entity, columns, json_text=True)
        names = ", ".join(columns)
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            # Only these columns' types: no constraints, no defaults, gone at commit.
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DROP "  # noqa: S608
                f"AS SELECT {names} FROM {table} WITH NO DATA"
            )
            with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(_converted(row, columns, converters))
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} "  # noqa: S608
                f"ON CONFLICT ({', '.join(key)}) DO NOTHING RETURNING {key[0]}"
            )
            inserted = [str(found[0]) for found in cursor.fetchall()]
            cursor.execute(f"DELETE FROM {staging}")  # noqa: S608 - our table names
        finally:
            cursor.close()
        return inserted

    def _converters(
        self, entity: type[Base], columns: Sequence[str], *, json_text: bool
    ) -> list[Callable[[Any], Any] | None]:
        """Per column, how its values are sent: the dialect's bind processor, or (COPY to
        PostgreSQL, json_text=True) JSON columns as JSON text."""
        return [
            _json_text
            if json_text and name in _JSON_COLUMNS
            else self._bind_processor(entity.__table__.c[name])
            for name in columns
        ]

    def _bind_processor(self, column: Any) -> Callable[[Any], Any] | None:
        """The dialect's conversion of a column's Python values, looked up once."""
        processor = self._processors.get(column)
        if column not in self._processors:
            dialect = self.engine.dialect
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            self._processors[column] = processor
        return processor

    def _first_scores(
        self, connection: Connection, trans_nums: list[str]
    ) -> dict[str, dict[str, ScoreRecord]]:
        """The first stored score of each role, per trans_num."""
        found: dict[str, dict[str, ScoreRecord]] = {}
        for part in _chunks(trans_nums):
            rows = connection.execute(
                select(ScoreRow).where(ScoreRow.trans_num.in_(part)).order_by(ScoreRow.id)
            )
            for row in rows:
                found.setdefault(row.trans_num, {}).setdefault(row.role, _score_record(row))
        return found


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    """Enforce foreign keys and wait for a busy writer instead of failing at once."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Write-ahead log: readers never wait for the writer, and commits are cheaper.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _protected_values(record: Mapping[str, Any], personal: PersonalData) -> dict[str, Any]:
    """The columns of a transaction as stored: card id, last four digits, fingerprint,
    sealed raw record, and the record without its personal fields."""
    try:
        protected = personal.protect(CanonicalTransaction.from_record(dict(record)))
    except (ValidationError, PersonalDataError):
        # Stored under older, looser rules: drop and hash by hand what protect() would.
        card = str(record.get("cc_num", ""))
        kept = {k: v for k, v in record.items() if k not in DROPPED_FIELDS}
        kept["cc_num"] = personal.card_id(card)
        return {
            "card_id": kept["cc_num"],
            "card_last4": None if is_card_id(card) or len(card) < 4 else card[-4:],
            "fingerprint": personal.fingerprint_of(record),
            "sealed": personal.seal(record),
            "record": kept,
        }
    canonical = protected.transaction
    return {
        "card_id": str(canonical.cc_num),
        "card_last4": protected.card_last4,
        "fingerprint": protected.fingerprint,
        "sealed": protected.sealed,
        "record": canonical.model_dump(mode="json", exclude_none=True),
    }


def _process_keys() -> PersonalData:
    """The keys of warehouses built without settings (tests, tools): FRAUDOPS_CARD_HASH_KEY
    if set, else a key of this process's own, made on first use."""
    global _PROCESS_KEYS  # noqa: PLW0603 - one key per process, made lazily
    if _PROCESS_KEYS is None:
        configured = get_settings().card_hash_key
        _PROCESS_KEYS = (
            PersonalData(secrets.token_bytes(32))
            if configured is None
            else PersonalData.from_text(configured.get_secret_value())
        )
    return _PROCESS_KEYS


_PROCESS_KEYS: PersonalData | None = None


def _private_file(path: Path) -> None:
    """Create an SQLite database file (and its folder) readable by its owner only.

    SQLite gives its -wal and -shm files the database file's permissions.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


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
        "scored_at": _utc_naive(score.scored_at),
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
        "label_time": _utc_naive(label.label_time),
        "source": label.source,
        "received_at": received_at,
    }


def _label_record(row: Any) -> LabelRecord:
    """A stored label back as a record."""
    return LabelRecord(
        trans_num=row.trans_num,
        is_fraud=row.is_fraud,
        label_time=row.label_time,
        source=row.source,
    )


def _converted(
    row: Mapping[str, Any],
    columns: Sequence[str],
    converters: Sequence[Callable[[Any], Any] | None],
) -> list[Any]:
    """A row's values in column order, each converted for the driver (None stays None)."""
    return [
        value if convert is None or value is None else convert(value)
        for value, convert in zip((row[name] for name in columns), converters, strict=True)
    ]


def _json_text(value: Any) -> str:
    """JSON text for a JSON column: orjson (fast; NaN and infinities become null)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _utc_naive(value: datetime) -> datetime:
    """A naive UTC date-time; naive inputs are taken as UTC already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _utcnow() -> datetime:
    """Now, as a naive UTC date-time."""
    return datetime.now(tz=UTC).replace(tzinfo=None)


def _chunks(values: Sequence[_T]) -> Iterable[Sequence[_T]]:
    """Consecutive slices of at most CHUNK values."""
    return (values[i : i + CHUNK] for i in range(0, len(values), CHUNK))
