"""`fraudops console`: refuses to start without tokens or on a bad port, in one line."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.config import get_settings


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A home of the test's own and no console tokens."""
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path))
    for name in ("DATABASE_URL", "ANALYST_TOKENS", "ADMIN_TOKENS"):
        monkeypatch.delenv(f"FRAUDOPS_{name}", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_without_tokens_the_console_does_not_start() -> None:
    """Exit code 2 and one line naming the settings to set."""
    result = CliRunner().invoke(app, ["console", "--port", "8123"])
    assert 2 == result.exit_code
    assert "no console tokens: set FRAUDOPS_ANALYST_TOKENS" in result.output
    assert "Traceback" not in result.output


def test_a_weak_analyst_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A guessable token stops the console before it listens."""
    monkeypatch.setenv("FRAUDOPS_ANALYST_TOKENS", "bob=aaaaaaaaaaaaaaaaaaaa")
    result = CliRunner().invoke(app, ["console"])
    assert 2 == result.exit_code
    assert "the token of bob in FRAUDOPS_ANALYST_TOKENS is too easy to guess" in result.output


def test_a_bad_port_is_one_line() -> None:
    """Ports outside 1..65535 are refused."""
    result = CliRunner().invoke(app, ["console", "--port", "70000"])
    assert 2 == result.exit_code
    assert "--port must be between 1 and 65535" in result.output
