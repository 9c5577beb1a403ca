"""What every benchmark shares: find fraudops, time a command in a child, record results."""

import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def fraudops_command() -> str:
    """The `fraudops` console script of the running interpreter's environment."""
    beside = Path(sys.executable).parent / "fraudops"
    found = str(beside) if beside.exists() else shutil.which("fraudops")
    if found is None:
        sys.exit("fraudops is not installed in this environment (run `make install`)")
    return found


def run_once(command: list[str], *, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run the command in a fresh child; return its wall seconds and peak RSS in MiB."""
    # A fresh interpreter per run, so the children's peak RSS is this run's alone.
    probe = (
        "import resource, subprocess, sys, time;"
        "t = time.perf_counter();"
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode;"
        "s = time.perf_counter() - t;"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
        "print(s, rss, code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *command],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    seconds, rss_kib, code = result.stdout.split()
    if int(code) != 0:
        sys.exit(f"benchmark command failed with exit code {code}: {' '.join(command)}")
    return float(seconds), int(rss_kib) / 1024.0


def machine() -> dict[str, Any]:
    """The machine a result was measured on."""
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def record(name: str, result: dict[str, Any]) -> Path:
    """Write results/<name>.json with the machine and the date added."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {
        "benchmark": name,
        **result,
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    return path
