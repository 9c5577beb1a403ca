"""The warehouse on SQLite and on the real PostgreSQL: migrations, idempotent storage, labels."""

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fraudops.config import Settings
from fraudops.storage import (
    LabelRecord,
    Reason,
    ScoredTransaction,
    ScoreRecord,
    StoredResult,
    Warehouse,
)
from fraudops.storage.tables import Base

T0 = datetime(2026, 3, 1, 12, 0, 0)
WAREHOUSE_TABLES = {
    "alembic_version",
    "transactions",
    "scores",
    "labels",
    "label_events",
    "monitor_runs",
    "lifecycle_events",
    "warehouse_facts",
    "alert_outbox",
}


def transaction(trans_num: str, *, minutes: int = 0, card: int = 4111) -> dict[str, Any]:
    """A canonical transaction `minutes` after T0 (epoch seconds, as Sparkov files carry it)."""
    when = (T0 + timedelta(minutes=minutes)).replace(tzinfo=UTC)
    return {
        "trans_num": trans_num,
        "cc_num": card,
        "merchant": "fraud_Kirlin and Sons",
        "category": "grocery_pos",
        "amt": 12.5 + minutes,
        "city": "Moscow",
        "unix_time": int(when.timestamp()),
    }


def score(
    probability: float = 0.1, *, version: str = "3", features: dict[str, float] | None = None
) -> ScoreRecord:
    """A champion-style score by model version `version`."""
    return ScoreRecord(
        model_name="fraud-detector",
        model_version=version,
        fraud_probability=probability,
        decision="decline" if probability > 0.5 else "approve",
        scored_at=T0 + timedelta(seconds=1),
        reasons=(Reason("amount", 900.0, 1.5, "amount 900.00"),) if probability > 0.5 else (),
        features={"amount": 12.5, "card_count_1h": 0.0} if features is None else features,
        latency_ms=2.5,
    )


def label(trans_num: str, *, is_fraud: bool, days: int = 30) -> LabelRecord:
    """A chargeback label known `days` after T0."""
    return LabelRecord(
        trans_num=trans_num,
        is_fraud=is_fraud,
        label_time=T0 + timedelta(days=days),
        source="chargeback",
    )


def count(warehouse: Warehouse, table: str) -> int:
    """Rows in one warehouse table."""
    with warehouse.engine.connect() as connection:
        return int(connection.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608


def test_migrate_creates_the_tables_and_is_idempotent(bare_warehouse: Warehouse) -> None:
    """Migrating twice leaves exactly the warehouse tables, matching the declarative models."""
    bare_warehouse.migrate()
    bare_warehouse.migrate()
    inspector = sa.inspect(bare_warehouse.engine)
    assert WAREHOUSE_TABLES == set(inspector.get_table_names())
    assert {
        "ix_transactions_event_time",
        "ix_transactions_card_id_event_time",
        "ix_transactions_merchant_event_time",
    } == {index["name"] for index in inspector.get_indexes("transactions")}
    assert {
        "ix_scores_alert_trans_num",
        "ix_scores_alert_risk",
        "ix_scores_champion_scored_at",
    } == {
        index["name"]
        for index in inspector.get_indexes("scores")
        if index["name"].startswith("ix_")  # PostgreSQL also lists the unique constraint
    }
    with bare_warehouse.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert [] == compare_metadata(context, Base.metadata)


def test_downgrade_to_base_then_upgrade_head(warehouse: Warehouse) -> None:
    """Downgrading to base drops every table and upgrading again restores a working schema."""
    warehouse.store_scored(transaction("t1"), score())
    warehouse.downgrade("base")
    assert {"alembic_version"} == set(sa.inspect(warehouse.engine).get_table_names())
    warehouse.migrate()
    assert WAREHOUSE_TABLES == set(sa.inspect(warehouse.engine).get_table_names())
    assert warehouse.get_transaction("t1") is None
    assert warehouse.store_scored(transaction("t1"), score()).created


def test_downgrading_one_revision_restores_the_card_time_index(warehouse: Warehouse) -> None:
    """Revision 0002 only drops the (card_id, event_time) index; its downgrade brings it back."""
    warehouse.store_scored(transaction("t1"), score())
    warehouse.downgrade("0001")
    names = {index["name"] for index in sa.inspect(warehouse.engine).get_indexes("transactions")}
    assert "ix_transactions_card_id_event_time" in names
    assert 1 == count(warehouse, "transactions")
    warehouse.migrate("0002")
    names = {index["name"] for index in sa.inspect(warehouse.engine).get_indexes("transactions")}
    assert "ix_transactions_card_id_event_time" not in names
    warehouse.migrate()  # 0006 creates it again, for the console's card history
    names = {index["name"] for index in sa.inspect(warehouse.engine).get_indexes("transactions")}
    assert "ix_transactions_card_id_event_time" in names


def test_storing_again_returns_the_first_score_and_writes_nothing(warehouse: Warehouse) -> None:
    """A transaction sent twice keeps its first score; the second call gets it back."""
    first = warehouse.store_scored(transaction("t1"), score(0.9))
    second = warehouse.store_scored(transaction("t1"), score(0.2, version="4"))
    assert StoredResult(trans_num="t1", score=score(0.9), shadow=None, created=True) == first
    assert StoredResult(trans_num="t1", score=score(0.9), shadow=None, created=False) == second
    assert (1, 1) == (count(warehouse, "transactions"), count(warehouse, "scores"))


def test_stored_transaction_has_its_record_times_and_scores(warehouse: Warehouse) -> None:
    """get_transaction returns the record (the card as its id), the naive UTC event time and
    the champion."""
    warehouse.store_scored(transaction("t1", minutes=5), score(0.7))
    stored = warehouse.get_transaction("t1")
    assert stored is not None
    card_id = warehouse.personal.card_id(4111)
    assert transaction("t1", minutes=5) | {"cc_num": card_id} == stored.record
    assert T0 + timedelta(minutes=5) == stored.event_time
    assert score(0.7) == stored.champion
    assert () == stored.challengers
    assert stored.label is None
    assert warehouse.get_transaction("missing") is None


def test_shadow_score_is_stored_with_its_version(warehouse: Warehouse) -> None:
    """The challenger's shadow score is kept beside the champion's, with its own version."""
    result = warehouse.store_scored(
        transaction("t1"), score(0.2, version="3"), shadow=score(0.8, version="5")
    )
    again = warehouse.store_scored(transaction("t1"), score(0.3, version="3"))
    stored = warehouse.get_transaction("t1")
    assert stored is not None
    assert (score(0.8, version="5"),) == stored.challengers
    assert "5" == stored.challengers[0].model_version
    assert score(0.8, version="5") == result.shadow == again.shadow
    assert 2 == count(warehouse, "scores")


def test_batch_of_1000_with_100_duplicates_stores_1000(warehouse: Warehouse) -> None:
    """A batch repeating 100 of its 1,000 transactions stores each once, results in order."""
    items = [
        ScoredTransaction(transaction=transaction(f"t{i}", minutes=i), score=score(i / 1000))
        for i in range(1_000)
    ]
    repeats = [
        ScoredTransaction(transaction=transaction(f"t{i}", minutes=i), score=score(0.99))
        for i in range(0, 1_000, 10)
    ]
    results = warehouse.store_scored_batch([*items, *repeats])
    assert 1_100 == len(results)
    assert 1_000 == sum(result.created for result in results)
    assert [f"t{i}" for i in range(0, 1_000, 10)] == [r.trans_num for r in results[1_000:]]
    assert all(r.score == score(int(r.trans_num[1:]) / 1000) for r in results[1_000:])
    assert (1_000, 1_000) == (count(warehouse, "transactions"), count(warehouse, "scores"))


def test_batch_returns_stored_scores_of_known_transactions(warehouse: Warehouse) -> None:
    """In a batch, an already stored transaction returns its stored score and is not rewritten."""
    warehouse.store_scored(transaction("t1"), score(0.9), shadow=score(0.4, version="5"))
    results = warehouse.store_scored_batch(
        [
            ScoredTransaction(transaction=transaction("t1"), score=score(0.1)),
            ScoredTransaction(transaction=transaction("t2", minutes=1), score=score(0.2)),
        ]
    )
    assert [(False, score(0.9), score(0.4, version="5")), (True, score(0.2), None)] == [
        (r.created, r.score, r.shadow) for r in results
    ]
    assert [] == warehouse.store_scored_batch([])


def test_labels_new_repeated_changed_and_unknown(warehouse: Warehouse) -> None:
    """Labels are counted as stored, unchanged or updated; unknown trans_nums are reported."""
    warehouse.store_scored_batch(
        [ScoredTransaction(transaction=transaction(t), score=score()) for t in ("t1", "t2")]
    )
    first = warehouse.record_labels(
        [label("t1", is_fraud=False), label("t2", is_fraud=True), label("x9", is_fraud=True)]
    )
    second = warehouse.record_labels(
        [label("t1", is_fraud=True, days=40), label("t2", is_fraud=True, days=41)]
    )
    assert (3, 0, 0, ("x9",)) == (
        first.stored,
        first.unchanged,
        first.updated,
        first.unknown_trans_nums,
    )
    assert (0, 1, 1, ()) == (
        second.stored,
        second.unchanged,
        second.updated,
        second.unknown_trans_nums,
    )
    stored = warehouse.get_transaction("t1")
    assert stored is not None
    assert label("t1", is_fraud=True, days=40) == stored.label
    # History: three first labels plus the one change; the repeat wrote nothing.
    assert (3, 4) == (count(warehouse, "labels"), count(warehouse, "label_events"))


def test_changing_a_label_within_one_batch_counts_each_step(warehouse: Warehouse) -> None:
    """The same trans_num labelled twice in one call is stored, then updated."""
    outcome = warehouse.record_labels([label("t1", is_fraud=False), label("t1", is_fraud=True)])
    assert (1, 0, 1, ("t1",)) == (
        outcome.stored,
        outcome.unchanged,
        outcome.updated,
        outcome.unknown_trans_nums,
    )


def test_label_of_unknown_transaction_matches_when_it_arrives(warehouse: Warehouse) -> None:
    """A label that came first is kept and shows on the transaction once it is stored."""
    outcome = warehouse.record_labels([label("late", is_fraud=True)])
    warehouse.store_scored(transaction("late"), score(0.6))
    stored = warehouse.get_transaction("late")
    assert ("late",) == outcome.unknown_trans_nums
    assert stored is not None
    assert label("late", is_fraud=True) == stored.label
    assert () == warehouse.record_labels([label("late", is_fraud=True)]).unknown_trans_nums


def test_labelled_between_returns_labelled_rows_in_the_window(warehouse: Warehouse) -> None:
    """Only labelled transactions with event_time in [start, end) come back, with their score."""
    warehouse.store_scored_batch(
        [
            ScoredTransaction(transaction=transaction(f"t{m}", minutes=m), score=score(m / 100))
            for m in (0, 10, 20, 30)
        ]
    )
    warehouse.record_labels(
        [
            label("t0", is_fraud=False, days=1),
            label("t10", is_fraud=True, days=2),
            label("t20", is_fraud=False, days=60),
            label("t30", is_fraud=True),
        ]
    )
    # A challenger's shadow scores are not the served ones.
    warehouse.store_shadow_scores([(f"t{m}", score(0.9, version="4")) for m in (0, 10, 20, 30)])
    frame = warehouse.labelled_between(T0 + timedelta(minutes=5), T0 + timedelta(minutes=30))
    known = warehouse.labelled_between(
        T0, T0 + timedelta(minutes=30), labels_known_by=T0 + timedelta(days=10)
    )
    assert ["t10", "t20"] == frame["trans_num"].tolist()
    assert [1, 0] == frame["is_fraud"].tolist()
    assert [0.1, 0.2] == frame["fraud_probability"].tolist()
    assert ["3", "3"] == frame["model_version"].tolist()
    assert [T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)] == list(frame["event_time"])
    assert [12.5 + 10, 12.5 + 20] == frame["amt"].tolist()
    assert ["t0", "t10"] == known["trans_num"].tolist()
    assert 0 == len(warehouse.labelled_between(T0 + timedelta(days=1), T0 + timedelta(days=2)))


def test_transactions_since_in_event_time_order(warehouse: Warehouse) -> None:
    """Transactions at or after the time come back by event time, whatever the arrival order."""
    for trans_num, minutes in (("c", 30), ("a", 10), ("z", 0), ("b", 20), ("d", 10)):
        warehouse.store_scored(transaction(trans_num, minutes=minutes), score())
    warehouse.record_labels([label("b", is_fraud=True)])
    replay = list(warehouse.transactions_since(T0 + timedelta(minutes=10)))
    assert ["a", "d", "b", "c"] == [item.record["trans_num"] for item in replay]
    assert [10, 10, 20, 30] == [(item.event_time - T0).seconds // 60 for item in replay]
    assert [None, None, label("b", is_fraud=True), None] == [item.label for item in replay]


def test_nan_features_are_stored_as_null_and_read_back_as_nan(warehouse: Warehouse) -> None:
    """Non-finite features are JSON null in the table and NaN when read back."""
    features = {"amount": 12.5, "card_seconds_since_previous": math.nan, "zscore": math.inf}
    result = warehouse.store_scored(transaction("t1"), score(features=features))
    again = warehouse.store_scored(transaction("t1"), score())
    stored = warehouse.get_transaction("t1")
    with warehouse.engine.connect() as connection:
        raw = connection.scalar(sa.select(sa.text("features")).select_from(sa.text("scores")))
    raw_features = raw if isinstance(raw, dict) else json.loads(raw)
    assert {"amount": 12.5, "card_seconds_since_previous": None, "zscore": None} == raw_features
    assert stored is not None
    assert stored.champion is not None
    read_back = dict(stored.champion.features)
    assert 12.5 == read_back["amount"]
    assert math.isnan(read_back["card_seconds_since_previous"])
    assert math.isnan(read_back["zscore"])
    assert read_back.keys() == dict(again.score.features).keys()
    assert math.isnan(again.score.features["zscore"])
    assert result.created


def test_aware_times_are_stored_as_naive_utc(warehouse: Warehouse) -> None:
    """A label time with an offset is kept as the same instant in naive UTC."""
    plus_two = timezone(timedelta(hours=2))
    warehouse.record_labels(
        [
            LabelRecord(
                trans_num="t1", is_fraud=True, label_time=datetime(2026, 3, 5, 14, tzinfo=plus_two)
            )
        ]
    )
    warehouse.store_scored(transaction("t1"), score())
    stored = warehouse.get_transaction("t1")
    assert stored is not None
    assert stored.label is not None
    assert datetime(2026, 3, 5, 12) == stored.label.label_time


def test_database_url_defaults_to_sqlite_under_home(tmp_path: Path) -> None:
    """Without FRAUDOPS_DATABASE_URL the warehouse is HOME/warehouse.db; a set URL wins."""
    default = Settings(home=tmp_path)
    chosen = Settings(home=tmp_path, database_url="postgresql+psycopg://db/fraud")
    assert f"sqlite:///{(tmp_path / 'warehouse.db').resolve().as_posix()}" == (
        default.resolved_database_url
    )
    assert "postgresql+psycopg://db/fraud" == chosen.resolved_database_url
    warehouse = Warehouse.from_settings(default)
    warehouse.migrate()
    warehouse.dispose()
    assert (tmp_path / "warehouse.db").is_file()


def test_other_databases_are_refused() -> None:
    """Only SQLite and PostgreSQL URLs make a warehouse."""
    with pytest.raises(ValueError, match="not 'mysql'"):
        Warehouse("mysql://user@host/db")


def test_card_numbers_and_names_are_never_stored_in_clear(warehouse: Warehouse) -> None:
    """The card becomes a keyed hash with its last four digits; names and street go."""
    warehouse.store_scored(
        transaction("t1", card=4868880499277919)
        | {"first": "Ada", "last": "Lovelace", "street": "1 Analytical Way", "dob": "1990-01-01"},
        score(),
    )
    stored = warehouse.get_transaction("t1")
    assert stored is not None
    assert "7919" == stored.card_last4
    assert warehouse.personal.card_id(4868880499277919) == stored.record["cc_num"]
    assert {"first", "last", "street"}.isdisjoint(stored.record)
    assert "1990-01-01" == stored.record["dob"]  # a model input: kept, masked in answers
    with warehouse.engine.connect() as connection:
        card_ids = connection.scalars(sa.text("SELECT card_id FROM transactions")).all()
    assert [stored.record["cc_num"]] == card_ids


def test_a_card_hash_key_other_than_the_warehouses_is_refused(
    warehouse: Warehouse, database_url: str
) -> None:
    """A second service with another key would never find its cards: it is refused."""
    from fraudops.data.personal import PersonalData, PersonalDataError  # noqa: PLC0415

    warehouse.store_scored(transaction("t1"), score())
    other = Warehouse(database_url, personal=PersonalData(b"k" * 32))
    with pytest.raises(PersonalDataError, match="another card-hash key"):
        other.store_scored(transaction("t2"), score())
    assert other.get_transaction("t2") is None
    other.dispose()


def test_rows_stored_before_hashing_are_protected_by_the_migration(warehouse: Warehouse) -> None:
    """A warehouse at revision 0003 with clear card numbers: migrating to head hashes them
    and drops names, and a repeat of such a transaction is recognised as the same."""
    warehouse.downgrade("0003")
    raw = transaction("old", card=4000123412341234) | {"first": "Ada", "last": "Lovelace"}
    with warehouse.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO transactions (trans_num, card_id, merchant, category, amount, "
                "event_time, record, received_at) VALUES (:t, :c, 'm', 'home', 1.0, :e, :r, :e)"
            ),
            {"t": "old", "c": "4000123412341234", "e": T0, "r": json.dumps(raw)},
        )
        connection.execute(
            sa.text(
                "INSERT INTO scores (trans_num, model_name, model_version, role, "
                "fraud_probability, decision, reasons, features, scored_at) VALUES "
                "('old', 'fraud-detector', '1', 'champion', 0.1, 'approve', '[]', '{}', :e)"
            ),
            {"e": T0},
        )
    warehouse.migrate()
    stored = warehouse.get_transaction("old")
    assert stored is not None
    assert "1234" == stored.card_last4
    assert stored.record["cc_num"].startswith("h1:")
    assert "first" not in stored.record
    known = warehouse.known_transactions(["old", "new"])
    assert ["old"] == list(known)
    from fraudops.data.schema import CanonicalTransaction  # noqa: PLC0415

    again = warehouse.personal.protect(CanonicalTransaction.model_validate(raw))
    assert again.fingerprint == known["old"].fingerprint


def test_the_event_clock_ignores_a_few_transactions_dated_far_ahead(warehouse: Warehouse) -> None:
    """200 transactions a minute apart and one in year 9999 stored: the clock stays on the
    data's own time, a little behind its last minute, and never beyond a day from now."""
    warehouse.store_scored_batch(
        [
            ScoredTransaction(transaction=transaction(f"t{i}", minutes=i), score=score())
            for i in range(200)
        ]
    )
    assert T0 + timedelta(minutes=199) >= (warehouse.event_clock() or T0)
    far = transaction("poison") | {"unix_time": 253_402_300_799}
    warehouse.store_scored(far, score())
    clock = warehouse.event_clock()
    assert clock is not None
    assert T0 + timedelta(minutes=190) <= clock <= T0 + timedelta(minutes=199)


def test_a_sqlite_warehouse_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """warehouse.db (and its write-ahead log) are created with mode 0600."""
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'private' / 'warehouse.db'}")
    warehouse.migrate()
    warehouse.store_scored(transaction("t1"), score())
    files = list((tmp_path / "private").glob("warehouse.db*"))
    assert files
    assert {0o600} == {path.stat().st_mode & 0o777 for path in files}
    assert 0o700 == (tmp_path / "private").stat().st_mode & 0o777
    warehouse.dispose()


def test_rotating_the_card_key_keeps_every_card_and_repeat_recognised(
    warehouse: Warehouse, database_url: str
) -> None:
    """After a rotation, the new key chain gives the stored ids and fingerprints, and the
    old key alone is refused."""
    from fraudops.data.personal import PersonalDataError  # noqa: PLC0415
    from fraudops.data.schema import CanonicalTransaction  # noqa: PLC0415

    raw = transaction("t1", card=4868880499277919)
    warehouse.store_scored(raw, score())
    old_keys = warehouse.personal
    rotated = warehouse.rotate_card_key(b"n" * 32)
    stored = warehouse.get_transaction("t1")
    assert stored is not None
    assert rotated.card_id(4868880499277919) == stored.record["cc_num"]
    assert old_keys.card_id(4868880499277919) != stored.record["cc_num"]
    again = rotated.protect(CanonicalTransaction.model_validate(raw))
    assert again.fingerprint == warehouse.known_transactions(["t1"])["t1"].fingerprint
    stale = Warehouse(database_url, personal=old_keys)
    with pytest.raises(PersonalDataError, match="another card-hash key"):
        stale.store_scored(transaction("t2"), score())
    stale.dispose()
    fresh = Warehouse(database_url, personal=rotated)
    assert not fresh.store_scored(raw, score()).created  # the same transaction, recognised
    fresh.dispose()
