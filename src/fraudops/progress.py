"""A rich progress bar that only appears when a job runs longer than a moment."""

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

# A job reports progress as (stage, fraction of the whole job done, 0 to 1).
ProgressCallback = Callable[[str, float], None]


def silent_progress(_stage: str, _done: float) -> None:
    """The progress sink of callers that show none."""


class DelayedProgress:
    """Progress bar on stderr, shown only if the job is still running after `delay` seconds."""

    def __init__(self, *, delay: float = 1.0, console: Console | None = None) -> None:
        """Prepare the bar; nothing is drawn until `delay` has passed inside the `with` block."""
        self._delay = delay
        self._progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: TaskID = self._progress.add_task("starting", total=1.0)
        self._lock = threading.Lock()
        self._shown = False
        self._closed = False
        self._timer = threading.Timer(delay, self._show)
        self._timer.daemon = True

    def _show(self) -> None:
        """Draw the bar, unless the job has already finished."""
        with self._lock:
            if not self._closed:
                self._progress.start()
                self._shown = True

    def __enter__(self) -> Self:
        """Start the clock."""
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the clock, and close the bar if it was shown (complete unless the job failed)."""
        self._timer.cancel()
        with self._lock:
            self._closed = True
            if self._shown:
                if exc_type is None:
                    self._progress.update(self._task, completed=1.0, description="done")
                self._progress.stop()

    @property
    def state(self) -> tuple[str, float]:
        """The current stage and fraction of the whole job done."""
        task = self._progress.tasks[0]
        return task.description, task.completed

    def update(self, stage: str, done: float) -> None:
        """Show `stage` with `done` (0 to 1) of the whole job finished."""
        self._progress.update(self._task, completed=done, description=stage)

    def part(self, lo: float, hi: float) -> ProgressCallback:
        """A callback for a sub-task whose 0..1 progress covers [lo, hi] of the whole job."""

        def report(stage: str, done: float) -> None:
            """Map the sub-task's fraction onto the whole job's."""
            self.update(stage, lo + (hi - lo) * done)

        return report
