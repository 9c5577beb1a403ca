"""Fixtures of the lifecycle unit tests: a SQLite warehouse holding simulated history."""

from pathlib import Path

import pandas as pd
import pytest

from fraudops.simulate import SimulationConfig, simulate
from fraudops.storage import Warehouse
from sqlite_files import copy_database
from warehouse_fill import store_served

LABEL_DAYS = 2  # a fraud is reported this long after it happened


@pytest.fixture(scope="session")
def simulated() -> pd.DataFrame:
    """Three weeks of 300 simulated cards, about 10,000 transactions and 50 frauds."""
    return simulate(SimulationConfig(days=21, cards=300, seed=5))


@pytest.fixture(scope="session")
def served_history(tmp_path_factory: pytest.TempPathFactory, simulated: pd.DataFrame) -> Path:
    """A warehouse file holding the simulation as served, stored once per test process (the
    store costs about a second; a copy of the file, milliseconds)."""
    path = tmp_path_factory.mktemp("served-history") / "warehouse.db"
    warehouse = Warehouse(f"sqlite:///{path.as_posix()}")
    warehouse.migrate()
    store_served(warehouse, simulated, label_days=LABEL_DAYS)
    warehouse.dispose()
    return path


@pytest.fixture
def history(warehouse: Warehouse, served_history: Path) -> Warehouse:
    """The warehouse holding the simulation as served, each fraud labelled LABEL_DAYS later:
    the test's own warehouse, overwritten with a copy of `served_history`."""
    warehouse.dispose()  # no pooled connection outlives the copy
    target = warehouse.engine.url.database
    assert target is not None  # the unit warehouse is a SQLite file
    copy_database(served_history, target)
    return warehouse
