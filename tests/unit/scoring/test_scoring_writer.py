"""Group commit: every caller learns its own outcome; a transaction and its label go together."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fraudops.data.schema import CanonicalTransaction
from fraudops.scoring.writer import GroupCommitWriter, StoreUnavailableError
from fraudops.storage.base import LabelRecord, ScoredTransaction, ScoreRecord
from fraudops.storage.warehouse import Warehouse


def scored(trans_num: str) -> ScoredTransaction:
    """A small scored canonical transaction."""
    transaction = CanonicalTransaction.model_validate(
        {
            "trans_num": trans_num,
            "cc_num": 1,
            "merchant": "m",
            "category": "home",
            "amt": 5.0,
            "unix_time": 1_700_000_000,
        }
    )
    score = ScoreRecord(
        model_name="fraud-detector",
        model_version="1",
        fraud_probability=0.1,
        decision="approve",
        scored_at=datetime.now(UTC),
    )
    return ScoredTransaction(transaction=transaction, score=score)


def test_a_label_failure_stores_neither_the_transaction_nor_its_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction and its label are stored together or not at all; the others of the group
    are stored, and the failed one is new when sent again."""
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    warehouse.migrate()

    def broken(*_args: object) -> None:
        raise RuntimeError("labels table is locked")

    monkeypatch.setattr(warehouse, "_record_labels", broken)
    writer = GroupCommitWriter(warehouse)
    label = LabelRecord(trans_num="b", is_fraud=True, label_time=datetime(2024, 1, 1))
    plain = writer.submit(scored("a"))
    labelled = writer.submit(scored("b"), label=label)
    writer.start()
    writer.close()
    assert plain.result().created is True
    with pytest.raises(StoreUnavailableError, match="labels table is locked"):
        labelled.result()
    assert warehouse.get_transaction("b") is None
    monkeypatch.undo()
    again = GroupCommitWriter(warehouse)
    again.start()
    retried = again.submit(scored("b"), label=label)
    again.close()
    assert retried.result().created is True
    stored = warehouse.get_transaction("b")
    assert stored is not None and stored.label is not None
    assert stored.label.is_fraud is True
