"""The event-time scheduler: due moments, catching up once, failures that do not stop it."""

import threading
from datetime import datetime, timedelta

from fraudops.lifecycle.scheduler import EventTimeScheduler, Job, JobRun

DAY = timedelta(days=1)


def test_jobs_fall_due_on_multiples_of_their_period() -> None:
    """A daily job first runs at the first midnight after the clock's first reading."""
    seen: list[datetime] = []
    scheduler = EventTimeScheduler(
        clock=lambda: None, jobs=[Job(name="d", every=DAY, run=seen.append)]
    )
    assert scheduler.run_due(datetime(2024, 1, 1, 15)) == []
    assert scheduler.run_due(datetime(2024, 1, 1, 23, 59)) == []
    runs = scheduler.run_due(datetime(2024, 1, 2, 0, 5))
    assert [r.due for r in runs] == [datetime(2024, 1, 2)]
    assert seen == [datetime(2024, 1, 2)]
    assert scheduler.run_due(datetime(2024, 1, 2, 12)) == []


def test_a_job_overdue_several_times_runs_once_for_the_latest_moment() -> None:
    """After a long gap the job runs once, for the latest due moment, then on schedule."""
    seen: list[datetime] = []
    scheduler = EventTimeScheduler(
        clock=lambda: None, jobs=[Job(name="d", every=DAY, run=seen.append)]
    )
    scheduler.run_due(datetime(2024, 1, 1, 6))
    scheduler.run_due(datetime(2024, 1, 4, 6))
    assert seen == [datetime(2024, 1, 4)]
    scheduler.run_due(datetime(2024, 1, 5, 1))
    assert seen == [datetime(2024, 1, 4), datetime(2024, 1, 5)]


def test_a_failing_job_is_recorded_and_the_others_still_run() -> None:
    """The error is kept on the job and in the history; the next job runs all the same."""

    def broken(_: datetime) -> None:
        raise RuntimeError("registry down")

    seen: list[datetime] = []
    jobs = [Job(name="broken", every=DAY, run=broken), Job(name="ok", every=DAY, run=seen.append)]
    scheduler = EventTimeScheduler(clock=lambda: None, jobs=jobs)
    scheduler.run_due(datetime(2024, 1, 1))
    runs = scheduler.run_due(datetime(2024, 1, 2, 1))
    assert [(r.job, r.error) for r in runs] == [
        ("broken", "RuntimeError: registry down"),
        ("ok", None),
    ]
    assert jobs[0].failures == 1 and seen == [datetime(2024, 1, 2)]


def test_the_thread_follows_the_clock() -> None:
    """Started, the scheduler polls the clock and reports each run to its callback."""
    moments = iter([datetime(2024, 1, 1, 12), datetime(2024, 1, 2, 12)])
    done = threading.Event()
    reported: list[JobRun] = []

    def on_run(run: JobRun) -> None:
        reported.append(run)
        done.set()

    scheduler = EventTimeScheduler(
        clock=lambda: next(moments, None),
        jobs=[Job(name="d", every=DAY, run=lambda due: due.day)],
        poll_seconds=0.01,
        on_run=on_run,
    )
    scheduler.start()
    assert done.wait(10)
    scheduler.stop(5)
    assert [(r.job, r.due, r.result) for r in reported] == [("d", datetime(2024, 1, 2), 2)]
