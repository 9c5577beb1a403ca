"""`fraudops up` as a user runs it: one process starting the whole stack, stopped by Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy

from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.lifecycle.facade import Lifecycle
from fraudops.lifecycle.registration import train_and_register
from fraudops.registry import MlflowRegistry
from fraudops.simulate import SimulationConfig, simulate, write_transactions
from fraudops.stack import Stack, StackConfig, StackError
from fraudops.storage import Warehouse
from fraudops.training.trainer import TrainingConfig
from ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FRAUDOPS = Path(sys.executable).parent / "fraudops"


def test_up_streams_scores_and_stops_cleanly_on_interrupt(tmp_path: Path) -> None:
    """With a champion registered, `up` serves, ingests, monitors and opens the console until
    interrupted."""
    home = tmp_path / "home"
    settings = Settings(home=home)
    frame = simulate(SimulationConfig(days=24, cards=300, seed=5))
    times = pd.to_datetime(frame["trans_date_trans_time"])
    cut = times.min().normalize() + pd.Timedelta(days=20)
    history = write_transactions(frame[times < cut], tmp_path / "history.parquet")
    stream = write_transactions(frame[times >= cut], tmp_path / "stream.parquet")
    train_and_register(
        data=history,
        profile=SPARKOV,
        config=TrainingConfig(trials=0, delay_days=1, validation_days=3),
        out_dir=tmp_path / "training",
        registry=MlflowRegistry(settings),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDOPS_")}
    env["FRAUDOPS_HOME"] = str(home)
    service_port, console_port = free_port(), free_port()
    command = [str(FRAUDOPS), "up", "--data", str(stream), "--speed", "43200", "--label-delay"]
    command += ["1d", "--port", str(service_port), "--console-port", str(console_port)]
    # Its own process group: whatever happens, the test leaves no service or feed behind.
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    warehouse = Warehouse.from_settings(settings)
    try:
        deadline = time.monotonic() + 240
        stored = 0
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(2)
            try:
                stored = warehouse.count_transactions()
            except sqlalchemy.exc.OperationalError:  # the service has not migrated it yet
                stored = 0
            if stored >= 500:
                break
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert stored >= 500
        assert "Token" in login_page(console_port)  # the console runs beside the service
        process.send_signal(signal.SIGINT)
        output = _output_once_stopped(process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        warehouse.dispose()
    assert process.returncode == 0, output
    assert "scoring service http://127.0.0.1:" in output
    assert "stopping" in output
    assert "event time " in output  # the status line, printed as plain lines off a terminal
    # The children are gone: the feed's process (named by its data file) and the service.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(stream)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert leftovers.stdout.strip() == ""
    assert f"scoring service http://127.0.0.1:{service_port}" in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{service_port}/healthz", timeout=5)
    assert f"console http://127.0.0.1:{console_port}" in output
    with pytest.raises(httpx.ConnectError):  # stopped with the rest
        login_page(console_port)


def login_page(port: int) -> str:
    """The console's login page on that port (it must answer 200)."""
    response = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
    assert 200 == response.status_code
    return response.text


def test_up_refuses_a_port_another_program_listens_on(tmp_path: Path) -> None:
    """A busy port is refused before anything starts: another service's /readyz would pass."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        busy = int(other.getsockname()[1])
        config = StackConfig(
            stream=tmp_path / "stream.parquet",
            speed=1.0,
            label_delay=timedelta(days=1),
            service_port=busy,
        )
        stack = Stack(
            config=config, settings=Settings(home=tmp_path / "home"), lifecycle_factory=_unused
        )
        with pytest.raises(StackError, match=f"port {busy} for the scoring service is in use"):
            stack.__enter__()
    assert not list((tmp_path / "home" / "up").glob("*.log"))


def _unused(settings: Settings, warehouse: Warehouse) -> Lifecycle:
    raise AssertionError("the stack must not get this far")


def test_up_names_a_missing_data_file_in_one_line(tmp_path: Path) -> None:
    """A typo in --data is one error line and exit code 2, before anything starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDOPS_")}
    env["FRAUDOPS_HOME"] = str(tmp_path / "home")
    missing = tmp_path / "nope.parquet"
    result = subprocess.run(
        [str(FRAUDOPS), "up", "--data", str(missing)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"error: --data {missing}: no such file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home").exists()


def _output_once_stopped(process: subprocess.Popen[str]) -> str:
    """What the interrupted `up` printed, once it has stopped; what it said if it does not."""
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired as expired:
        raw = expired.output or ""
        told = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        pytest.fail(f"`up` did not stop within 120 s of the interrupt; it printed:\n{told[-6000:]}")
    return output
