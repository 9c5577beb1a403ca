"""An in-process scheduler whose jobs fall due in event time, the clock of the data.

A replayed stream runs days in minutes, so "monitor every day" means every day of event
time, read from a clock such as the warehouse's latest stored transaction. Jobs fall due on
multiples of their period (midnight for a daily job), run one at a time in the scheduler's
thread, and a job that was due several times while another ran runs once, at the latest
moment. A failing job is logged and retried at its next due time; it never stops the others.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

log = structlog.get_logger(__name__)

_EPOCH = datetime(1970, 1, 1)


@dataclass(kw_only=True)
class Job:
    """A named task run every `every` of event time, given the moment it is due for."""

    name: str
    every: timedelta
    run: Callable[[datetime], object]
    next_due: datetime | None = None
    runs: int = 0
    failures: int = 0
    last_result: object = None
    last_error: str | None = None

    def due_after(self, moment: datetime) -> datetime:
        """The first multiple of the period strictly after `moment`."""
        periods = (moment - _EPOCH) // self.every
        return _EPOCH + (periods + 1) * self.every


@dataclass(kw_only=True)
class JobRun:
    """One finished run of a job."""

    job: str
    due: datetime
    seconds: float
    result: object = None
    error: str | None = None


@dataclass(kw_only=True)
class EventTimeScheduler:
    """Runs jobs when the event-time clock passes their due moments (see the module doc)."""

    clock: Callable[[], datetime | None]
    jobs: list[Job]
    poll_seconds: float = 1.0
    on_run: Callable[[JobRun], None] | None = None
    history: list[JobRun] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    running: str | None = field(default=None, init=False)

    def start(self) -> None:
        """Start polling the clock in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="fraudops-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the job running now, if any, has finished."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_due(self, now: datetime) -> list[JobRun]:
        """Run every job due at `now`, in the order given; returns what ran."""
        finished = []
        for job in self.jobs:
            if job.next_due is None:
                job.next_due = job.due_after(now)
                continue
            if now < job.next_due:
                continue
            due = job.next_due
            # Due several times over while something else ran: run once, for the latest.
            latest = job.due_after(now) - job.every
            finished.append(self._run(job, latest if latest > due else due))
            job.next_due = job.due_after(now)
            if self._stop.is_set():
                break
        return finished

    def _run(self, job: Job, due: datetime) -> JobRun:
        self.running = job.name
        started = time.perf_counter()
        try:
            result = job.run(due)
        except Exception as error:  # one failing job must not stop the loop
            log.exception("scheduled job failed", job=job.name, due=due.isoformat())
            job.failures += 1
            job.last_error = f"{type(error).__name__}: {error}"
            run = JobRun(
                job=job.name,
                due=due,
                seconds=time.perf_counter() - started,
                error=job.last_error,
            )
        else:
            job.last_result, job.last_error = result, None
            run = JobRun(
                job=job.name, due=due, seconds=time.perf_counter() - started, result=result
            )
        finally:
            self.running = None
        job.runs += 1
        self.history.append(run)
        if self.on_run is not None:
            self.on_run(run)
        return run

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                now = self.clock()
            except Exception:  # the clock's store may be briefly unavailable
                log.exception("reading the scheduler's clock failed")
                now = None
            if now is not None:
                self.run_due(now)
            self._stop.wait(self.poll_seconds)
