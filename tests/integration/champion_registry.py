"""An MLflow registry holding one champion, and the environment of a service serving it."""

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from fraudops.config import Settings
from fraudops.registry import MlflowRegistry
from fraudops.training.bundle import ModelBundle
from mlflow_store import seeded_home
from service_process import service_env


def register_champion(
    home: Path, train_bundle: Callable[..., ModelBundle], frame: pd.DataFrame
) -> Path:
    """A registry (SQLite) under `home` whose champion was trained on `frame`."""
    registry = MlflowRegistry(Settings(home=seeded_home(home), _env_file=None))  # type: ignore[call-arg]
    bundle = train_bundle(frame, threshold=0.5, seed=3)
    registry.log_training(bundle, input_example=frame.head(3), dataset_fingerprint="sample")
    return home


def champion_env(home: Path, registry_home: Path, **settings: str) -> dict[str, str]:
    """A service environment: its own home and warehouse, the champion's registry."""
    tracking = Settings(home=registry_home, _env_file=None)  # type: ignore[call-arg]
    return service_env(home, tracking_uri=tracking.resolved_tracking_uri, **settings)
