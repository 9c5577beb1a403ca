"""MLflow tracking and model registry: runs, pyfunc models, versions aliased champion/challenger.

The MLflow-backed names (MlflowRegistry, FraudDetectorPyfunc, score_transactions) load on
first use: importing the protocol, the aliases or the in-memory registry must not cost the
seconds MLflow takes to import.
"""

import importlib
from typing import TYPE_CHECKING, Any

from fraudops.registry.base import (
    CHALLENGER,
    CHAMPION,
    ModelNotFoundError,
    ModelRegistry,
    ModelVersionInfo,
    RegisteredVersion,
    alias_for_new_version,
)
from fraudops.registry.lineage import GitRevision, dataset_fingerprint, git_revision
from fraudops.registry.memory import InMemoryRegistry

if TYPE_CHECKING:
    from fraudops.registry.pyfunc import FraudDetectorPyfunc, score_transactions
    from fraudops.registry.tracking import MlflowRegistry

# Name -> the module defining it, imported when the name is first asked for.
_LAZY = {
    "FraudDetectorPyfunc": "fraudops.registry.pyfunc",
    "score_transactions": "fraudops.registry.pyfunc",
    "MlflowRegistry": "fraudops.registry.tracking",
}

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "FraudDetectorPyfunc",
    "GitRevision",
    "InMemoryRegistry",
    "MlflowRegistry",
    "ModelNotFoundError",
    "ModelRegistry",
    "ModelVersionInfo",
    "RegisteredVersion",
    "alias_for_new_version",
    "dataset_fingerprint",
    "git_revision",
    "score_transactions",
]


def __getattr__(name: str) -> Any:
    """Import the MLflow-backed names on first use."""
    module = _LAZY.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
