"""Feature test fixtures: a simulated frame, loaded as load_transactions loads it."""

from pathlib import Path

import pandas as pd
import pytest

from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.simulate import SimulationConfig, simulate, write_transactions


@pytest.fixture(scope="session")
def simulated_frame(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """About 3,500 simulated transactions (60 cards over 45 days), with fraud, loaded."""
    path: Path = tmp_path_factory.mktemp("features") / "simulated.parquet"
    write_transactions(simulate(SimulationConfig(days=45, cards=60, seed=11)), path)
    return load_transactions(path, SPARKOV).frame
