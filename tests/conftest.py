"""Fixtures shared by every test folder."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# As the CLI does: no MLflow usage telemetry and no download progress bars in tests.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The real Sparkov sample in ../shared/data beside the repository (never copied into it).

    FRAUDOPS_SHARED_DATA names another folder holding it.
    """
    folder = Path(os.environ.get("FRAUDOPS_SHARED_DATA", REPO.parent / "shared" / "data"))
    path = (folder / "sparkov_sample_9999.csv.gz").resolve()
    if not path.is_file():
        pytest.fail(f"the real Sparkov sample is missing: expected it at {path}")
    return path
