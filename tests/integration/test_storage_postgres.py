"""The warehouse against the real PostgreSQL: concurrent writers and the server's own types."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import psycopg
import pytest
import sqlalchemy as sa

from fraudops.storage import LabelRecord, ScoreRecord, StoredResult, Warehouse
from fraudops.storage.base import ScoredTransaction

pytestmark = pytest.mark.integration

TX = {
    "trans_num": "race",
    "cc_num": 4111,
    "merchant": "m",
    "category": "travel",
    "amt": 9.5,
    "unix_time": 1_772_000_000,
}


def score(version: str) -> ScoreRecord:
    """A score whose model version tells which writer made it."""
    return ScoreRecord(
        model_name="fraud-detector",
        model_version=version,
        fraud_probability=0.4,
        decision="review",
        scored_at=datetime(2026, 3, 1),
    )


@pytest.fixture
def warehouse(clean_postgres_url: str) -> Iterator[Warehouse]:
    """A migrated warehouse in this session's own schema."""
    warehouse = Warehouse(clean_postgres_url)
    warehouse.migrate()
    yield warehouse
    warehouse.dispose()


def test_concurrent_writers_of_one_transaction_store_it_once(warehouse: Warehouse) -> None:
    """Eight replicas storing the same trans_num at once: one writes, all get its score."""

    def store(version: str) -> StoredResult:
        return warehouse.store_scored(TX, score(version))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(store, [str(v) for v in range(8)]))
    winners = [r for r in results if r.created]
    assert 1 == len(winners)
    assert [winners[0].score] * 8 == [r.score for r in results]
    with warehouse.engine.connect() as connection:
        assert 1 == connection.scalar(sa.text("SELECT count(*) FROM scores"))


def test_concurrent_labels_of_one_transaction_store_it_once(warehouse: Warehouse) -> None:
    """Eight writers of the same new label: one stores it, the others find it unchanged."""
    label = LabelRecord(trans_num="race", is_fraud=True, label_time=datetime(2026, 3, 2))
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: warehouse.record_labels([label]), range(8)))
    assert (1, 7) == (sum(o.stored for o in outcomes), sum(o.unchanged for o in outcomes))


def test_groups_pass_through_one_staging_table_per_session_left_empty(
    warehouse: Warehouse,
) -> None:
    """Every group is staged in the session's temporary table, made once and emptied by each
    commit (never vacuumed, it would otherwise grow with every group)."""
    for group in range(3):
        stored = warehouse.store_scored_batch(
            [
                ScoredTransaction(transaction=TX | {"trans_num": f"g{group}-{i}"}, score=score("1"))
                for i in range(4)
            ]
        )
        assert [True] * 4 == [result.created for result in stored]
    with warehouse.engine.connect() as connection:  # the one connection the groups used
        staged = connection.scalars(
            sa.text(
                "SELECT relname FROM pg_class WHERE relnamespace = pg_my_temp_schema() "
                "AND relkind = 'r' ORDER BY relname"
            )
        ).all()
        left = [
            connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))  # noqa: S608
            for table in staged
        ]
    assert {"incoming_scores", "incoming_transactions"} <= set(staged)
    assert [0] * len(staged) == left
    assert 12 == warehouse.count_transactions()


def test_a_group_the_server_refuses_leaves_the_next_groups_stored_in_full(
    warehouse: Warehouse,
) -> None:
    """A group the server refuses (a model version longer than its column) is rolled back
    with what it staged, its transactions too; the session's next groups store everything.
    Refused first (its staging tables made in the rolled-back transaction) and later."""

    def group(name: str, *, version: str = "1") -> list[ScoredTransaction]:
        return [
            ScoredTransaction(transaction=TX | {"trans_num": f"{name}{i}"}, score=score(version))
            for i in range(3)
        ]

    too_long = "v" * 65  # the column holds 64 characters
    for refused, accepted in (("a", "b"), ("c", "d")):
        with pytest.raises(psycopg.errors.StringDataRightTruncation):  # COPY's own error
            warehouse.store_scored_batch(group(refused, version=too_long))
        stored = warehouse.store_scored_batch(group(accepted))
        assert [True] * 3 == [result.created for result in stored]
    with warehouse.engine.connect() as connection:
        kept = set(connection.scalars(sa.text("SELECT trans_num FROM transactions")))
        scored = connection.scalar(sa.text("SELECT count(*) FROM scores"))
    assert {f"{name}{i}" for name in "bd" for i in range(3)} == kept
    assert 6 == scored


def test_tables_live_in_the_session_schema_with_jsonb(warehouse: Warehouse) -> None:
    """Migrations go to the test schema on the search path, with JSONB documents."""
    with warehouse.engine.connect() as connection:
        schema = connection.scalar(sa.text("SELECT current_schema()"))
        types = dict(
            connection.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = :schema AND table_name = 'scores'"
                ),
                {"schema": schema},
            ).all()
        )
    assert str(schema).startswith("fraudops_test_")
    assert ("jsonb", "jsonb", "double precision") == (
        types["features"],
        types["reasons"],
        types["fraud_probability"],
    )


def test_replicas_migrating_a_bare_database_together_both_start(clean_postgres_url: str) -> None:
    """Four warehouses migrate one empty schema at once (replicas starting together): none
    fails on a table another is creating, and the schema ends at head once."""
    warehouses = [Warehouse(clean_postgres_url) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda w: w.migrate(), warehouses))
    with warehouses[0].engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    for warehouse in warehouses:
        warehouse.dispose()

    assert 1 == len(versions)
