"""deploy/.env.example starts nothing: its placeholders are refused, its passwords required."""

import re
from pathlib import Path

import pytest

from fraudops.api.auth import InsecureSettingsError, enforce_real_tokens
from fraudops.config import Settings
from fraudops.console.auth import ConsoleTokens
from fraudops.data.personal import PersonalDataError, personal_data

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def example() -> dict[str, str]:
    """The variables of deploy/.env.example."""
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if "=" in line and not line.startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


@pytest.mark.parametrize("variable", ["FRAUDOPS_API_TOKENS", "FRAUDOPS_ADMIN_TOKENS"])
def test_each_example_token_is_refused_by_the_service(variable: str) -> None:
    """The service refuses to start with the example's token in either role."""
    field = variable.removeprefix("FRAUDOPS_").lower()
    settings = Settings(**{field: example()[variable]})  # type: ignore[arg-type]

    with pytest.raises(InsecureSettingsError, match="placeholder or short token"):
        enforce_real_tokens(settings)


def test_the_example_analyst_token_is_refused_by_the_console() -> None:
    """The console refuses to start with the example's analyst token."""
    settings = Settings(analyst_tokens=example()["FRAUDOPS_ANALYST_TOKENS"])  # type: ignore[arg-type]

    with pytest.raises(InsecureSettingsError, match="placeholder"):
        ConsoleTokens.from_settings(settings)


def test_the_example_card_hash_key_is_refused() -> None:
    """The placeholder card-hash key is not a key: the service cannot hash card numbers."""
    settings = Settings(card_hash_key=example()["FRAUDOPS_CARD_HASH_KEY"])  # type: ignore[arg-type]

    with pytest.raises(PersonalDataError):
        personal_data(settings)


def test_every_password_is_empty_in_the_example_and_required_by_compose() -> None:
    """Passwords are left empty, and compose refuses to start while one is (`${VAR:?...}`)."""
    compose = (DEPLOY / "compose.yaml").read_text()
    passwords = [name for name in example() if name.endswith("PASSWORD")]

    assert ["POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "GRAFANA_ADMIN_PASSWORD"] == passwords
    for name in passwords:
        assert "" == example()[name]
        assert re.search(rf"\$\{{{name}:\?[^}}]+\}}", compose), name
        assert not re.search(rf"\$\{{{name}\}}", compose), f"{name} used without :?"


def test_no_env_file_with_secrets_is_committed() -> None:
    """Only the example is in the repository; deploy/.env is ignored by git."""
    gitignore = (DEPLOY.parent / ".gitignore").read_text().splitlines()

    assert "deploy/.env" in gitignore
