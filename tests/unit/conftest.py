"""Fixtures every unit test folder may use."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from fraudops.storage import Warehouse


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    """A migrated, empty SQLite warehouse."""
    warehouse = Warehouse(f"sqlite:///{(tmp_path / 'warehouse.db').as_posix()}")
    warehouse.migrate()
    yield warehouse
    warehouse.dispose()
