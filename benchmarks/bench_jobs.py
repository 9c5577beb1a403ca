"""Replay the loop's scheduled jobs day by day on a copy of a finished demo home: CPU per job.

The in-process scheduler of `fraudops up` / `fraudops demo` runs the monitor job and the
champion/challenger job every event day. Their cost in the end-to-end test depends on the
machine's load (a slow job makes the scheduler skip days), so this replays them at fixed
moments instead: SOURCE_HOME (a FRAUDOPS_HOME a demo or the e2e test left, with its
warehouse.db, mlflow.db and mlartifacts) is copied to WORK_HOME, MLflow's absolute artifact
paths are rewritten to the copy, and each day from --first to --last both jobs run at
midnight. Prints the CPU of each job and of the reads under them (thread time: the
training threads of XGBoost are only in `process_cpu`), and writes the findings and the
audit events, which two code versions must produce identically.

    .venv/bin/python benchmarks/bench_jobs.py SOURCE_HOME WORK_HOME OUT.json \
        [--first 2024-02-18] [--last 2024-02-25]
"""

import argparse
import functools
import json
import shutil
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fraudops.config import Settings
from fraudops.demo import DemoPlan
from fraudops.lifecycle import compare, facade
from fraudops.registry import MlflowRegistry
from fraudops.storage import history
from fraudops.storage.warehouse import Warehouse

CPU: defaultdict[str, float] = defaultdict(float)
CALLS: defaultdict[str, int] = defaultdict(int)


def copy_home(source: Path, work: Path) -> None:
    """The demo home copied, MLflow's absolute paths pointing into the copy."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(source, work)
    db = sqlite3.connect(work / "mlflow.db")
    (location,) = db.execute(
        "select artifact_location from experiments where name = 'fraudops'"
    ).fetchone()
    old = str(location).removeprefix("file://").removesuffix("/mlartifacts")
    for (table,) in db.execute("select name from sqlite_master where type = 'table'").fetchall():
        for column in db.execute(f'pragma table_info("{table}")').fetchall():
            name, kind = column[1], str(column[2]).upper()
            if "CHAR" in kind or "TEXT" in kind:
                statement = f'update "{table}" set "{name}" = replace("{name}", ?, ?) '  # noqa: S608 - names from the schema
                db.execute(f'{statement} where "{name}" like ?', (old, str(work), f"%{old}%"))
    db.commit()
    db.close()


def timed(owner: Any, name: str, label: str) -> None:
    """Wrap owner.name to add its thread CPU and calls under label."""
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            CPU[label] += time.thread_time() - start
            CALLS[label] += 1

    setattr(owner, name, wrapper)


def main() -> None:
    """Copy, replay, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--first", default="2024-02-18")
    parser.add_argument("--last", default="2024-02-25")
    args = parser.parse_args()
    copy_home(args.source, args.work)
    timed(facade.Lifecycle, "monitor_job", "monitor_job")
    timed(facade.Lifecycle, "challenge_job", "challenge_job")
    timed(facade, "run_monitor", "monitor_job: run_monitor")
    timed(facade, "write_report", "monitor_job: write_report")
    timed(facade.Lifecycle, "retrain", "monitor_job: retrain")
    timed(compare, "compare_champion_challenger", "challenge_job: compare")
    timed(compare, "_window_scores", "challenge_job: compare: _window_scores")
    timed(compare, "_replace_loser", "challenge_job: _replace_loser")
    for read in ("history_frame", "served_between", "labelled_between", "fraud_label_waits"):
        timed(history.HistoryReads, read, f"read: {read}")

    settings = Settings(_env_file=None, home=args.work)  # type: ignore[call-arg]
    lifecycle = facade.Lifecycle.from_settings(
        settings,
        warehouse=Warehouse.from_settings(settings),
        registry=MlflowRegistry(settings),
        policy=DemoPlan(trials=0).policy(),
        actor="bench",
        folder=args.work / "bench",
    )
    findings = []
    day, last = datetime.fromisoformat(args.first), datetime.fromisoformat(args.last)
    started = time.process_time()
    while day <= last:
        for job in (lifecycle.monitor_job, lifecycle.challenge_job):
            step = job(day)
            findings.append([step.job, day.isoformat(), step.findings])
        day += timedelta(days=1)
    process_cpu = time.process_time() - started
    events = [
        [str(value) for value in row]
        for row in sqlite3.connect(args.work / "warehouse.db").execute(
            "select kind, verdict, trigger, champion_version, challenger_version, as_of "
            "from lifecycle_events where actor = 'bench' order by id"
        )
    ]
    jobs = {k: {"cpu": round(CPU[k], 2), "calls": CALLS[k]} for k in sorted(CPU)}
    args.out.write_text(
        json.dumps(
            {
                "process_cpu": round(process_cpu, 2),
                "jobs": jobs,
                "findings": findings,
                "events": events,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    print(f"process CPU while the jobs ran: {process_cpu:.1f} s")
    for label, job in jobs.items():
        print(f"{job['cpu']:8.2f} s  {job['calls']:3d} calls  {label}")


if __name__ == "__main__":
    main()
