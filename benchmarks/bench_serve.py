"""Benchmark `fraudops serve` under wrk: /v1/score against an empty FastAPI endpoint.

Simulates cards, trains an XGBoost champion into a fresh FRAUDOPS_HOME (`fraudops simulate`,
`fraudops train --train-end`) and stores the last 37 days before the end of training in the
warehouse (the horizon the online state is rebuilt from on start, as after weeks in service).
Then, one server at a time on loopback: the empty endpoint (benchmarks/empty_app.py, the
same body parsed into a CanonicalTransaction), the service on its embedded defaults (SQLite,
in-process state) and on PostgreSQL + Redis (a throw-away schema and key prefix). For each:

1. throughput: `wrk -t1 -c32 --latency`, as fast as the server answers, after a warm-up;
2. latency at 500 requests/s, Poisson arrivals paced by the wrk script's delay(): p50/p90/p99;
3. for the service, the warehouse holds exactly as many new transactions (and champion
   scores) as wrk got 2xx answers.

Every request is a new transaction (benchmarks/wrk/score.lua): the simulated days after the
training data, with fresh trans_nums and the time moving on, so each card's features come
from its history. Records benchmarks/results/serve.json. Needs wrk (`apt-get install wrk`);
the production server needs PostgreSQL and Redis.

    .venv/bin/python benchmarks/bench_serve.py [--seconds 20] [--servers empty,embedded,production]

`--stub features,model` (either or both) measures a ceiling instead: the service with its
online features and/or its model costing nothing (benchmarks/stubs/sitecustomize.py), the
rest of the path as in service. Such a run records benchmarks/results/serve_ceiling.json,
judges no target, and its stored scores are wrong by design.
"""

import argparse
import calendar
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

import harness
from fraudops.config import Settings
from fraudops.data.personal import PersonalData
from fraudops.data.schema import CanonicalTransaction
from fraudops.features.redis_store import RedisStateStore
from fraudops.features.spec import CARD_WINDOWS, MERCHANT_WINDOWS, MS_PER_DAY
from fraudops.logs import configure_logging
from fraudops.storage.base import LabelRecord, ScoredTransaction, ScoreRecord
from fraudops.storage.warehouse import Warehouse

TARGET_RATIO = 0.60
TARGET_P99_MS = 20.0
RATE = 500.0
# The fixed-rate run counts only if wrk kept within this share of the rate.
RATE_TOLERANCE = 0.05
LABEL_DELAY_DAYS = 7
LONGEST_WINDOW_DAYS = max(*CARD_WINDOWS.values(), *MERCHANT_WINDOWS.values()) // MS_PER_DAY
# The history the service rebuilds its online state from: the longest window + the delay.
HISTORY_DAYS = LONGEST_WINDOW_DAYS + LABEL_DELAY_DAYS
# wrk runs this much longer than the script sends, so no request is in flight when it stops.
DRAIN_SECONDS = 2
# Answers slower than this fall out of wrk's latency histogram (counted as timeouts).
WRK_TIMEOUT_SECONDS = 30
# One wrk thread: wrk then takes one of the two cores, the server the other.
WRK_THREADS = 1
READY_TIMEOUT_SECONDS = 900
SEED_CHUNK = 5_000
SIMULATION_START = datetime(2024, 1, 1)
NOT_TEMPLATE_FIELDS = ("trans_num", "trans_date_trans_time", "unix_time", "is_fraud")
HERE = Path(__file__).parent
WRK_SCRIPT = HERE / "wrk" / "score.lua"
SERVERS = ("empty", "embedded", "production")
STUBS = ("features", "model")
# Scores of the seeded history: the warehouse needs one per transaction; no feature uses it.
HISTORY_SCORE = ScoreRecord(
    model_name="seeded-history",
    model_version="0",
    fraud_probability=0.0,
    decision="approve",
    scored_at=datetime(2024, 1, 1, tzinfo=UTC),
)


@dataclass(frozen=True, kw_only=True)
class Workload:
    """What every server is measured on: the model's home, the history and the templates."""

    home: Path
    templates: Path
    template_rows: int
    start: int  # epoch seconds where the replayed days begin (the end of training)
    span: int  # seconds the templates cover
    history: list[CanonicalTransaction]
    labels: list[LabelRecord]
    data_rows: int
    setup_seconds: float


def prepare(tmp: Path, args: argparse.Namespace) -> Workload:
    """Simulate, train and register the champion, split history and replayed days."""
    fraudops = harness.fraudops_command()
    began = time.perf_counter()
    data = tmp / "simulated.parquet"
    days = args.days + args.replay_days
    run_quietly(
        [fraudops, "simulate", "--cards", str(args.cards), "--days", str(days),
         "--seed", str(args.seed), "--start", f"{SIMULATION_START:%Y-%m-%d}", "--out", str(data)],
        env=fraudops_env(log_level="warning"), cwd=tmp,
    )  # fmt: skip
    end = SIMULATION_START + timedelta(days=args.days)
    home = tmp / "home"
    run_quietly(
        [fraudops, "train", "--data", str(data), "--profile", "sparkov",
         "--train-end", f"{end - timedelta(days=1):%Y-%m-%d}", "--model", "xgboost",
         "--trials", str(args.trials), "--delay-days", str(LABEL_DELAY_DAYS),
         "--seed", str(args.seed)],
        env=fraudops_env(home=home, log_level="warning"), cwd=tmp,
    )  # fmt: skip
    frame = pd.read_parquet(data).drop(columns=["fraud_scenario"])
    times = pd.to_datetime(frame["trans_date_trans_time"])
    frame = frame.assign(_time=times).sort_values(["_time", "trans_num"], kind="stable")
    history = frame[(frame["_time"] >= end - timedelta(days=HISTORY_DAYS)) & (frame["_time"] < end)]
    replayed = frame[frame["_time"] >= end]
    templates = tmp / "templates.tsv"
    write_templates(replayed, start=end, path=templates)
    transactions, labels = history_records(history, end=end)
    return Workload(
        home=home,
        templates=templates,
        template_rows=len(replayed),
        start=calendar.timegm(end.timetuple()),
        span=args.replay_days * 86_400,
        history=transactions,
        labels=labels,
        data_rows=len(frame),
        setup_seconds=time.perf_counter() - began,
    )


def code_version() -> str:
    """The commit measured, and whether src/ had uncommitted changes (others may edit it)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=HERE.parent, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (
        " + uncommitted changes in src/" if git("status", "--porcelain", "src") else ""
    )


def run_quietly(command: list[str], *, env: dict[str, str], cwd: Path) -> None:
    """Run a command, showing its output only if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def write_templates(frame: pd.DataFrame, *, start: datetime, path: Path) -> None:
    """One line per transaction: seconds after `start`, a tab, its JSON fields but id and time."""
    offsets = ((frame["_time"] - start).dt.total_seconds()).astype(int).tolist()
    fields = frame.drop(columns=[*NOT_TEMPLATE_FIELDS, "_time"]).to_dict("records")
    with path.open("w", encoding="utf-8") as out:
        for offset, record in zip(offsets, fields, strict=True):
            out.write(f"{offset}\t{json.dumps(record)[1:-1]}\n")


def history_records(
    frame: pd.DataFrame, *, end: datetime
) -> tuple[list[CanonicalTransaction], list[LabelRecord]]:
    """The history as canonical transactions, and the labels known at `end` (delay passed)."""
    known_until = end - timedelta(days=LABEL_DELAY_DAYS)
    transactions: list[CanonicalTransaction] = []
    labels: list[LabelRecord] = []
    for record in frame.drop(columns=["_time"]).to_dict("records"):
        is_fraud = bool(record.pop("is_fraud"))
        transaction = CanonicalTransaction.from_record({str(k): v for k, v in record.items()})
        transactions.append(transaction)
        if transaction.event_time < known_until:
            labels.append(
                LabelRecord(
                    trans_num=transaction.trans_num,
                    is_fraud=is_fraud,
                    label_time=transaction.event_time + timedelta(days=LABEL_DELAY_DAYS),
                    source="seeded-history",
                )
            )
    return transactions, labels


def seed_warehouse(url: str, workload: Workload, *, card_hash_key: str) -> float:
    """Create the warehouse at `url` and store the history with its labels; seconds taken.

    The card ids are made with the servers' key (FRAUDOPS_CARD_HASH_KEY), or a server
    refuses the warehouse as made with another key.
    """
    began = time.perf_counter()
    warehouse = Warehouse(url, personal=PersonalData.from_text(card_hash_key))
    try:
        warehouse.migrate()
        history, labels = workload.history, workload.labels
        for at in range(0, len(history), SEED_CHUNK):
            warehouse.store_scored_batch(
                [
                    ScoredTransaction(transaction=t, score=HISTORY_SCORE)
                    for t in history[at : at + SEED_CHUNK]
                ]
            )
        for at in range(0, len(labels), SEED_CHUNK):
            warehouse.record_labels(labels[at : at + SEED_CHUNK])
    finally:
        warehouse.dispose()
    return time.perf_counter() - began


def fraudops_env(**settings: Path | str) -> dict[str, str]:
    """This environment without any FRAUDOPS_* variable, plus the given settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRAUDOPS_")}
    env.update({f"FRAUDOPS_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running(command: list[str], *, env: dict[str, str], port: int, log: Path) -> Iterator[float]:
    """A server started with `command`, ready; yields its seconds to ready, stops it at exit."""
    with log.open("wb") as out:
        # Run beside the log, where no .env file can add settings.
        process = subprocess.Popen(
            command, env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield wait_ready(process, port=port, log=log)
        finally:
            process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown: stores the queue
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(process: subprocess.Popen[bytes], *, port: int, log: Path) -> float:
    """Poll /readyz until it answers 200; seconds since the start."""
    began = time.perf_counter()
    while time.perf_counter() - began < READY_TIMEOUT_SECONDS:
        if process.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            sys.exit(f"the server exited with code {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
                if answer.status == 200:
                    return time.perf_counter() - began
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    sys.exit(f"the server was not ready after {READY_TIMEOUT_SECONDS} s (log: {log})")


@dataclass
class Load:
    """One server's wrk runs: where its trans_nums start and what they add up to."""

    wrk: str
    url: str
    run: str
    token: str
    workload: Workload
    sent: int = 0
    answered_2xx: int = 0

    def run_wrk(self, *, connections: int, seconds: int, rate: float) -> dict[str, Any]:
        """One wrk run of new transactions; its figures, trans_nums continuing the last run."""
        w = self.workload
        command = [
            self.wrk, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds + DRAIN_SECONDS}s",
            "--latency", f"--timeout={WRK_TIMEOUT_SECONDS}s", "-s", str(WRK_SCRIPT), self.url, "--",
            str(w.templates), self.run, str(self.sent), str(w.start), str(w.span), self.token,
            str(rate), str(seconds), str(WRK_THREADS),
        ]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        line = next((x for x in output.splitlines() if x.startswith("WRK_JSON ")), None)
        if line is None:
            sys.exit(f"wrk printed no WRK_JSON line:\n{output}")
        raw = json.loads(line.removeprefix("WRK_JSON "))
        self.sent += raw["sent"]
        self.answered_2xx += raw["requests"] - raw["non_2xx_3xx"]
        errors = {k: raw[k] for k in ("connect", "read", "write", "timeout")}
        latency = {k: round(v / 1000.0, 2) for k, v in raw["latency_us"].items()}
        return {
            "connections": connections,
            "requests": raw["requests"],
            "sent": raw["sent"],
            "non_2xx_3xx": raw["non_2xx_3xx"],
            "socket_errors": errors,
            "requests_per_s": round(raw["requests"] / (raw["active_ms"] / 1000.0), 1),
            "wrk_requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
            "active_seconds": round(raw["active_ms"] / 1000.0, 2),
            "latency_ms": latency,
            "valid": raw["non_2xx_3xx"] == 0
            and not any(errors.values())
            and raw["sent"] == raw["requests"],
        }


def measure(load: Load, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then throughput as fast as it answers, then latency at the fixed rate."""
    warm_up = load.run_wrk(connections=args.connections, seconds=args.warm_up, rate=0)
    throughput = load.run_wrk(connections=args.connections, seconds=args.seconds, rate=0)
    paced = load.run_wrk(connections=args.rate_connections, seconds=args.rate_seconds, rate=RATE)
    paced["rate_kept"] = abs(paced["requests_per_s"] - RATE) <= RATE * RATE_TOLERANCE
    return {"warm_up": warm_up, "throughput": throughput, "fixed_rate": paced}


def stored_counts(url: str, run: str) -> dict[str, int]:
    """Transactions and champion scores the warehouse holds for trans_nums of this run."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            pattern = {"pattern": f"{run}-%"}
            transactions = connection.scalar(
                sa.text("SELECT count(*) FROM transactions WHERE trans_num LIKE :pattern"),
                pattern,
            )
            scores = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM scores WHERE role = 'champion' "
                    "AND trans_num LIKE :pattern"
                ),
                pattern,
            )
    finally:
        engine.dispose()
    return {"transactions": int(transactions or 0), "champion_scores": int(scores or 0)}


@contextmanager
def production_stores(postgres: str, redis_url: str) -> Iterator[tuple[str, str]]:
    """A throw-away schema on PostgreSQL and a Redis key prefix; both removed at exit."""
    suffix = secrets.token_hex(4)
    schema, prefix = f"fraudops_bench_{suffix}", f"fraudops-bench-{suffix}"
    store = RedisStateStore.from_url(redis_url, prefix=prefix)
    if not store.healthy():
        store.close()
        sys.exit(f"Redis is unreachable at {store.address} (or leave out production)")
    server = sa.make_url(postgres)
    admin = sa.create_engine(server, connect_args={"connect_timeout": 5})
    try:
        try:
            with admin.begin() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        except sa.exc.OperationalError as error:
            sys.exit(
                f"PostgreSQL is unreachable at {server}: {error.orig} (or leave out production)"
            )
        try:
            url = server.update_query_dict({"options": f"-csearch_path={schema}"})
            yield url.render_as_string(hide_password=False), prefix
        finally:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()
        store.clear()
        store.close()


@dataclass(frozen=True, kw_only=True)
class Bench:
    """What every server's measurement shares."""

    args: argparse.Namespace
    wrk: str
    token: str
    card_hash_key: str
    run: str
    tmp: Path
    workload: Workload


def serve_and_measure(
    name: str, *, bench: Bench, command: list[str], env: dict[str, str], database: str | None
) -> dict[str, Any]:
    """Seed the warehouse (if any), start the server, measure it, stop it, count what it stored."""
    seed_seconds = (
        None
        if database is None
        else seed_warehouse(database, bench.workload, card_hash_key=bench.card_hash_key)
    )
    port = free_port()
    load = Load(
        wrk=bench.wrk,
        url=f"http://127.0.0.1:{port}",
        run=f"{bench.run}-{name}",
        token=bench.token,
        workload=bench.workload,
    )
    log = bench.tmp / f"{name}.log"
    print(f"{name:<12} starting, then {bench.args.warm_up} + {bench.args.seconds} + "
          f"{bench.args.rate_seconds} s of load", flush=True)  # fmt: skip
    with running([*command, "--port", str(port)], env=env, port=port, log=log) as ready:
        phases = measure(load, bench.args)
    runs = list(phases.values())
    result: dict[str, Any] = {
        "ready_seconds": round(ready, 1),
        **phases,
        "problems": {
            "non_2xx_3xx": sum(r["non_2xx_3xx"] for r in runs),
            "socket_errors": sum(sum(r["socket_errors"].values()) for r in runs),
            "unanswered": sum(r["sent"] - r["requests"] for r in runs),
        },
    }
    if database is not None:
        stored = stored_counts(database, load.run)
        result["history_seed_seconds"] = round(seed_seconds or 0.0, 1)
        result["stored"] = {
            **stored,
            "answered_2xx": load.answered_2xx,
            "sent": load.sent,
            "match": stored["transactions"] == load.answered_2xx == stored["champion_scores"],
        }
    return result


@contextmanager
def server_setup(
    name: str,
    *,
    home: Path,
    token: str,
    card_hash_key: str,
    args: argparse.Namespace,
    workers: int = 1,
) -> Iterator[tuple[list[str], dict[str, str], str | None]]:
    """The command, environment and warehouse URL (None: the empty endpoint has none) of
    one server; production's throw-away schema and key prefix exist while the block runs."""
    if name == "empty":
        yield [sys.executable, str(HERE / "empty_app.py")], fraudops_env(), None
        return
    serve = [harness.fraudops_command(), "serve", "--workers", str(workers)]
    stubs = stub_env(getattr(args, "stub", ""))
    settings: dict[str, Path | str] = {
        "home": home,
        "journal_drain": getattr(args, "journal_drain", "process"),
        "api_tokens": token,
        "card_hash_key": card_hash_key,
    }
    if name == "embedded":
        # The embedded default, FRAUDOPS_HOME/warehouse.db, named to seed and count it.
        database = f"sqlite:///{(home / 'warehouse.db').resolve().as_posix()}"
        yield serve, {**fraudops_env(**settings), **stubs}, database
        return
    if name != "production":
        sys.exit(f"unknown server {name!r}: empty, embedded or production")
    with production_stores(args.postgres_url, args.redis_url) as (database, prefix):
        env = fraudops_env(
            **settings, database_url=database, redis_url=args.redis_url, redis_prefix=prefix
        )
        yield serve, {**env, **stubs}, database


def stub_env(stub: str) -> dict[str, str]:
    """The variables that make a server stub `stub` (comma-separated STUBS; none if empty)."""
    if not stub:
        return {}
    path = os.pathsep.join(filter(None, [str(HERE / "stubs"), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "BENCH_STUB": stub}


def run_server(name: str, bench: Bench) -> dict[str, Any]:
    """Measure one of the servers: the empty endpoint, embedded or production."""
    with server_setup(
        name,
        home=bench.workload.home,
        token=bench.token,
        card_hash_key=bench.card_hash_key,
        args=bench.args,
        workers=bench.args.workers,
    ) as (command, env, database):
        return serve_and_measure(name, bench=bench, command=command, env=env, database=database)


def judge(results: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Targets with their values and pass/fail, and whether every run was valid."""
    targets: dict[str, Any] = {}
    empty = results.get("empty")
    for name in ("embedded", "production"):
        if name not in results:
            continue
        figures = results[name]
        if empty is not None:
            ratio = figures["throughput"]["requests_per_s"] / empty["throughput"]["requests_per_s"]
            figures["throughput_ratio"] = round(ratio, 3)
            targets[f"{name}_throughput_ratio"] = {
                "at_least": TARGET_RATIO, "value": round(ratio, 3), "pass": ratio >= TARGET_RATIO
            }  # fmt: skip
        paced = figures["fixed_rate"]
        p99 = paced["latency_ms"]["p99"]
        # A server that cannot keep up with the rate fails this target whatever its p99.
        targets[f"{name}_p99_ms_at_{RATE:.0f}_per_s"] = {
            "at_most": TARGET_P99_MS, "value": p99, "achieved_rate": paced["requests_per_s"],
            "pass": p99 <= TARGET_P99_MS and paced["rate_kept"],
        }  # fmt: skip
    valid = all(
        figures[phase]["valid"]
        for figures in results.values()
        for phase in ("warm_up", "throughput", "fixed_rate")
    ) and all(f["stored"]["match"] for f in results.values() if "stored" in f)
    return targets, valid


def print_table(results: dict[str, dict[str, Any]], targets: dict[str, Any]) -> None:
    """The figures of every server side by side, with the targets."""
    names = list(results)

    def row(label: str, values: list[str], target: str = "") -> None:
        print(f"{label:<34}" + "".join(f"{v:>14}" for v in values) + f"   {target}")

    def figure(path: tuple[str, ...], form: str = "{:,.1f}") -> list[str]:
        values = []
        for name in names:
            value: Any = results[name]
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            values.append("-" if value is None else form.format(value))
        return values

    row("", names, "target")
    row("ready after (s)", figure(("ready_seconds",)))
    row("throughput (requests/s)", figure(("throughput", "requests_per_s")))
    row("  ratio to the empty endpoint", figure(("throughput_ratio",), "{:.1%}"),
        f">= {TARGET_RATIO:.0%}")  # fmt: skip
    for p in ("p50", "p99"):
        row(f"  {p} under full load (ms)", figure(("throughput", "latency_ms", p), "{:.2f}"))
    row("fixed rate, achieved (requests/s)", figure(("fixed_rate", "requests_per_s")),
        f"{RATE:.0f} +- {RATE_TOLERANCE:.0%}")  # fmt: skip
    for p in ("p50", "p90", "p99", "p999", "max"):
        row(f"  {p} at {RATE:.0f}/s (ms)", figure(("fixed_rate", "latency_ms", p), "{:.2f}"),
            f"<= {TARGET_P99_MS:.0f}" if p == "p99" else "")  # fmt: skip
    for key, label in (
        ("non_2xx_3xx", "non-2xx answers (all runs)"),
        ("socket_errors", "socket errors"),
        ("unanswered", "sent, unanswered when wrk stopped"),
    ):
        row(label, figure(("problems", key), "{:,}"), "0")
    row("stored transactions", figure(("stored", "transactions"), "{:,}"))
    row("  2xx answers (wrk)", figure(("stored", "answered_2xx"), "{:,}"), "= stored")
    row("history seeded (s)", figure(("history_seed_seconds",)))
    for name, target in targets.items():
        achieved = target.get("achieved_rate", RATE)
        kept = "" if abs(achieved - RATE) <= RATE * RATE_TOLERANCE else f" at {achieved:.0f}/s"
        print(f"target {name}: {target['value']}{kept} -> {'pass' if target['pass'] else 'FAIL'}")


def parse_arguments() -> argparse.Namespace:
    """The command line, checked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=45, help="days of training data")
    parser.add_argument("--replay-days", type=int, default=15, help="days replayed as requests")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--trials", type=int, default=0, help="Optuna trials (0: defaults)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=20, help="throughput run")
    parser.add_argument("--warm-up", type=int, default=5)
    parser.add_argument("--rate-connections", type=int, default=32)
    parser.add_argument("--rate-seconds", type=int, default=30)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument(
        "--workers", type=int, default=1, help="fraudops serve --workers (more than 1: Redis)"
    )
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--journal-drain", choices=("process", "thread"), default="process",
        help="FRAUDOPS_JOURNAL_DRAIN of the servers",
    )  # fmt: skip
    parser.add_argument(
        "--stub", default="", help="measure a ceiling: stub features and/or model (no targets)"
    )
    parser.add_argument("--no-save", action="store_true", help="print only, keep the JSON")
    args = parser.parse_args()
    if unknown_stubs := set(filter(None, args.stub.split(","))) - set(STUBS):
        sys.exit(f"unknown stubs {sorted(unknown_stubs)}; choose from {', '.join(STUBS)}")
    if unknown := set(args.servers.split(",")) - set(SERVERS):
        sys.exit(f"unknown servers {sorted(unknown)}; choose from {', '.join(SERVERS)}")
    return args


def main() -> None:
    """Prepare the model and data, measure every server, print and record the figures."""
    args = parse_arguments()
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed: apt-get install wrk")

    configure_logging(Settings(log_level="warning"))  # the seeding here; servers log to files
    load_before = os.getloadavg()[0]
    code = code_version()
    with tempfile.TemporaryDirectory(prefix="fraudops-bench-serve-") as tmp:
        workload = prepare(Path(tmp), args)
        print(f"setup        {workload.data_rows:,} simulated rows, simulated and trained in "
              f"{workload.setup_seconds:.0f} s; {len(workload.history):,} transactions of "
              f"history, {workload.template_rows:,} replayed", flush=True)  # fmt: skip
        bench = Bench(
            args=args,
            wrk=wrk,
            token=secrets.token_urlsafe(32),
            card_hash_key=secrets.token_hex(32),
            run=f"bench-{secrets.token_hex(3)}",
            tmp=Path(tmp),
            workload=workload,
        )
        results = {name: run_server(name, bench) for name in args.servers.split(",")}
    targets, valid = judge(results)
    if args.stub:  # a ceiling, not the service: no target is judged
        targets = {}
    passed = valid and all(t["pass"] for t in targets.values())
    shown = " ".join(["python benchmarks/bench_serve.py", *sys.argv[1:]])
    load_after = os.getloadavg()[0]
    result = {
        "command": shown,
        "code": code,
        "wrk": f"wrk -t{WRK_THREADS} -c{args.connections} -d{args.seconds}s --latency "
        f"(throughput); -c{args.rate_connections} -d{args.rate_seconds}s at {RATE:.0f}/s "
        "(Poisson arrivals by delay()); -s benchmarks/wrk/score.lua",
        "data": f"fraudops simulate --cards {args.cards} --days {args.days + args.replay_days} "
        f"--seed {args.seed}; train on the first {args.days} days (xgboost, "
        f"{args.trials} trials); {HISTORY_DAYS} days of history seeded; the rest replayed",
        "history_transactions": len(workload.history),
        "setup_seconds": round(workload.setup_seconds, 1),
        # The machine may be shared: its 1-minute load average before and after the run.
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "stub": args.stub or None,
        "servers": results,
        "targets": targets,
        "valid": valid,
        "pass": None if args.stub else passed,
    }
    print(f"command      {shown}")
    print_table(results, targets)
    print(f"load average {load_before:.2f} before, {load_after:.2f} after "
          f"({os.cpu_count()} cores)")  # fmt: skip
    print(f"result       {outcome(args.stub, passed=passed, valid=valid)}")
    if not args.no_save:
        name = "serve" if args.workers == 1 else f"serve_workers{args.workers}"
        print(f"recorded     {harness.record('serve_ceiling' if args.stub else name, result)}")
    sys.exit(0 if passed else 1)


def outcome(stub: str, *, passed: bool, valid: bool) -> str:
    """The run's verdict: pass or fail, or for a ceiling (`stub`) only whether it was valid."""
    invalid = "INVALID RUN"
    if stub:
        verdict = "valid" if valid else invalid
        return f"{verdict}; stubbed {stub}: a ceiling of the rest of the path, no target judged"
    return ("pass" if passed else "FAIL") + ("" if valid else f" ({invalid})")


if __name__ == "__main__":
    main()
