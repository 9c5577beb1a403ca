"""Benchmark how fast fraudops starts: the scoring service's import, `--help`, serve to ready.

For each checkout given (default: this one), in fresh child processes, `--runs` times, the
checkouts taking turns so that a busy moment of the machine hits them alike:

1. import: `python -X importtime -c "import fraudops.scoring.service"`, the module's
   cumulative import time as importtime reports it (the interpreter's own start excluded);
2. help: wall time of `fraudops --help`;
3. serve to ready: `fraudops serve --dev` on a free port (embedded defaults: SQLite,
   in-process state, no model), from the start of the process to the first 200 from
   /healthz (polled every 10 ms), and to the first /readyz answer past "starting" (the
   registry asked for the models); once in an empty FRAUDOPS_HOME (the first start creates
   the warehouse and MLflow's tables) and once in a home an earlier start left (a restart).

Prints the medians and records benchmarks/results/startup.json. Each checkout needs its own
environment at `<checkout>/.venv` (`make install`); nothing of fraudops is imported here.

    .venv/bin/python benchmarks/bench_startup.py [--runs 5] [--project /other/checkout ...]
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import harness

HERE = Path(__file__).resolve().parent
POLL_SECONDS = 0.01
READY_TIMEOUT_SECONDS = 120
MEASURES = (
    "import_s",
    "help_s",
    "new_home_healthz_s",
    "new_home_loaded_s",
    "restart_healthz_s",
    "restart_loaded_s",
)


def import_seconds(project: Path) -> float:
    """The cumulative import time of fraudops.scoring.service in a fresh interpreter."""
    completed = subprocess.run(
        [
            str(project / ".venv/bin/python"),
            "-X",
            "importtime",
            "-c",
            "import fraudops.scoring.service",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=project,
        env=_clean_environment(),
    )
    for line in reversed(completed.stderr.splitlines()):
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == "fraudops.scoring.service":
            return int(parts[1]) / 1e6
    msg = "importtime did not report fraudops.scoring.service"
    raise RuntimeError(msg)


def help_seconds(project: Path) -> float:
    """Wall time of `fraudops --help`."""
    start = time.perf_counter()
    subprocess.run(
        [str(project / ".venv/bin/fraudops"), "--help"],
        stdout=subprocess.DEVNULL,
        check=True,
        cwd=project,
        env=_clean_environment(),
    )
    return time.perf_counter() - start


def serve_seconds(project: Path, home: Path) -> tuple[float, float]:
    """Seconds from starting `fraudops serve` with FRAUDOPS_HOME=home to /healthz answering,
    and to /readyz past starting."""
    port = free_port()
    start = time.perf_counter()
    server = subprocess.Popen(
        [str(project / ".venv/bin/fraudops"), "serve", "--dev", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=home,
        env=_clean_environment() | {"FRAUDOPS_HOME": str(home)},
    )
    try:
        healthz = _wait_for(
            f"http://127.0.0.1:{port}/healthz", server, lambda status, _: status == 200
        )
        loaded = _wait_for(
            f"http://127.0.0.1:{port}/readyz",
            server,
            lambda status, body: status == 200 or "starting" not in body,
        )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return healthz - start, loaded - start


def _wait_for(url: str, server: subprocess.Popen[bytes], done: Any) -> float:
    """The moment `done(status, body)` first holds for a GET of url."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            msg = f"fraudops serve exited with {server.returncode}"
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(POLL_SECONDS)
            continue
        if done(status, body):
            return time.perf_counter()
        time.sleep(POLL_SECONDS)
    msg = f"{url} not ready within {READY_TIMEOUT_SECONDS} s"
    raise TimeoutError(msg)


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _clean_environment() -> dict[str, str]:
    """This environment without FRAUDOPS_ settings, so every checkout runs its defaults."""
    return {key: value for key, value in os.environ.items() if not key.startswith("FRAUDOPS_")}


def measure(projects: list[Path], runs: int, scratch: Path) -> dict[str, dict[str, list[float]]]:
    """Every measure of every checkout, `runs` times, the checkouts taking turns."""
    figures: dict[str, dict[str, list[float]]] = {
        str(project): {name: [] for name in MEASURES} for project in projects
    }
    homes = {project: scratch / f"home-{number}" for number, project in enumerate(projects)}
    for project, home in homes.items():  # a first start, untimed: the home restarts use
        home.mkdir()
        serve_seconds(project, home)
    for run in range(runs):
        for project in projects:
            new_home = scratch / f"new-{run}-{project.name}"
            new_home.mkdir()
            new_healthz_s, new_loaded_s = serve_seconds(project, new_home)
            restart_healthz_s, restart_loaded_s = serve_seconds(project, homes[project])
            values = {
                "import_s": import_seconds(project),
                "help_s": help_seconds(project),
                "new_home_healthz_s": new_healthz_s,
                "new_home_loaded_s": new_loaded_s,
                "restart_healthz_s": restart_healthz_s,
                "restart_loaded_s": restart_loaded_s,
            }
            for name, value in values.items():
                figures[str(project)][name].append(round(value, 3))
            shown = ", ".join(f"{name} {value:.2f}" for name, value in values.items())
            print(f"run {run + 1}/{runs} {project}: {shown}", flush=True)
    return figures


def main() -> None:
    """Measure, print the medians, record them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--project",
        type=Path,
        action="append",
        help="a checkout with its .venv (repeat to compare; default: this one)",
    )
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args()
    projects = [path.resolve() for path in (args.project or [HERE.parent])]
    with tempfile.TemporaryDirectory(prefix="fraudops-startup-") as scratch:
        figures = measure(projects, args.runs, Path(scratch))
    result: dict[str, Any] = {"runs": args.runs, "checkouts": {}}
    print(f"\nmedians of {args.runs} runs (seconds)")
    print(f"{'checkout':<24} " + " ".join(f"{name:>18}" for name in MEASURES))
    for project, values in figures.items():
        medians = {name: round(statistics.median(runs), 3) for name, runs in values.items()}
        result["checkouts"][project] = {"median": medians, "runs": values}
        row = " ".join(f"{medians[name]:>18.2f}" for name in MEASURES)
        print(f"{project:<24} {row}")
    if not args.no_save:
        print(f"recorded {harness.record('startup', result)}")


if __name__ == "__main__":
    sys.exit(main())
