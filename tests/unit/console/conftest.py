"""The console on real parts: a migrated SQLite warehouse and an in-memory registry."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from console_client import ADMIN_TOKEN, ANALYST_TOKEN, SESSION_SECRET, log_in
from fastapi.testclient import TestClient

from fraudops.config import Settings
from fraudops.console.app import create_app
from fraudops.registry.memory import InMemoryRegistry
from fraudops.storage import Warehouse


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """An analyst `alice`, one admin token, a home of the test's own."""
    return Settings(
        home=tmp_path / "home",
        analyst_tokens=f"alice={ANALYST_TOKEN}",
        admin_tokens=ADMIN_TOKEN,
        console_secret=SESSION_SECRET,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def empty_registry() -> InMemoryRegistry:
    """A registry with no model."""
    return InMemoryRegistry()


@pytest.fixture
def client(
    settings: Settings, warehouse: Warehouse, empty_registry: InMemoryRegistry
) -> Iterator[TestClient]:
    """A client of the console, not logged in."""
    app = create_app(settings, warehouse=warehouse, registry=empty_registry)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def analyst(client: TestClient) -> TestClient:
    """The client, logged in as the analyst alice."""
    assert 303 == log_in(client, ANALYST_TOKEN).status_code
    return client


@pytest.fixture
def admin(client: TestClient) -> TestClient:
    """The client, logged in as an administrator."""
    assert 303 == log_in(client, ADMIN_TOKEN).status_code
    return client
