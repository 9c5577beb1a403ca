"""Train and backtest from files to files: what the CLI, the scheduler and the DAGs call."""

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from fraudops.data.profiles import DatasetProfile
from fraudops.data.readers import load_transactions
from fraudops.features.spec import MS_PER_DAY
from fraudops.progress import ProgressCallback
from fraudops.training.backtest import BacktestResult, run_backtest
from fraudops.training.metrics import EvaluationResult
from fraudops.training.plots import write_plots
from fraudops.training.report import write_report
from fraudops.training.trainer import TrainingConfig, TrainingResult, train

log = structlog.get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainedFromFile:
    """A training run on a file, with the loaded frame and the report files written."""

    frame: pd.DataFrame
    result: TrainingResult
    artifacts: dict[str, Path]


def load_labelled(path: Path, profile: DatasetProfile) -> pd.DataFrame:
    """Load a file for training or backtesting; a bad row refuses the file (no silent loss)."""
    return load_transactions(path, profile).frame


def train_from_file(
    *,
    data: Path,
    profile: DatasetProfile,
    config: TrainingConfig,
    out_dir: Path,
    progress: ProgressCallback | None = None,
) -> TrainedFromFile:
    """Load, train, and write validation plots and the training report under out_dir."""
    frame = load_labelled(data, profile)
    result = train(frame, profile, config, progress=progress)
    _, validation_rows = result.split.masks(frame["event_time"])
    artifacts = write_evaluation(
        out_dir=out_dir,
        title=f"fraudops training: {config.model_type} on {data.name} (validation period)",
        evaluation=result.validation,
        labels=_labels(frame, profile, validation_rows),
        scores=result.validation_scores,
        result=result,
        context={"data": str(data), "profile": profile.name} | result.split.to_dict(),
    )
    return TrainedFromFile(frame=frame, result=result, artifacts=artifacts)


def backtest_to_files(
    *,
    data: Path,
    profile: DatasetProfile,
    test_start: datetime,
    test_end: datetime,
    config: TrainingConfig,
    scores_out: Path,
    report_out: Path,
    progress: ProgressCallback | None = None,
) -> BacktestResult:
    """Run a backtest and write its scores (Parquet), JSON report, plots and readable report."""
    frame = load_labelled(data, profile)
    result = run_backtest(
        frame, profile, test_start=test_start, test_end=test_end, config=config, progress=progress
    )
    scores_out.parent.mkdir(parents=True, exist_ok=True)
    scores = result.scores.copy()
    scores[profile.id_column] = integer_ids_as_numbers(scores[profile.id_column])
    scores.to_parquet(scores_out, index=False)
    report = result.report() | {
        "data": str(data),
        "profile": profile.name,
        "delay_days": config.delay_days,
        "label_window_lag_days": result.training.bundle.spec.label_lag_ms / MS_PER_DAY,
        "scores": str(scores_out),
    }
    artifacts = write_evaluation(
        out_dir=report_out.with_suffix("").with_name(report_out.stem + "_files"),
        title=f"fraudops backtest: {config.model_type} on {data.name}",
        evaluation=result.test,
        labels=_labels(frame, profile, result.test_rows),
        scores=result.scores["score"].to_numpy(dtype=np.float64),
        result=result.training,
        context={
            "data": str(data),
            "profile": profile.name,
            "test_start": result.test_start.isoformat(),
            "test_end": result.test_end.isoformat(),
        }
        | result.training.split.to_dict(),
    )
    report["artifacts"] = {name: str(path) for name, path in artifacts.items()}
    report_out.parent.mkdir(parents=True, exist_ok=True)
    report_out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    log.info(
        "backtest written",
        scores=str(scores_out),
        report=str(report_out),
        average_precision=round(result.test.average_precision, 4),
    )
    return result


def integer_ids_as_numbers(ids: "pd.Series[str]") -> pd.Series:
    """Ids that are all plain whole numbers (fdh's TRANSACTION_ID) as int64, others unchanged.

    The readers keep ids as text so that no digit is lost; a scores file should carry them
    as the data set does, so that it joins back onto the original file.
    """
    text = ids.astype("string")
    canonical = text.str.fullmatch(r"-?(0|[1-9][0-9]{0,17})").fillna(value=False)
    if len(text) and bool(canonical.all()):
        return text.astype("int64")
    return ids


def write_evaluation(
    *,
    out_dir: Path,
    title: str,
    evaluation: EvaluationResult,
    labels: npt.NDArray[np.int8],
    scores: npt.NDArray[np.float64],
    result: TrainingResult,
    context: dict[str, str],
) -> dict[str, Path]:
    """Plots and a Markdown + HTML report of one evaluated period."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(
        out_dir=out_dir,
        labels=labels,
        scores=scores,
        threshold=result.bundle.threshold,
        feature_importance=result.importance,
    )
    reports = write_report(
        out_dir=out_dir,
        title=title,
        evaluation=evaluation,
        context={
            **context,
            "model": result.bundle.model_type,
            "threshold": result.bundle.threshold,
            "threshold objective": result.threshold.objective,
            "tuning trials": result.trials_run,
            **review_context(result),
        },
        plots=plots,
    )
    return plots | reports


def review_context(result: TrainingResult) -> dict[str, str]:
    """The alert budget's lines of a report: capacity, review threshold, validation rate."""
    review = result.review
    if review is None:
        return {}
    return {
        "review capacity (alerts per day)": f"{review.capacity:g}",
        "review threshold": f"{result.bundle.review_threshold}",
        "validation alerts per day": f"{review.alerts_per_day:.1f}",
    }


def _labels(
    frame: pd.DataFrame, profile: DatasetProfile, rows: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int8]:
    """The label column of some rows."""
    assert profile.label is not None  # noqa: S101 - training refuses unlabelled profiles
    return frame.loc[rows, profile.label].to_numpy(dtype=np.int8)
