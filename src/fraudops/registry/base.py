"""The model registry edge: what every registry offers, and the rule for new versions' aliases."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from fraudops.training.bundle import ModelBundle

CHAMPION = "champion"
CHALLENGER = "challenger"


class ModelNotFoundError(LookupError):
    """No registered version answers to the alias or number asked for."""


@dataclass(frozen=True, kw_only=True)
class RegisteredVersion:
    """A model version just registered: where it came from and the alias it was given."""

    name: str
    version: int
    run_id: str
    alias: str


@dataclass(frozen=True, kw_only=True)
class ModelVersionInfo:
    """One registered version with its aliases, run metrics and lineage tags."""

    name: str
    version: int
    run_id: str | None
    aliases: tuple[str, ...]
    created_at: datetime
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def alias_for_new_version(aliases: Mapping[str, int]) -> str:
    """A new version becomes champion if there is none yet, otherwise challenger."""
    return CHALLENGER if CHAMPION in aliases else CHAMPION


class ModelRegistry(Protocol):
    """Where trained bundles are recorded, versioned, aliased and loaded back."""

    def log_training(
        self,
        bundle: ModelBundle,
        *,
        input_example: pd.DataFrame,
        dataset_fingerprint: str,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, object] | None = None,
        artifacts: Mapping[str, Path] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredVersion:
        """Record a training run and register its bundle as champion or challenger."""
        ...

    def load(self, alias: str = CHAMPION) -> ModelBundle:
        """The bundle the alias points at."""
        ...

    def load_version(self, version: int) -> ModelBundle:
        """The bundle of one version number."""
        ...

    def resolve(self, alias: str = CHAMPION) -> ModelVersionInfo:
        """The version the alias points at now."""
        ...

    def versions(self) -> list[ModelVersionInfo]:
        """Every registered version, newest first."""
        ...

    def set_alias(self, version: int, alias: str) -> None:
        """Point an alias at a version (moving it from any other)."""
        ...

    def delete_alias(self, alias: str) -> None:
        """Remove an alias from whichever version holds it."""
        ...

    def set_version_tags(self, version: int, tags: Mapping[str, str]) -> None:
        """Set tags on a version (moved decisions are recorded on the versions they touch)."""
        ...
