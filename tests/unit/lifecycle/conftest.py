"""Fixtures of the lifecycle unit tests: a SQLite warehouse holding simulated history."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from fraudops.simulate import SimulationConfig, simulate
from fraudops.storage import LabelRecord, ScoredTransaction, ScoreRecord, Warehouse

SIMULATION_START = datetime(2024, 1, 1)
LABEL_DAYS = 2  # a fraud is reported this long after it happened


@pytest.fixture(scope="session")
def simulated() -> pd.DataFrame:
    """Three weeks of 300 simulated cards, about 10,000 transactions and 50 frauds."""
    return simulate(SimulationConfig(days=21, cards=300, seed=5))


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    """A migrated, empty SQLite warehouse."""
    warehouse = Warehouse(f"sqlite:///{(tmp_path / 'warehouse.db').as_posix()}")
    warehouse.migrate()
    yield warehouse
    warehouse.dispose()


@pytest.fixture
def history(warehouse: Warehouse, simulated: pd.DataFrame) -> Warehouse:
    """The warehouse holding the simulation as served, each fraud labelled LABEL_DAYS later."""
    score = ScoreRecord(
        model_name="fraud-detector",
        model_version="0",
        fraud_probability=0.0,
        decision="approve",
        scored_at=SIMULATION_START,
    )
    records = simulated.drop(columns=["is_fraud", "fraud_scenario"]).to_dict(orient="records")
    warehouse.store_scored_batch([ScoredTransaction(transaction=r, score=score) for r in records])
    frauds = simulated[simulated["is_fraud"] == 1]
    warehouse.record_labels(
        [
            LabelRecord(
                trans_num=row.trans_num,
                is_fraud=True,
                label_time=datetime.fromisoformat(row.trans_date_trans_time)
                + timedelta(days=LABEL_DAYS),
                source="chargeback",
            )
            for row in frauds.itertuples()
        ]
    )
    return warehouse
