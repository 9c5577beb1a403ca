"""Telling the scoring service to reload, against a real HTTP server on a local port."""

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fraudops.config import Settings
from fraudops.lifecycle.notify import notify_service

ADMIN_TOKEN = "admin-" + secrets.token_urlsafe(24)


@dataclass
class ReloadServer:
    """A tiny HTTP server answering POST /v1/models/reload with a chosen status."""

    url: str
    answer: list[int]
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)


@pytest.fixture
def reload_server() -> Iterator[ReloadServer]:
    """The server, on a free port of this machine, stopped after the test."""
    answer = [200]
    seen: list[tuple[str, str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(("POST", self.path, self.headers.get("Authorization")))
            body = b'{"changed": true}' if answer[0] == 200 else b'{"detail": "nope"}'
            self.send_response(answer[0])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield ReloadServer(url=f"http://{host!s}:{port}/", answer=answer, seen=seen)
    server.shutdown()
    server.server_close()


def settings_for(tmp_path: Path, url: str | None, tokens: str = ADMIN_TOKEN) -> Settings:
    """Settings naming the service and its admin tokens."""
    return Settings(
        home=tmp_path,
        service_url=url,
        admin_tokens=tokens,
        _env_file=None,  # type: ignore[call-arg]
    )


def test_the_service_is_asked_to_reload_with_the_first_admin_token(
    reload_server: ReloadServer, tmp_path: Path
) -> None:
    """One POST to /v1/models/reload carrying the first admin token: "reloaded"."""
    settings = settings_for(tmp_path, reload_server.url, f"{ADMIN_TOKEN}, second-admin-token")

    assert "reloaded" == notify_service(settings)
    assert [("POST", "/v1/models/reload", f"Bearer {ADMIN_TOKEN}")] == reload_server.seen


def test_a_refusal_is_reported_not_raised(reload_server: ReloadServer, tmp_path: Path) -> None:
    """A 403 answer is "failed: HTTP 403: ..." with the service's words."""
    reload_server.answer[0] = 403

    outcome = notify_service(settings_for(tmp_path, reload_server.url))

    assert outcome.startswith("failed: HTTP 403")
    assert "nope" in outcome


def test_an_unreachable_service_is_reported_not_raised(tmp_path: Path) -> None:
    """Nothing listening: "failed: ConnectError ..." (the alias watcher is the fallback)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # the port is free again: nothing answers there

    outcome = notify_service(settings_for(tmp_path, f"http://127.0.0.1:{port}"))

    assert outcome.startswith("failed: ConnectError")


def test_without_a_service_url_nothing_is_sent(tmp_path: Path) -> None:
    """No FRAUDOPS_SERVICE_URL: "not_configured"."""
    assert "not_configured" == notify_service(settings_for(tmp_path, None))
