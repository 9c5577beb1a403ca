"""Background jobs of the HTTP API: one at a time, in a thread, their status kept in memory.

A retraining takes minutes, longer than a request should: the API submits it and answers
at once with the job's id, and the caller polls the job's status. A job submitted while
another runs is not started; the running job is returned instead, flagged as such. Jobs
live in this process only and the last `keep` of them are remembered.
"""

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

log = structlog.get_logger(__name__)

JobStatus = Literal["queued", "running", "succeeded", "failed"]
JobWork = Callable[[], Mapping[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Job:
    """A job's state at one moment (a snapshot: the runner replaces it as it progresses)."""

    id: str
    kind: str
    status: JobStatus
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        """Whether the job has finished, well or not."""
        return self.status in ("succeeded", "failed")


@dataclass(frozen=True, kw_only=True)
class Submission:
    """What a submit did: started the job, or returned the one already running."""

    job: Job
    accepted: bool


class JobRunner:
    """Runs submitted jobs one at a time, each in its own thread."""

    def __init__(self, *, keep: int = 100) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._finished: dict[str, threading.Event] = {}
        self._active: str | None = None

    def submit(self, kind: str, work: JobWork) -> Submission:
        """Start `work` as a job of `kind`, unless a job is running: then that one is returned."""
        with self._lock:
            if self._active is not None:
                return Submission(job=self._jobs[self._active], accepted=False)
            job = Job(id=uuid.uuid4().hex, kind=kind, status="queued", submitted_at=_now())
            self._jobs[job.id] = job
            self._finished[job.id] = threading.Event()
            self._active = job.id
            while len(self._jobs) > self._keep:
                old, _ = self._jobs.popitem(last=False)
                self._finished.pop(old, None)
        threading.Thread(
            target=self._run, args=(job.id, work), name=f"fraudops-job-{kind}", daemon=True
        ).start()
        log.info("job submitted", job_id=job.id, kind=kind)
        return Submission(job=job, accepted=True)

    def get(self, job_id: str) -> Job | None:
        """The job's current state, None for an unknown (or long forgotten) id."""
        with self._lock:
            return self._jobs.get(job_id)

    def active(self) -> Job | None:
        """The job queued or running now, if any."""
        with self._lock:
            return None if self._active is None else self._jobs[self._active]

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """The job once it has finished (or as it is when `timeout` seconds have passed)."""
        with self._lock:
            finished = self._finished.get(job_id)
        if finished is not None:
            finished.wait(timeout)
        return self.get(job_id)

    def _run(self, job_id: str, work: JobWork) -> None:
        """Run one job and record how it ended; the next job may start from then on."""
        with self._lock:
            self._replace(job_id, status="running", started_at=_now())
        ending: dict[str, Any]
        try:
            ending = {"status": "succeeded", "result": dict(work())}
        except (ValueError, LookupError) as error:  # the data or the request: said, not a bug
            log.warning("job failed", job_id=job_id, error=f"{type(error).__name__}: {error}")
            ending = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        except Exception as error:  # the job's failure is its status, not a dead thread
            log.exception("job failed", job_id=job_id)
            ending = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        with self._lock:
            self._replace(job_id, finished_at=_now(), **ending)
            self._active = None
            finished = self._finished.get(job_id)
        if finished is not None:
            finished.set()
        log.info("job finished", job_id=job_id, status=ending["status"])

    def _replace(self, job_id: str, **changes: Any) -> None:
        """Replace a job's snapshot with the changes applied (the caller holds the lock)."""
        if job_id in self._jobs:
            self._jobs[job_id] = replace(self._jobs[job_id], **changes)


def _now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)
