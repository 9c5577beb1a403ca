"""Backtest: train on what was known before the test period, score the test period.

The model is trained on labelled data before `test_start - delay`; every transaction in
[test_start, test_end] is scored with features computed point-in-time over the whole file.
Labels of the test period are hidden from the features, so that they can never influence a
test score, whatever the delay and the test length.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.data.profiles import DatasetProfile
from fraudops.progress import ProgressCallback
from fraudops.training.metrics import EvaluationResult
from fraudops.training.trainer import TrainingConfig, TrainingResult, evaluate_rows, train


class BacktestError(ValueError):
    """A backtest whose periods do not fit the data."""


@dataclass(frozen=True, kw_only=True)
class BacktestResult:
    """Scores of the test period, its metrics and the model that produced them."""

    scores: pd.DataFrame
    test_rows: npt.NDArray[np.bool_]
    test: EvaluationResult
    training: TrainingResult
    test_start: datetime
    test_end: datetime

    def report(self) -> dict[str, Any]:
        """The JSON report: test metrics, periods, model and validation metrics."""
        bundle = self.training.bundle
        return {
            "metrics": self.test.to_dict(),
            "test": {
                "start": self.test_start.isoformat(),
                "end": self.test_end.isoformat(),
                "transactions": len(self.scores),
            },
            "training": self.training.split.to_dict(),
            "model": {
                "type": bundle.model_type,
                "params": bundle.params,
                "threshold": bundle.threshold,
                "threshold_objective": self.training.threshold.objective,
                "features": list(bundle.feature_names),
                "trials": self.training.trials_run,
            },
            "validation_metrics": self.training.validation.to_dict(),
            "seconds": self.training.seconds,
        }


def run_backtest(
    frame: pd.DataFrame,
    profile: DatasetProfile,
    *,
    test_start: datetime,
    test_end: datetime,
    config: TrainingConfig,
    progress: ProgressCallback | None = None,
) -> BacktestResult:
    """Train before test_start minus the delay and score every transaction of the test period.

    `test_end` is inclusive: a date at midnight stands for its whole day.
    """
    if profile.label is None:
        msg = f"profile {profile.name!r} has no label; a backtest needs one"
        raise BacktestError(msg)
    end = test_end + timedelta(days=1) if test_end == _midnight(test_end) else test_end
    if end <= test_start:
        msg = f"test end {test_end:%Y-%m-%d} is before test start {test_start:%Y-%m-%d}"
        raise BacktestError(msg)
    times = frame["event_time"].to_numpy(dtype="datetime64[ns]")
    in_test = (times >= np.datetime64(test_start)) & (times < np.datetime64(end))
    if not in_test.any():
        msg = f"no transaction between {test_start:%Y-%m-%d} and {test_end:%Y-%m-%d}"
        raise BacktestError(msg)
    hidden = frame.copy()
    hidden.loc[times >= np.datetime64(test_start), profile.label] = 0
    training = train(
        hidden,
        profile,
        replace(config, labelled_end=test_start - config.delay),
        progress=progress,
    )
    scores = training.bundle.score_features(training.features[in_test])
    test = evaluate_rows(
        frame=frame,
        profile=profile,
        rows=in_test,
        scores=scores,
        threshold=training.bundle.threshold,
        config=config,
    )
    id_column = profile.id_column
    return BacktestResult(
        scores=pd.DataFrame({id_column: frame.loc[in_test, id_column].to_numpy(), "score": scores}),
        test_rows=in_test,
        test=test,
        training=training,
        test_start=test_start,
        test_end=end,
    )


def _midnight(moment: datetime) -> datetime:
    """The start of a moment's day."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)
