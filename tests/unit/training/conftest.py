"""Training fixtures: one small simulated history, written and loaded as a user would."""

from pathlib import Path

import pandas as pd
import pytest
from training_recipes import QUICK, TEST_END, TEST_START

from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.simulate import SimulationConfig, simulate, write_transactions
from fraudops.training.backtest import BacktestResult, run_backtest
from fraudops.training.trainer import TrainingConfig, TrainingResult, train


@pytest.fixture(scope="session")
def history_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five weeks of 650 simulated cards (about 40,000 transactions) as Parquet."""
    frame = simulate(SimulationConfig(days=35, cards=650, seed=11))
    return write_transactions(frame, tmp_path_factory.mktemp("history") / "history.parquet")


@pytest.fixture(scope="session")
def history(history_path: Path) -> pd.DataFrame:
    """The simulated history as the readers load it."""
    return load_transactions(history_path, SPARKOV).frame


# Fits that several tests read, made once per session (a test that needs its own fit, to
# compare two of them, still makes it).


@pytest.fixture(scope="session")
def default_training(history: pd.DataFrame) -> TrainingResult:
    """The default recipe, untuned, trained on the simulated history."""
    return train(history, SPARKOV, TrainingConfig(trials=0))


@pytest.fixture(scope="session")
def quick_training(history: pd.DataFrame) -> TrainingResult:
    """Two tuning trials with seed 3, trained on the simulated history."""
    return train(history, SPARKOV, QUICK)


@pytest.fixture(scope="session")
def quick_backtest(history: pd.DataFrame) -> BacktestResult:
    """A backtest of the last week of the history with the quick recipe."""
    return run_backtest(history, SPARKOV, test_start=TEST_START, test_end=TEST_END, config=QUICK)
