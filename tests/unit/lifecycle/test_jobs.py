"""The API's background job runner: one job at a time, status, result or error."""

import threading

import pytest

from fraudops.lifecycle.jobs import JobRunner

WAIT = 30.0  # a bound on waiting for a job that takes microseconds, never asserted on


def test_a_job_runs_and_keeps_its_result() -> None:
    """A submitted job runs in the background and ends succeeded with its result."""
    runner = JobRunner()

    submission = runner.submit("retrain", lambda: {"version": 3, "alias": "challenger"})
    job = runner.wait(submission.job.id, WAIT)

    assert submission.accepted
    assert job is not None
    assert ("retrain", "succeeded") == (job.kind, job.status)
    assert {"version": 3, "alias": "challenger"} == job.result
    assert job.error is None
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.submitted_at <= job.started_at <= job.finished_at
    assert runner.active() is None


def test_a_failing_job_records_the_error() -> None:
    """An exception ends the job failed, with the error's type and message, and no result."""
    runner = JobRunner()

    def broken() -> dict[str, int]:
        msg = "the warehouse holds no transactions"
        raise RuntimeError(msg)

    job = runner.wait(runner.submit("retrain", broken).job.id, WAIT)

    assert job is not None
    assert "failed" == job.status
    assert "RuntimeError: the warehouse holds no transactions" == job.error
    assert job.result is None


def test_one_job_at_a_time_a_second_submit_returns_the_running_one() -> None:
    """While a job runs, a submit starts nothing and returns that job, flagged not accepted."""
    runner = JobRunner()
    release = threading.Event()
    started = threading.Event()

    def slow() -> dict[str, str]:
        started.set()
        release.wait(WAIT)
        return {"done": "yes"}

    first = runner.submit("retrain", slow)
    started.wait(WAIT)
    second = runner.submit("retrain", lambda: {"done": "never"})

    assert not second.accepted
    assert first.job.id == second.job.id
    assert "running" == second.job.status
    release.set()
    finished = runner.wait(first.job.id, WAIT)
    assert finished is not None
    assert {"done": "yes"} == finished.result
    third = runner.submit("retrain", lambda: {"done": "again"})
    assert third.accepted
    assert first.job.id != third.job.id


def test_unknown_ids_and_old_jobs_are_not_found() -> None:
    """get() answers None for an id never given and for jobs beyond the `keep` latest."""
    runner = JobRunner(keep=2)
    ids = []
    for number in range(3):
        job_id = runner.submit("retrain", lambda n=number: {"n": n}).job.id
        runner.wait(job_id, WAIT)
        ids.append(job_id)

    assert runner.get("no-such-job") is None
    assert runner.get(ids[0]) is None
    assert [{"n": 1}, {"n": 2}] == [runner.get(i).result for i in ids[1:]]  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["retrain", "champion-challenger"])
def test_the_job_kind_is_kept(kind: str) -> None:
    """A job remembers what kind of job it is."""
    runner = JobRunner()
    job = runner.wait(runner.submit(kind, dict).job.id, WAIT)

    assert job is not None
    assert (kind, "succeeded", {}) == (job.kind, job.status, job.result)
