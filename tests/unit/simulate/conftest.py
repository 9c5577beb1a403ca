"""Simulator test fixtures: small simulated frames shared by the tests of a session."""

import pandas as pd
import pytest
from sim_helpers import with_derived

from fraudops.simulate import SimulationConfig, simulate


@pytest.fixture(scope="session")
def small_frame() -> pd.DataFrame:
    """About 13,000 transactions: 400 cards over 20 days."""
    return simulate(SimulationConfig(days=20, cards=400, seed=1))


@pytest.fixture(scope="session")
def large_frame() -> pd.DataFrame:
    """About 100,000 transactions (2,000 cards over 30 days) with derived columns."""
    return with_derived(simulate(SimulationConfig(days=30, cards=2_000, seed=2)))
