"""The main job on embedded defaults: simulate, validate, backtest, train and register.

It grows into the whole closed loop (serve, monitor, retrain, promote) as those stages
land; today it shows the data, how well the recipe does on its last week, and the
champion model registered in the embedded MLflow.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.data.validation import ValidationReport
from fraudops.progress import ProgressCallback, silent_progress
from fraudops.registry import ModelRegistry, RegisteredVersion
from fraudops.simulate import (
    SimulationConfig,
    SimulationSummary,
    parse_drift,
    simulate,
    summarise,
    write_transactions,
)
from fraudops.training.metrics import EvaluationResult
from fraudops.training.trainer import TrainingConfig
from fraudops.training.workflow import backtest_to_files, train_and_register

MIN_DAYS = 35


@dataclass(frozen=True, kw_only=True)
class DemoPlan:
    """How much history to simulate and when the drift starts."""

    days: int = 56
    cards: int = 2_000
    seed: int = 42
    drift_day: int = 35
    stolen_credentials_rate: float = 0.004
    amount_factor: float = 1.25
    trials: int = 5

    def config(self) -> SimulationConfig:
        """The simulation: steady spending, then more stolen-credential fraud and dearer baskets."""
        if self.days < MIN_DAYS:
            msg = (
                f"the demo needs at least {MIN_DAYS} days (two weeks of training, a week of "
                f"validation, the 7-day label delay and a test week), not {self.days}"
            )
            raise ValueError(msg)
        return SimulationConfig(
            days=self.days,
            cards=self.cards,
            seed=self.seed,
            drift=(
                parse_drift(
                    f"scenario@{self.drift_day}:name=stolen_credentials,"
                    f"rate={self.stolen_credentials_rate}"
                ),
                parse_drift(f"amount@{self.drift_day}:factor={self.amount_factor}"),
            ),
        )


@dataclass(frozen=True, kw_only=True)
class DemoResult:
    """What the demo produced: the data file, its validation and its week-by-week profile."""

    path: Path
    summary: SimulationSummary
    report: ValidationReport
    weekly: pd.DataFrame
    drift_week: int
    backtest: EvaluationResult
    backtest_report: Path
    registered: RegisteredVersion
    training_report: Path


def weekly_profile(frame: pd.DataFrame) -> pd.DataFrame:
    """Transactions, fraud rate and mean amount per week, from a frame the readers loaded."""
    start = frame["event_time"].min().normalize()
    week = ((frame["event_time"] - start).dt.days // 7).rename("week")
    grouped = frame.groupby(week)
    return pd.DataFrame(
        {
            "transactions": grouped.size(),
            "fraud_rate": grouped["is_fraud"].mean(),
            "mean_amount": grouped["amt"].mean(),
        }
    )


def run_demo(
    plan: DemoPlan,
    *,
    home: Path,
    registry: ModelRegistry,
    progress: ProgressCallback | None = None,
) -> DemoResult:
    """Simulate into HOME/demo, validate, backtest the last week, train and register a model."""
    report = progress or silent_progress
    report("simulating", 0.0)
    frame = simulate(plan.config())
    folder = home / "demo"
    path = write_transactions(frame, folder / "transactions.parquet")
    report("validating", 0.1)
    loaded = load_transactions(path, SPARKOV)
    config = TrainingConfig(trials=plan.trials, seed=plan.seed)
    last_day = datetime.combine(plan.config().start, datetime.min.time()) + timedelta(
        days=plan.days - 1
    )
    report("backtesting the last week", 0.2)
    backtest = backtest_to_files(
        data=path,
        profile=SPARKOV,
        test_start=last_day - timedelta(days=6),
        test_end=last_day,
        config=config,
        scores_out=folder / "backtest_scores.parquet",
        report_out=folder / "backtest.json",
    )
    report("training the champion", 0.6)
    trained, registered = train_and_register(
        data=path,
        profile=SPARKOV,
        config=config,
        out_dir=folder / "training",
        registry=registry,
    )
    report("done", 1.0)
    return DemoResult(
        path=path,
        summary=summarise(frame),
        report=loaded.report,
        weekly=weekly_profile(loaded.frame),
        drift_week=plan.drift_day // 7,
        backtest=backtest.test,
        backtest_report=folder / "backtest.json",
        registered=registered,
        training_report=trained.artifacts["html"],
    )
