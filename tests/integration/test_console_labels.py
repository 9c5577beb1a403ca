"""An analyst's label from the console reaches the running scoring service, as POST
/v1/labels does, and is read back through the API; with the service down it is kept anyway."""

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient

from fraudops.api.app import create_app as create_api
from fraudops.config import Settings
from fraudops.console.app import create_app as create_console
from fraudops.features.state import InMemoryStateStore
from fraudops.registry.memory import InMemoryRegistry
from fraudops.scoring.service import ScoringService
from fraudops.storage import Warehouse
from polling import POLL
from transaction_bodies import request_body

pytestmark = pytest.mark.integration

SCORING = "console-labels-Qm8vT2xL9pR4kW7n"
ANALYST = "console-labels-analyst-Zr5bY1cH6jD3"


class ApiServer:
    """The real scoring API under uvicorn in a thread."""

    def __init__(self, settings: Settings, service: ScoringService) -> None:
        config = uvicorn.Config(
            create_api(settings, service=service), host="127.0.0.1", port=0, log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            if POLL.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                return
            time.sleep(0.1)
        raise AssertionError("the API did not get ready")

    def stop(self) -> None:
        """Stop serving."""
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def api(tmp_path: Path, registry: InMemoryRegistry) -> Iterator[tuple[ApiServer, ScoringService]]:
    """A scoring service on a SQLite warehouse, served over HTTP."""
    settings = Settings(home=tmp_path / "home", api_tokens=SCORING, _env_file=None)  # type: ignore[call-arg]
    service = ScoringService(
        settings=settings,
        warehouse=Warehouse(f"sqlite:///{(tmp_path / 'warehouse.db').as_posix()}"),
        registry=registry,
        store=InMemoryStateStore(),
    )
    server = ApiServer(settings, service)
    yield server, service
    server.stop()


def console_for(tmp_path: Path, service_url: str, warehouse: Warehouse) -> TestClient:
    """A console on the service's warehouse, told the service's URL, logged in as alice."""
    settings = Settings(
        home=tmp_path / "home",
        api_tokens=SCORING,
        analyst_tokens=f"alice={ANALYST}",
        service_url=service_url,
        _env_file=None,  # type: ignore[call-arg]
    )
    client = TestClient(create_console(settings, warehouse=warehouse, registry=InMemoryRegistry()))
    form = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    client.post("/login", data={"token": ANALYST, "csrf_token": csrf.group(1)})
    return client


def label_from_console(client: TestClient, trans_num: str) -> None:
    """Press `Confirm fraud` on the case page."""
    page = client.get(f"/cases/{trans_num}").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    response = client.post(
        "/labels",
        data={"csrf_token": csrf.group(1), "trans_num": trans_num, "verdict": "fraud"},
        follow_redirects=False,
    )
    assert 303 == response.status_code


def test_a_console_label_goes_through_the_service_and_reads_back_from_the_api(
    tmp_path: Path, api: tuple[ApiServer, ScoringService], sample_frame: pd.DataFrame
) -> None:
    """The label has source analyst in GET /v1/transactions; the audit says it went through
    the service; with the service stopped, the next label is stored in the warehouse."""
    server, service = api
    headers = {"Authorization": f"Bearer {SCORING}"}
    bodies = [request_body(sample_frame.iloc[i].to_dict()) for i in (0, 1)]
    for body in bodies:
        assert 200 == httpx.post(f"{server.url}/v1/score", json=body, headers=headers).status_code
    client = console_for(tmp_path, server.url, service.warehouse)

    label_from_console(client, bodies[0]["trans_num"])
    stored = httpx.get(f"{server.url}/v1/transactions/{bodies[0]['trans_num']}", headers=headers)
    expected = {"is_fraud": True, "source": "analyst", "analyst": "alice"}
    assert expected.items() <= stored.json()["label"].items()
    event = service.warehouse.events(kind="label")[0]
    assert ("console:alice", "service") == (event.actor, event.detail["via"])

    server.stop()
    label_from_console(client, bodies[1]["trans_num"])
    kept = service.warehouse.get_transaction(bodies[1]["trans_num"])
    assert kept is not None and kept.label is not None
    assert ("analyst", "alice") == (kept.label.source, kept.label.analyst)
    assert "warehouse" == service.warehouse.events(kind="label")[0].detail["via"]
