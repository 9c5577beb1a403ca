"""Fixtures of the lifecycle unit tests: a SQLite warehouse holding simulated history."""

import pandas as pd
import pytest

from fraudops.simulate import SimulationConfig, simulate
from fraudops.storage import Warehouse
from warehouse_fill import store_served

LABEL_DAYS = 2  # a fraud is reported this long after it happened


@pytest.fixture(scope="session")
def simulated() -> pd.DataFrame:
    """Three weeks of 300 simulated cards, about 10,000 transactions and 50 frauds."""
    return simulate(SimulationConfig(days=21, cards=300, seed=5))


@pytest.fixture
def history(warehouse: Warehouse, simulated: pd.DataFrame) -> Warehouse:
    """The warehouse holding the simulation as served, each fraud labelled LABEL_DAYS later."""
    store_served(warehouse, simulated, label_days=LABEL_DAYS)
    return warehouse
