"""Importing the scoring service leaves MLflow and numba unloaded (slow to import)."""

import json
import subprocess
import sys


def modules_loaded_by(statement: str, candidates: list[str]) -> list[str]:
    """Which of `candidates` a fresh interpreter has in sys.modules after `statement`."""
    program = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps([m for m in {candidates!r} if m in sys.modules]))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(completed.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_scoring_service_does_not_import_mlflow() -> None:
    """`import fraudops.scoring.service` (what the API and the ingester load) skips MLflow."""
    assert [] == modules_loaded_by("import fraudops.scoring.service", ["mlflow"])


def test_the_registry_package_loads_mlflow_only_when_asked() -> None:
    """The registry's protocol and aliases come without MLflow; MlflowRegistry brings it."""
    assert [] == modules_loaded_by(
        "from fraudops.registry import CHAMPION, InMemoryRegistry, ModelRegistry", ["mlflow"]
    )
    assert ["mlflow"] == modules_loaded_by(
        "from fraudops.registry import MlflowRegistry", ["mlflow"]
    )


def test_importing_the_scoring_service_does_not_import_numba() -> None:
    """numba (a few hundred ms) is imported where a tree model is built, not with the service."""
    assert [] == modules_loaded_by("import fraudops.scoring.service", ["numba"])
