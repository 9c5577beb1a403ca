"""Fixtures of the integration tests."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from private_redis import PrivateRedis

from fraudops.storage import Warehouse


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A running private redis-server; skipped without the binary, except under CI=true."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed: the restart tests run a server of their own"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the Redis tests must run, not skip)")
        pytest.skip(message)
    server = PrivateRedis(binary, tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A bare database: a SQLite file under tmp_path, or an empty schema on the real server."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'warehouse.db').as_posix()}"
    return str(request.getfixturevalue("clean_postgres_url"))


@pytest.fixture
def bare_warehouse(database_url: str) -> Iterator[Warehouse]:
    """A warehouse on a database that has not been migrated."""
    warehouse = Warehouse(database_url)
    yield warehouse
    warehouse.dispose()


@pytest.fixture
def warehouse(bare_warehouse: Warehouse) -> Warehouse:
    """A migrated, empty warehouse."""
    bare_warehouse.migrate()
    return bare_warehouse
