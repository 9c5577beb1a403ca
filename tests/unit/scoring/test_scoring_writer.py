"""Group commit: every caller learns its own outcome, and a label failure stores nothing twice."""

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


def test_a_label_failure_fails_only_the_jobs_with_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transactions stay stored once; only the labelled job fails, and not as a duplicate."""
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    warehouse.migrate()

    def broken(_labels: object) -> None:
        raise RuntimeError("labels table is locked")

    monkeypatch.setattr(warehouse, "record_labels", broken)
    writer = GroupCommitWriter(warehouse)
    label = LabelRecord(trans_num="b", is_fraud=True, label_time=datetime(2024, 1, 1))
    plain = writer.submit(scored("a"))
    labelled = writer.submit(scored("b"), label=label)
    writer.start()
    writer.close()
    assert plain.result().created is True
    with pytest.raises(StoreUnavailableError, match="labels table is locked"):
        labelled.result()
    assert warehouse.get_transaction("b") is not None
    monkeypatch.undo()
    again = GroupCommitWriter(warehouse)
    again.start()
    retried = again.submit(scored("b"), label=label)
    again.close()
    assert retried.result().created is False
    stored = warehouse.get_transaction("b")
    assert stored is not None and stored.label is not None
    assert stored.label.is_fraud is True
