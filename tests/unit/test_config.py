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


def test_a_setting_of_the_wrong_form_stops_any_command_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No traceback: the variable and the problem, exit code 2; a secret's value is never
    echoed."""
    from typer.testing import CliRunner  # noqa: PLC0415

    from fraudops.cli import app  # noqa: PLC0415
    from fraudops.config import get_settings  # noqa: PLC0415

    monkeypatch.setenv("FRAUDOPS_JOURNAL_DRAIN", "bogus")
    monkeypatch.setenv("FRAUDOPS_LATE_EVENT_SECONDS", "-1")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--port", "0"])
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert 2 == result.exit_code
    assert "Traceback" not in result.output
    assert "FRAUDOPS_JOURNAL_DRAIN: Input should be 'process' or 'thread'" in result.output
    assert "FRAUDOPS_LATE_EVENT_SECONDS: Input should be greater than 0" in result.output
    assert "bogus" not in result.output
