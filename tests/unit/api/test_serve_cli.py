"""`fraudops serve` refuses unsafe or impossible set-ups before it starts a server."""

import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.config import get_settings


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test reads its own environment."""
    for name in ("FRAUDOPS_API_TOKENS", "FRAUDOPS_ADMIN_TOKENS", "FRAUDOPS_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_serve_refuses_to_start_without_tokens() -> None:
    """No tokens and no --dev: one line saying what to set, exit code 2."""
    result = CliRunner().invoke(app, ["serve", "--port", "8123"])
    assert 2 == result.exit_code
    assert "no API tokens: set FRAUDOPS_API_TOKENS" in result.output


def test_serve_refuses_placeholder_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """A placeholder token is refused with a hint to generate a real one."""
    monkeypatch.setenv("FRAUDOPS_API_TOKENS", "changeme")
    result = CliRunner().invoke(app, ["serve"])
    assert 2 == result.exit_code
    assert "placeholder or short token" in result.output
    assert "secrets.token_urlsafe" in result.output


def test_serve_refuses_several_workers_without_shared_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers above 1 need Redis: in-process state would split each card's history."""
    monkeypatch.setenv("FRAUDOPS_API_TOKENS", secrets.token_urlsafe(32))
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert 2 == result.exit_code
    assert "--workers above 1 needs FRAUDOPS_REDIS_URL" in result.output
