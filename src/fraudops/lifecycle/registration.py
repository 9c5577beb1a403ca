"""Registering a trained model: the one way a training run becomes a registry version.

Training knows nothing of the registry; this module joins them, for training from a file
(`fraudops train`, the demo, the DAGs) and for retraining from the warehouse alike.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from fraudops.data.profiles import DatasetProfile
from fraudops.progress import ProgressCallback
from fraudops.registry.base import ModelRegistry, RegisteredVersion
from fraudops.training.trainer import TrainingConfig, TrainingResult

if TYPE_CHECKING:
    from fraudops.training.workflow import TrainedFromFile


def register_training(
    registry: ModelRegistry,
    *,
    frame: pd.DataFrame,
    profile: DatasetProfile,
    result: TrainingResult,
    data_source: str,
    artifacts: dict[str, Path],
    tags: dict[str, str] | None = None,
) -> RegisteredVersion:
    """Log a training run with its lineage and register its bundle (champion or challenger)."""
    from fraudops.registry.lineage import dataset_fingerprint  # noqa: PLC0415
    from fraudops.registry.pyfunc import raw_input_example  # noqa: PLC0415 - MLflow is heavy

    return registry.log_training(
        result.bundle,
        input_example=raw_input_example(frame, profile),
        dataset_fingerprint=dataset_fingerprint(frame),
        metrics={"tuning_trials": float(result.trials_run)}
        | {f"seconds_{name}": value for name, value in result.seconds.items()},
        params={"data": data_source, "threshold_objective": result.threshold.objective},
        artifacts=artifacts,
        tags={"data_profile": profile.name} | (tags or {}),
    )


def train_and_register(
    *,
    data: Path,
    profile: DatasetProfile,
    config: TrainingConfig,
    out_dir: Path,
    registry: ModelRegistry,
    progress: ProgressCallback | None = None,
) -> tuple["TrainedFromFile", RegisteredVersion]:
    """Train on a file, write its report, and register the model (champion or challenger)."""
    from fraudops.training.workflow import train_from_file  # noqa: PLC0415 - plotting is heavy

    trained = train_from_file(
        data=data, profile=profile, config=config, out_dir=out_dir, progress=progress
    )
    version = register_training(
        registry,
        frame=trained.frame,
        profile=profile,
        result=trained.result,
        data_source=str(data),
        artifacts=trained.artifacts,
    )
    return trained, version
