"""`fraudops schedule` as a process: jobs fall due on the warehouse's event time, each run is
counted on its metrics port by outcome, a failing job does not stop it, SIGTERM ends it."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fraudops.simulate import SimulationConfig, simulate
from fraudops.storage import Warehouse
from polling import POLL
from ports import free_port
from warehouse_fill import store_served

pytestmark = pytest.mark.integration

FRAUDOPS = Path(sys.executable).parent / "fraudops"


def job_runs(port: int) -> dict[tuple[str, str], float]:
    """fraudops_scheduler_job_runs_total by (job, outcome), or {} while not serving."""
    try:
        text = POLL.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    return {
        (s.labels["job"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "fraudops_scheduler_job_runs_total"
    }


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll a condition until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_schedule_runs_due_jobs_counts_a_failure_and_stops_on_sigterm(tmp_path: Path) -> None:
    """With no champion registered, the monitoring job due at the next midnight of event
    time fails: counted as failed, and the scheduler keeps running until SIGTERM."""
    frame = simulate(SimulationConfig(days=3, cards=40, seed=3))
    day = frame["trans_date_trans_time"].astype(str).str[:10]
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    warehouse.migrate()
    store_served(warehouse, frame[day == day.min()], label_days=1)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDOPS_")}
    env |= {
        "FRAUDOPS_HOME": str(tmp_path / "home"),
        "FRAUDOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'warehouse.db'}",
        "FRAUDOPS_CARD_HASH_KEY": os.environ["FRAUDOPS_CARD_HASH_KEY"],
    }
    command = [str(FRAUDOPS), "schedule", "--metrics-port", str(port), "--poll-seconds", "0.2"]
    log = tmp_path / "schedule.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: job_runs(port) != {})
        assert 0 == sum(job_runs(port).values())  # the first clock reading runs nothing
        store_served(warehouse, frame[day > day.min()], label_days=1)  # past a midnight
        wait_for(lambda: job_runs(port).get(("monitor", "failed"), 0) >= 1)
        assert process.poll() is None, log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        warehouse.dispose()

    assert 0 == code, log.read_text()
    assert "stopping" in log.read_text()
