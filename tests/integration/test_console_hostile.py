"""Hostile input to the console on SQLite and PostgreSQL: 4xx naming the problem, never 500."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fraudops.config import Settings
from fraudops.console.app import create_app
from fraudops.registry.memory import InMemoryRegistry
from fraudops.storage import Warehouse
from warehouse_fill import store_day

ANALYST = "hostile-analyst-Vb7nQ2xK9mL4pR8t"


@pytest.fixture
def client(tmp_path: Path, warehouse: Warehouse) -> Iterator[TestClient]:
    """A console on the warehouse (holding DAY_ROWS), logged in as an analyst."""
    store_day(warehouse)
    settings = Settings(
        home=tmp_path / "home",
        analyst_tokens=f"eve={ANALYST}",
        _env_file=None,  # type: ignore[call-arg]
    )
    with TestClient(
        create_app(settings, warehouse=warehouse, registry=InMemoryRegistry())
    ) as client:
        form = client.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf is not None
        client.post("/login", data={"token": ANALYST, "csrf_token": csrf.group(1)})
        yield client


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/cases/%00", 404),
        ("/cases/" + "x" * 5000, 404),
        ("/cases/d1%27%20OR%201=1--", 404),
        ("/queue?merchant=%00", 422),
        ("/queue?category=a%00b", 422),
        ("/queue?min_amount=nan", 422),
        ("/queue?start=2024-03-10T00:00:00%00", 422),
        ("/plots/card-timeline.svg?trans_num=%00", 422),
        ("/reports/daily?date=%00", 422),
        ("/reports/daily?date=9999-12-31", 422),
        ("/reports/daily?date=9999-12-30", 200),
        ("/reports/daily?date=0001-01-01", 200),
    ],
)
def test_hostile_reads_never_fail(client: TestClient, path: str, status: int) -> None:
    """NUL bytes (refused by PostgreSQL), injections and huge values are answered, not 500."""
    assert status == client.get(path).status_code


def test_a_hostile_label_never_fails(client: TestClient) -> None:
    """A label for a trans_num with a NUL byte or of 5,000 characters is a 404."""
    page = client.get("/cases/d6").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    for trans_num in ("d6\x00", "y" * 5000):
        response = client.post(
            "/labels",
            data={"csrf_token": csrf.group(1), "trans_num": trans_num, "verdict": "fraud"},
        )
        assert 404 == response.status_code
