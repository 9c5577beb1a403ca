"""`fraudops ingest` refuses bad options and unreadable sources with one line, exit code 2."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--source", "bogus"], "--source must be one of file, feed, redis"),
        (["--source", "file"], "--source file needs --data PATH"),
        (["--source", "feed"], "--source feed needs --feed-url URL"),
        (["--source", "file", "--data", "missing.csv"], "cannot read missing.csv: no such file"),
        (
            ["--source", "feed", "--feed-url", "http://x", "--label-times"],
            "--label-times needs --source file and no --label-delay",
        ),
        (
            ["--source", "file", "--data", "x.csv", "--label-times", "--label-delay", "1d"],
            "--label-times needs --source file and no --label-delay",
        ),
    ],
)
def test_bad_options_and_sources_are_one_clear_line(
    tmp_path: Path, options: list[str], words: str
) -> None:
    """No traceback: the problem named, exit code 2."""
    result = CliRunner().invoke(
        app, ["ingest", *options, "--state-dir", str(tmp_path / "state")], catch_exceptions=False
    )
    assert 2 == result.exit_code
    assert words in result.output
    assert "Traceback" not in result.output
