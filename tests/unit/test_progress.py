"""The delayed progress bar: silent for quick jobs, drawn and completed for slow ones."""

import io
import time

import pytest
from rich.console import Console

from fraudops.progress import DelayedProgress


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100), out


def test_quick_job_draws_nothing() -> None:
    """A job that ends before the delay leaves no output."""
    console, out = _console()
    with DelayedProgress(delay=60.0, console=console) as progress:
        progress.update("working", 0.5)
    assert "" == out.getvalue()


def test_slow_job_shows_the_bar_and_ends_at_done() -> None:
    """A job still running after the delay shows its stage and ends at 100% done."""
    console, out = _console()
    with DelayedProgress(delay=0.01, console=console) as progress:
        progress.part(0.0, 0.5)("purchases", 0.5)
        time.sleep(0.3)
    text = out.getvalue()
    assert "done" in text
    assert "100%" in text


def test_part_maps_a_sub_task_onto_its_share() -> None:
    """A part covering 0.8-1.0 reports half of its own work as 90% of the whole."""
    console, _ = _console()
    progress = DelayedProgress(delay=60.0, console=console)
    progress.part(0.8, 1.0)("writing", 0.5)
    stage, done = progress.state
    assert "writing" == stage
    assert 0.9 == pytest.approx(done)
