"""CPU per /v1/score request by stage: py-spy on `fraudops serve` under wrk.

Prepares the same workload as bench_serve.py (simulate, train, seed the history), starts the
empty endpoint and then `fraudops serve` on its embedded defaults and (`--servers` naming
production) on PostgreSQL + Redis, a throw-away schema and key prefix; warms each up, then runs
wrk as fast as it answers while `py-spy record --gil` samples the server. Each sample goes
to the stage of its innermost frame that names one (online features, model and reasons,
journal, warehouse, HTTP server, framework, ...); a stage's CPU per request is its samples
over the sampling rate and the requests answered meanwhile. The process's whole CPU time
(user + system, every thread, from /proc) per request is recorded beside it: py-spy --gil
sees Python holding the GIL only, not sqlite or fdatasync working without it. So is the CPU
that PostgreSQL's and Redis's server processes spend meanwhile (every process of theirs on
this machine, from /proc), since on one machine they share the cores with the service.

    .venv/bin/python benchmarks/profile_serve.py [--label after] [--seconds 15]
        [--servers empty,embedded,production]

Records benchmarks/results/serve_profile.json under the label (before/after kept side by
side). Needs wrk and py-spy (a dev dependency; sampling another process needs root or
ptrace rights).
"""

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import bench_serve as bench
import harness
from fraudops.config import Settings
from fraudops.logs import configure_logging

# Innermost frame first: the first rule whose pattern is in a frame's file names the stage.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("online features", ("fraudops/features/",)),
    ("model and reasons", ("fraudops/scoring/model.py", "fraudops/scoring/reasons.py")),
    ("journal", ("fraudops/storage/journal.py", "fraudops/scoring/journaling.py")),
    ("warehouse (drain)", ("sqlalchemy/", "fraudops/storage/", "sqlite3/", "scoring/drain.py")),
    ("admission and protection", ("fraudops/scoring/admission.py", "fraudops/data/personal.py")),
    ("request parsing", ("pydantic/", "pydantic_core/", "msgspec/", "fraudops/data/schema.py")),
    ("metrics", ("prometheus_client/", "fraudops/api/metrics.py", "fraudops/scoring/metrics.py")),
    ("response", ("fraudops/api/schemas.py", "orjson")),
    ("route and bridge", ("fraudops/api/routes.py", "fraudops/api/bridge.py")),
    ("auth", ("fraudops/api/auth.py",)),
    ("scoring (rest)", ("fraudops/scoring/",)),
    ("logging", ("structlog/", "logging/")),
    ("framework (FastAPI, Starlette)", ("fastapi/", "starlette/")),
    ("HTTP server (uvicorn)", ("uvicorn/", "httptools")),
    ("event loop and threads", ("asyncio/", "uvloop", "concurrent/", "threading.py", "queue.py")),
)
# The stores' server processes, by the start of their command name (/proc/PID/comm).
STORE_PROCESSES = {"postgresql": "postgres", "redis": "redis-server"}
FRAME_FILE = re.compile(r"\(([^()]*?):\d+\)$")


def stage_of(stack: str) -> str:
    """The stage of one sampled stack (`frame;frame;...`, outermost first)."""
    for frame in reversed(stack.split(";")):
        match = FRAME_FILE.search(frame)
        if match is None:
            continue
        path = match.group(1)
        for stage, patterns in STAGES:
            if any(pattern in path for pattern in patterns):
                return stage
    return "other"


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, parent, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU seconds of a process so far (all threads), with those of its
    children it has waited for if `reaped_children`."""
    return fields_cpu_seconds(stat_fields(pid), reaped_children=reaped_children)


def fields_cpu_seconds(fields: list[str], *, reaped_children: bool) -> float:
    """`cpu_seconds` from a process's `stat_fields`."""
    used = fields[11:15] if reaped_children else fields[11:13]
    return sum(int(field) for field in used) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> float:
    """CPU seconds so far of the live child processes of `pid` (the drain process)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = stat_fields(int(entry.name))
            if int(fields[1]) == pid:
                total += fields_cpu_seconds(fields, reaped_children=True)
        except (OSError, ValueError):  # gone meanwhile
            continue
    return total


def store_cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of the PostgreSQL and Redis server processes on this machine.

    Each process's own CPU and that of its children it has reaped: a PostgreSQL backend
    that ends during the run (a connection closed) is counted in the postmaster's, not lost.
    """
    totals = dict.fromkeys(STORE_PROCESSES, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "comm").read_text().strip()
            cpu = cpu_seconds(int(entry.name), reaped_children=True)
        except OSError:  # gone meanwhile
            continue
        for store, prefix in STORE_PROCESSES.items():
            if command.startswith(prefix):
                totals[store] += cpu
    return totals


def profile(
    name: str, *, load: bench.Load, pid: int, seconds: int, rate: int, py_spy: str, out: Path
) -> dict[str, Any]:
    """Sample the server while wrk loads it; CPU per request by stage."""
    raw = out / f"{name}.txt"
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--gil", "--nonblocking", "--rate", str(rate),
         "--format", "raw", "--output", str(raw), "--duration", str(seconds + 2)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # py-spy attached
    cpu_before, stores_before = cpu_seconds(pid), store_cpu_seconds()
    children_before = children_cpu_seconds(pid)
    figures = load.run_wrk(connections=32, seconds=seconds, rate=0)
    cpu = cpu_seconds(pid) - cpu_before
    children = children_cpu_seconds(pid) - children_before
    stores = {store: after - stores_before[store] for store, after in store_cpu_seconds().items()}
    spy.wait(timeout=120)
    samples: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples[stage_of(stack)] += int(count)
    requests = figures["requests"]
    total = sum(samples.values())
    # Samples cover wrk's run plus py-spy's margins: scaled to the run by the sampled time.
    sampled_seconds = total / rate
    by_stage = {
        stage: round(count / rate / requests * 1e6, 1) for stage, count in samples.most_common()
    }
    return with_cpu_by_stage(
        {
            "requests": requests,
            "requests_per_s": figures["requests_per_s"],
            "process_cpu_us_per_request": round(cpu / requests * 1e6, 1),
            # The drain process (FRAUDOPS_JOURNAL_DRAIN=process) works beside the service.
            "drain_process_cpu_us_per_request": round(children / requests * 1e6, 1),
            "store_cpu_us_per_request": {
                store: round(seconds / requests * 1e6, 1) for store, seconds in stores.items()
            },
            "gil_held_us_per_request": round(sampled_seconds / requests * 1e6, 1),
            "gil_us_per_request_by_stage": by_stage,
            "samples": total,
        }
    )


def with_cpu_by_stage(figures: dict[str, Any]) -> dict[str, Any]:
    """The process's CPU per request shared out as the stages' samples are.

    On a loaded machine a thread holding the GIL is also sampled while the scheduler has it
    waiting for a core, so the samples' time overstates CPU; their shares do not.
    """
    held = figures["gil_held_us_per_request"]
    cpu = figures["process_cpu_us_per_request"]
    figures["cpu_us_per_request_by_stage"] = {
        stage: round(us / held * cpu, 1)
        for stage, us in figures["gil_us_per_request_by_stage"].items()
    }
    return figures


def main() -> None:
    """Prepare, profile the empty endpoint and the embedded service, record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="key in serve_profile.json")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--servers", default="empty,embedded", help="and/or production")
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument(
        "--samples-dir", type=Path, help="keep py-spy's raw samples here (SERVER.txt)"
    )
    args = parser.parse_args()
    wrk, py_spy = shutil.which("wrk"), shutil.which("py-spy", path=Path(sys.executable).parent)
    if wrk is None or py_spy is None:
        sys.exit("needs wrk (apt-get install wrk) and py-spy (make install)")
    workload_args = argparse.Namespace(cards=2_000, days=45, replay_days=15, seed=7, trials=0)
    configure_logging(Settings(log_level="warning"))
    results: dict[str, Any] = {}
    if args.samples_dir is not None:
        args.samples_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fraudops-profile-serve-") as tmp_name:
        tmp = Path(tmp_name)
        workload = bench.prepare(tmp, workload_args)
        token, key = secrets.token_urlsafe(32), secrets.token_hex(32)
        for name in args.servers.split(","):
            with bench.server_setup(
                name, home=workload.home, token=token, card_hash_key=key, args=args
            ) as (command, env, database):
                if database is not None:
                    bench.seed_warehouse(database, workload, card_hash_key=key)
                port = bench.free_port()
                load = bench.Load(
                    wrk=wrk, url=f"http://127.0.0.1:{port}", run=f"profile-{secrets.token_hex(3)}",
                    token=token, workload=workload,
                )  # fmt: skip
                log = tmp / f"{name}.log"
                with bench.running([*command, "--port", str(port)], env=env, port=port, log=log):
                    pid = server_pid(port)
                    load.run_wrk(connections=32, seconds=5, rate=0)  # warm-up
                    results[name] = profile(
                        name, load=load, pid=pid, seconds=args.seconds, rate=args.rate,
                        py_spy=py_spy, out=args.samples_dir or tmp,
                    )  # fmt: skip
            print(f"{name:<10} {json.dumps(results[name], indent=1)}", flush=True)
    record = {
        "command": " ".join(["python benchmarks/profile_serve.py", *sys.argv[1:]]),
        "code": bench.code_version(),
        "load_average": round(os.getloadavg()[0], 2),
        "servers": results,
    }
    if not args.no_save:
        path = harness.RESULTS_DIR / "serve_profile.json"
        document = json.loads(path.read_text()) if path.exists() else {"benchmark": "serve_profile"}
        document[args.label] = record
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"recorded     {path} [{args.label}]")


def server_pid(port: int) -> int:
    """The process listening on a local TCP port (the uvicorn server itself)."""
    output = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"pid=(\d+)", output)
    if match is None:
        sys.exit(f"nothing listens on port {port}")
    return int(match.group(1))


if __name__ == "__main__":
    main()
