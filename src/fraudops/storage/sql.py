"""What the warehouse's groups of tables share: the engine, bulk inserts, chunks of keys.

SQLite by default, PostgreSQL in production; the same statements run on both, except the
bulk inserts, which take each dialect's fastest path (see `SqlTables._insert_ignoring`).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from fraudops.data.personal import PersonalData
from fraudops.storage.tables import Base

# Rows per statement when a batch is looked up by trans_num (well under every bind limit).
CHUNK = 500

_T = TypeVar("_T")
# Columns copied to PostgreSQL as JSON text.
_JSON_COLUMNS = frozenset({"record", "reasons", "features"})


class SqlTables:
    """The engine and the dialect-aware inserts every group of warehouse tables uses."""

    engine: Engine
    dialect: str  # "sqlite" or "postgresql"
    # PostgreSQL: autocommit connections for single-statement look-ups on the scoring path.
    lookups: Engine | None = None
    _processors: dict[Any, Callable[[Any], Any] | None]

    @property
    def personal(self) -> PersonalData:
        """The keys protecting personal data here (the Warehouse checks and provides them)."""
        raise NotImplementedError

    def _insert(self, entity: type[Base]) -> "sqlite.Insert | postgresql.Insert":
        """The dialect's INSERT, which knows ON CONFLICT."""
        if self.dialect == "postgresql":
            return postgresql.insert(entity)
        return sqlite.insert(entity)

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
        for part in chunks(rows):
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
            # Every column's type, no constraint, no default: made once per session, and
            # emptied at each commit (a temporary table is never vacuumed). Made and dropped
            # in every transaction, as before, it cost the server more than the rows it
            # brought: 2.2 ms of CPU per group of one transaction, 0.9 ms now
            # (benchmarks/bench_pg_store.py). A session keeps the columns the table had when
            # it made its copy; services migrate before they store.
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS "  # noqa: S608
                f"AS SELECT * FROM {table} WITH NO DATA"
            )
            with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(_converted(row, columns, converters))
            # Moved, not copied: the staging table is empty again for the next group.
            cursor.execute(
                f"WITH incoming AS (DELETE FROM {staging} RETURNING {names}) "  # noqa: S608
                f"INSERT INTO {table} ({names}) SELECT {names} FROM incoming "
                f"ON CONFLICT ({', '.join(key)}) DO NOTHING RETURNING {key[0]}"
            )
            inserted = [str(found[0]) for found in cursor.fetchall()]
        finally:
            cursor.close()
        return inserted

    def _converters(
        self, entity: type[Base], columns: Sequence[str], *, json_text: bool
    ) -> list[Callable[[Any], Any] | None]:
        """Per column, how its values are sent: the dialect's bind processor, or (COPY to
        PostgreSQL, json_text=True) JSON columns as JSON text."""
        return [
            json_text_of
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


def json_text_of(value: Any) -> str:
    """JSON text for a JSON column: orjson (fast; NaN and infinities become null)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def chunks(values: Sequence[_T]) -> Iterable[Sequence[_T]]:
    """Consecutive slices of at most CHUNK values."""
    return (values[i : i + CHUNK] for i in range(0, len(values), CHUNK))
