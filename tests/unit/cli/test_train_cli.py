"""`fraudops train` options: a review capacity must be a positive number of alerts a day."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app


@pytest.mark.parametrize("capacity", ["0", "-5"])
def test_a_capacity_that_is_not_positive_exits_2_before_reading_data(
    capacity: str, tmp_path: Path
) -> None:
    """--review-capacity 0 or below is refused with one line, naming the option."""
    missing = tmp_path / "absent.parquet"
    args = ["train", "--data", str(missing), "--profile", "sparkov", "--review-capacity", capacity]
    result = CliRunner().invoke(app, args)
    assert 2 == result.exit_code
    assert f"--review-capacity must be > 0 alerts per day, not {float(capacity)}" in result.output
