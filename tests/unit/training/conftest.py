"""Training fixtures: one small simulated history, written and loaded as a user would."""

from pathlib import Path

import pandas as pd
import pytest

from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.simulate import SimulationConfig, simulate, write_transactions


@pytest.fixture(scope="session")
def history_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five weeks of 800 simulated cards (about 50,000 transactions) as Parquet."""
    frame = simulate(SimulationConfig(days=35, cards=800, seed=11))
    return write_transactions(frame, tmp_path_factory.mktemp("history") / "history.parquet")


@pytest.fixture(scope="session")
def history(history_path: Path) -> pd.DataFrame:
    """The simulated history as the readers load it."""
    return load_transactions(history_path, SPARKOV).frame
