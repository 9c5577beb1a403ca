"""Settings come from FRAUDOPS_* variables with embedded defaults."""

from pathlib import Path

import pytest

from fraudops.config import Settings


def test_defaults_point_at_the_embedded_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without environment the data folder is ./.fraudops and user profiles live inside it."""
    monkeypatch.delenv("FRAUDOPS_HOME")  # the tests' own home (tests/conftest.py)
    settings = Settings(_env_file=None)
    assert Path(".fraudops") == settings.home
    assert Path(".fraudops/profiles") == settings.user_profiles_dir


def test_environment_overrides_with_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """FRAUDOPS_HOME and FRAUDOPS_LOG_LEVEL are read from the environment."""
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path))
    monkeypatch.setenv("FRAUDOPS_LOG_LEVEL", "debug")
    settings = Settings(_env_file=None)
    assert tmp_path == settings.home
    assert "debug" == settings.log_level


def test_invalid_log_level_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A log level outside the four known ones is a settings error, not a silent default."""
    monkeypatch.setenv("FRAUDOPS_LOG_LEVEL", "loud")
    with pytest.raises(ValueError, match="log_level"):
        Settings(_env_file=None)
