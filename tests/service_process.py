"""Real `fraudops serve` processes for the integration tests: start, wait ready, kill."""

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ports import free_port

FRAUDOPS = Path(sys.executable).parent / "fraudops"
TOKEN = "integration-" + secrets.token_urlsafe(24)
ADMIN_TOKEN = "integration-admin-" + secrets.token_urlsafe(24)
READY_TIMEOUT_S = 120.0


@dataclass
class ServiceProcess:
    """A running `fraudops serve` and a client authorised to call it."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def client(self, *, admin: bool = False, timeout: float = 30.0) -> httpx.Client:
        """An HTTP client with a scoring (or admin) token."""
        token = ADMIN_TOKEN if admin else TOKEN
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def log(self) -> str:
        """What the server wrote so far."""
        return self.log_path.read_text(errors="replace")


def service_env(home: Path, **settings: str) -> dict[str, str]:
    """The environment of a service process: tokens, home, and FRAUDOPS_* overrides."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FRAUDOPS_") and key != "PROMETHEUS_MULTIPROC_DIR"
    }
    env |= {
        "FRAUDOPS_HOME": str(home),
        "FRAUDOPS_CARD_HASH_KEY": os.environ["FRAUDOPS_CARD_HASH_KEY"],  # tests/conftest.py
        "FRAUDOPS_API_TOKENS": TOKEN,
        "FRAUDOPS_ADMIN_TOKENS": ADMIN_TOKEN,
        "FRAUDOPS_LOG_FORMAT": "json",
    }
    env |= {f"FRAUDOPS_{key.upper()}": value for key, value in settings.items()}
    return env


@contextmanager
def running_service(
    home: Path,
    *options: str,
    env: Mapping[str, str] | None = None,
    ready: bool = True,
    port: int | None = None,
) -> Iterator[ServiceProcess]:
    """Start `fraudops serve` (on `port`, or a free one), wait for /readyz, SIGTERM it after."""
    port = port if port is not None else free_port()
    log_path = home / f"serve-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(FRAUDOPS), "serve", "--port", str(port), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else service_env(home),
            start_new_session=True,  # its own process group, with any --workers children
        )
    service = ServiceProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_ready(service, ready=ready)
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        # A uvicorn worker whose supervisor died before stopping it keeps serving the port
        # (once seen after a suite run): nothing of the group outlives the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def wait_ready(service: ServiceProcess, *, ready: bool = True) -> None:
    """Wait until /readyz says ready (or, with ready=False, until the server answers at all)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    with httpx.Client(timeout=2) as http:  # one client: each new one loads TLS certificates
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                msg = f"fraudops serve exited with {service.process.returncode}:\n{service.log()}"
                raise RuntimeError(msg)
            try:
                response = http.get(f"{service.url}/readyz")
                last = response.text
                if response.status_code == 200 or not ready:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    msg = f"fraudops serve not ready after {READY_TIMEOUT_S} s ({last}):\n{service.log()}"
    raise RuntimeError(msg)


def wait_answering(
    process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60
) -> None:
    """Wait until `url` answers 200 (any `fraudops` server: feed, console); fail with the
    process's log if it exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as http:
        while True:
            if process.poll() is not None:
                msg = f"{url}: the process exited with {process.returncode}:\n{log.read_text()}"
                raise RuntimeError(msg)
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                msg = f"{url}: no answer in {timeout:.0f} s:\n{log.read_text()}"
                raise RuntimeError(msg)
            time.sleep(0.1)
