"""The main job on embedded defaults: for now, simulate a history with drift and profile it.

It grows into the whole closed loop (train, serve, monitor, retrain, promote) as those
stages land; today it shows the data the rest of the lifecycle will run on.
"""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.data.validation import ValidationReport
from fraudops.progress import ProgressCallback
from fraudops.simulate import (
    SimulationConfig,
    SimulationSummary,
    parse_drift,
    simulate,
    summarise,
    write_transactions,
)


@dataclass(frozen=True, kw_only=True)
class DemoPlan:
    """How much history to simulate and when the drift starts."""

    days: int = 56
    cards: int = 2_000
    seed: int = 42
    drift_day: int = 35
    stolen_credentials_rate: float = 0.004
    amount_factor: float = 1.25

    def config(self) -> SimulationConfig:
        """The simulation: steady spending, then more stolen-credential fraud and dearer baskets."""
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


def run_demo(plan: DemoPlan, *, home: Path, progress: ProgressCallback | None = None) -> DemoResult:
    """Simulate the plan's history into HOME/demo, load it back under `sparkov` and profile it."""
    frame = simulate(plan.config(), progress=progress)
    path = write_transactions(frame, home / "demo" / "transactions.parquet")
    loaded = load_transactions(path, SPARKOV)
    return DemoResult(
        path=path,
        summary=summarise(frame),
        report=loaded.report,
        weekly=weekly_profile(loaded.frame),
        drift_week=plan.drift_day // 7,
    )
