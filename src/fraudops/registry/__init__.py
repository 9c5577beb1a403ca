"""MLflow tracking and model registry: runs, pyfunc models, versions aliased champion/challenger."""

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
from fraudops.registry.pyfunc import FraudDetectorPyfunc, score_transactions
from fraudops.registry.tracking import MlflowRegistry

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
