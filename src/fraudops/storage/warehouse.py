"""The SQL warehouse: scored transactions and labels through SQLAlchemy, schema by Alembic.

SQLite by default, PostgreSQL in production; the same statements run on both. The Warehouse
gathers the groups of tables (storage.transactions, storage.history, storage.quality,
storage.reports, storage.console, storage.audit) on one engine, migrates the schema and
guards the card-hash keys.
"""

import functools
import os
import secrets
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, create_engine, event, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from fraudops.alerts.events import DeclineRule
from fraudops.config import Settings, get_settings
from fraudops.data.personal import (
    DROPPED_FIELDS,
    PersonalData,
    PersonalDataError,
    is_card_id,
    personal_data,
)
from fraudops.data.schema import stored_transaction
from fraudops.storage.audit import AuditTables
from fraudops.storage.console import ConsoleReads
from fraudops.storage.history import HistoryReads
from fraudops.storage.quality import QualityQueries
from fraudops.storage.reports import ReportQueries
from fraudops.storage.sql import CHUNK, json_text_of
from fraudops.storage.tables import TransactionRow, WarehouseFactRow
from fraudops.storage.transactions import TransactionTables

if TYPE_CHECKING:  # Alembic loads when the warehouse migrates, not when it is imported
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The fact telling which card-hash key chain made the stored card ids.
CARD_KEY_FACT = "card_hash_key_check"
# Connections kept for the scoring path's look-ups of trans_nums on PostgreSQL (one per
# scoring thread: api.routes lets this many score at once).
LOOKUP_CONNECTIONS = 8
# PostgreSQL advisory lock held while migrating ("fraudops" in ASCII).
MIGRATION_LOCK = 0x6672617564_6F7073

log = structlog.get_logger(__name__)


def alembic_config(connection: Connection | None = None) -> "Config":
    """Alembic settings for the migrations shipped in this package; no alembic.ini needed."""
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", MIGRATIONS.as_posix())
    config.attributes["connection"] = connection
    return config


class Warehouse(
    TransactionTables, HistoryReads, QualityQueries, ReportQueries, ConsoleReads, AuditTables
):
    """The transaction store on a SQL database named by a SQLAlchemy URL.

    Its methods come by groups of tables: scored transactions and labels
    (storage.transactions), reads of their history (storage.history), the data-quality
    counts (storage.quality), the daily report's reads (storage.reports), the analyst console's
    reads (storage.console), the audit trail
    and monitoring runs (storage.audit). Here: the engine, the schema's migrations and the
    card-hash keys.
    """

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
        self.engine = create_engine(
            parsed,
            echo=echo,
            json_serializer=json_text_of,
            json_deserializer=orjson.loads,
            **options,
        )
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            # Every scoring request on PostgreSQL asks whether its trans_num is stored. On
            # connections of their own in autocommit, never reset on return, that costs no
            # BEGIN, ROLLBACK or COMMIT round trip: 174 us of CPU instead of 533.
            self.lookups = create_engine(
                parsed,
                isolation_level="AUTOCOMMIT",
                pool_reset_on_return=None,
                pool_size=LOOKUP_CONNECTIONS,
                max_overflow=LOOKUP_CONNECTIONS,
            )
        self._processors = {}
        self._personal = personal
        self._key_checked = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "Warehouse":
        """The warehouse the settings name (FRAUDOPS_DATABASE_URL or SQLite under home), with
        alerts into its outbox when an alert channel is configured."""
        warehouse = cls(settings.resolved_database_url, personal=personal_data(settings))
        if settings.alerts_enabled:
            warehouse.alert_rule = DeclineRule(
                min_probability=settings.alert_decline_min_probability,
                min_amount=settings.alert_decline_min_amount,
                console_url=settings.console_url,
            )
        return warehouse

    def opener(self) -> "Callable[[], Warehouse] | None":
        """A way to open this warehouse in another process (picklable): the same database and
        alert rule. None for an in-memory SQLite database, which no other process can see."""
        url = self.engine.url
        if self.dialect == "sqlite" and url.database in (None, "", ":memory:"):
            return None
        return functools.partial(
            _reopened, url.render_as_string(hide_password=False), self.alert_rule
        )

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
        from alembic import command  # noqa: PLC0415

        with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                # Replicas starting together would race to create the same tables: the first
                # migrates, the others wait for its commit here and then find the schema done.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
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
        from alembic import command  # noqa: PLC0415

        with self.engine.begin() as connection:
            command.downgrade(alembic_config(connection), revision)
        log.info("warehouse downgraded", revision=revision, dialect=self.dialect)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self.lookups is not None:
            self.lookups.dispose()


def _reopened(url: str, alert_rule: DeclineRule | None) -> Warehouse:
    """The warehouse at `url`, for another process (Warehouse.opener). It stores protected
    transactions as they come and so needs no personal-data keys of its own."""
    warehouse = Warehouse(url)
    warehouse.alert_rule = alert_rule
    return warehouse


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
        protected = personal.protect(stored_transaction(dict(record)))
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
        "card_id": None if canonical.cc_num is None else str(canonical.cc_num),
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
