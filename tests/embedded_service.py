"""A ScoringService on the embedded default, built for tests: a SQLite warehouse in a folder
and in-process feature state."""

from pathlib import Path

from fraudops.config import Settings
from fraudops.features.state import InMemoryStateStore
from fraudops.registry.base import ModelRegistry
from fraudops.scoring.service import ScoringService
from fraudops.storage.warehouse import Warehouse


def sqlite_service(settings: Settings, registry: ModelRegistry, folder: Path) -> ScoringService:
    """The scoring service on `folder`/warehouse.db and in-process feature state."""
    return ScoringService(
        settings=settings,
        warehouse=Warehouse(f"sqlite:///{folder / 'warehouse.db'}"),
        registry=registry,
        store=InMemoryStateStore(),
    )
