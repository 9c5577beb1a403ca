"""A registry in a dict, for tests of the components that talk to a registry."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from fraudops.registry.base import (
    CHAMPION,
    ModelNotFoundError,
    ModelVersionInfo,
    RegisteredVersion,
    alias_for_new_version,
)
from fraudops.training.bundle import ModelBundle


@dataclass(frozen=True)
class _Entry:
    """One stored version."""

    bundle: ModelBundle
    run_id: str
    created_at: datetime
    metrics: dict[str, float]
    tags: dict[str, str]


class InMemoryRegistry:
    """The ModelRegistry rules (versions, champion then challenger) without MLflow."""

    def __init__(self, name: str = "fraud-detector") -> None:
        self.name = name
        self._entries: dict[int, _Entry] = {}
        self._aliases: dict[str, int] = {}

    def log_training(
        self,
        bundle: ModelBundle,
        *,
        input_example: pd.DataFrame,  # noqa: ARG002 - part of the ModelRegistry contract
        dataset_fingerprint: str,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, object] | None = None,  # noqa: ARG002 - part of the contract
        artifacts: Mapping[str, Path] | None = None,  # noqa: ARG002 - part of the contract
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredVersion:
        """Keep the bundle as the next version and give it champion or challenger."""
        version = max(self._entries, default=0) + 1
        run_id = f"memory-run-{version}"
        self._entries[version] = _Entry(
            bundle=bundle,
            run_id=run_id,
            created_at=datetime.now(UTC),
            metrics={**bundle.metrics, **(metrics or {})},
            tags={
                "data_profile": bundle.spec.profile.name,
                "data_profile_digest": bundle.spec.profile.digest,
                "dataset_fingerprint": dataset_fingerprint,
                "model_type": bundle.model_type,
                **(tags or {}),
            },
        )
        alias = alias_for_new_version(self._aliases)
        self._aliases[alias] = version
        return RegisteredVersion(name=self.name, version=version, run_id=run_id, alias=alias)

    def load(self, alias: str = CHAMPION) -> ModelBundle:
        """The bundle the alias points at."""
        return self.load_version(self.resolve(alias).version)

    def load_version(self, version: int) -> ModelBundle:
        """The bundle of one version number."""
        return self._entry(version).bundle

    def resolve(self, alias: str = CHAMPION) -> ModelVersionInfo:
        """The version the alias points at now."""
        if alias not in self._aliases:
            msg = f"model {self.name!r} has no version with alias {alias!r}"
            raise ModelNotFoundError(msg)
        return self._info(self._aliases[alias])

    def versions(self) -> list[ModelVersionInfo]:
        """Every registered version, newest first."""
        return [self._info(version) for version in sorted(self._entries, reverse=True)]

    def set_alias(self, version: int, alias: str) -> None:
        """Point an alias at a version (moving it from any other)."""
        self._entry(version)
        self._aliases[alias] = version

    def delete_alias(self, alias: str) -> None:
        """Remove an alias from whichever version holds it."""
        self._aliases.pop(alias, None)

    def set_version_tags(self, version: int, tags: Mapping[str, str]) -> None:
        """Set tags on a version."""
        self._entry(version).tags.update(tags)

    def _entry(self, version: int) -> _Entry:
        """A stored version, or ModelNotFoundError."""
        if version not in self._entries:
            msg = f"model {self.name!r} has no version {version}"
            raise ModelNotFoundError(msg)
        return self._entries[version]

    def _info(self, version: int) -> ModelVersionInfo:
        """The public description of a stored version."""
        entry = self._entries[version]
        return ModelVersionInfo(
            name=self.name,
            version=version,
            run_id=entry.run_id,
            aliases=tuple(sorted(a for a, v in self._aliases.items() if v == version)),
            created_at=entry.created_at,
            metrics=dict(entry.metrics),
            tags=dict(entry.tags),
        )
