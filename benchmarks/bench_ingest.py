"""Benchmark ingestion: replay a simulated file, score it and store it in PostgreSQL.

Simulates cards, trains an XGBoost champion on the first days (`fraudops simulate`,
`fraudops train`), then replays the whole file as fast as it is taken through
`fraudops.ingest` into a throw-away PostgreSQL schema, with the online state in process:

- in-process: the scoring service runs inside the ingester (the embedded sink);
- http: the ingester posts batches to a `fraudops serve` process on the same schema.

Reports the sustained rate (the slowest 10-second window, after the first one), the
overall rate, the delivery latency (read to stored, per batch) p50/p99/max and the lag left
at the end, and checks that the warehouse holds every transaction exactly once.
Records benchmarks/results/ingest.json.

    .venv/bin/python benchmarks/bench_ingest.py [--sinks in-process,http]
"""

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

import harness
from bench_serve import fraudops_env, free_port, production_stores, run_quietly, wait_ready
from fraudops.config import Settings
from fraudops.ingest.app import IngestConfig, ingest
from fraudops.ingest.runner import IngestMetrics, IngestOptions, IngestReport
from fraudops.logs import configure_logging

TARGET_PER_SECOND = 2_000.0
WINDOW_SECONDS = 10.0
SIMULATION_START = datetime(2024, 1, 1)
SINKS = ("in-process", "http")
# The paced run: the replay clock set so the file arrives at this average rate.
PACED_PER_SECOND = 2_000.0


def prepare(tmp: Path, args: argparse.Namespace) -> tuple[Path, Path, float]:
    """Simulate and train; the data file, the model's home and the seconds it took."""
    fraudops = harness.fraudops_command()
    began = time.perf_counter()
    data = tmp / "simulated.parquet"
    run_quietly(
        [fraudops, "simulate", "--cards", str(args.cards), "--days", str(args.days),
         "--seed", str(args.seed), "--start", f"{SIMULATION_START:%Y-%m-%d}", "--out", str(data)],
        env=fraudops_env(log_level="warning"), cwd=tmp,
    )  # fmt: skip
    home = tmp / "home"
    train_end = SIMULATION_START + timedelta(days=args.train_days - 1)
    run_quietly(
        [fraudops, "train", "--data", str(data), "--profile", "sparkov",
         "--train-end", f"{train_end:%Y-%m-%d}", "--model", "xgboost", "--trials", "0",
         "--delay-days", "7", "--seed", str(args.seed)],
        env=fraudops_env(home=home, log_level="warning"), cwd=tmp,
    )  # fmt: skip
    return data, home, time.perf_counter() - began


def windows(report: IngestReport) -> list[float]:
    """Transactions per second in consecutive 10-second windows of the run."""
    if not report.timeline:
        return []
    times = np.array([t for t, _ in report.timeline])
    stored = np.array([n for _, n in report.timeline])
    rates = []
    start = 0.0
    while start + WINDOW_SECONDS <= times[-1]:
        end = start + WINDOW_SECONDS
        before = stored[times <= start].max(initial=0)
        after = stored[times <= end].max(initial=0)
        rates.append(float(after - before) / WINDOW_SECONDS)
        start = end
    return rates


def figures(report: IngestReport, *, expected: int, database: str) -> dict[str, Any]:
    """The rates, latencies and the exactly-once check of one run."""
    rates = windows(report)
    sustained = min(rates[1:]) if len(rates) > 1 else (rates[0] if rates else 0.0)
    delivery = np.array(report.delivery_seconds or [0.0]) * 1000
    engine = sa.create_engine(database)
    with engine.connect() as connection:
        count = connection.scalar(sa.text("SELECT count(*) FROM transactions"))
        distinct = connection.scalar(sa.text("SELECT count(DISTINCT trans_num) FROM scores"))
    engine.dispose()
    return {
        "transactions": report.stored,
        "seconds": round(report.seconds, 1),
        "per_second": round(report.stored / report.seconds, 1),
        "sustained_per_second": round(sustained, 1),
        "windows_per_second": [round(r) for r in rates],
        "delivery_ms": {
            "p50": round(float(np.percentile(delivery, 50)), 1),
            "p99": round(float(np.percentile(delivery, 99)), 1),
            "max": round(float(delivery.max()), 1),
        },
        "retries": report.retries,
        "left_in_spool": report.left_in_spool,
        "warehouse": {"transactions": count, "scored": distinct, "expected": expected},
        "exactly_once": count == distinct == expected,
    }


def run_sink(
    sink: str, *, data: Path, home: Path, tmp: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """One replay of the whole file into a fresh PostgreSQL schema."""
    with production_stores(args.postgres_url, args.redis_url) as (database, _prefix):
        token = secrets.token_urlsafe(32)
        settings = Settings(
            home=home,
            database_url=database,
            api_tokens=token,
            log_level="warning",
            _env_file=None,  # type: ignore[call-arg]
        )
        options = IngestOptions(batch_size=args.batch_size, progress_seconds=3600)
        state = tmp / f"state-{sink}"
        expected = rows_in(data)
        if sink == "in-process":
            config = IngestConfig(source="file", data=data, state_dir=state, options=options)
            report = ingest(config, settings)
            return figures(report, expected=expected, database=database)
        port = free_port()
        env = fraudops_env(home=home, database_url=database, api_tokens=token, log_level="warning")
        log = tmp / "serve.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [harness.fraudops_command(), "serve", "--port", str(port)],
                env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_ready(server, port=port, log=log)
            config = IngestConfig(
                source="file",
                data=data,
                state_dir=state,
                service_url=f"http://127.0.0.1:{port}",
                token=token,
                options=options,
            )
            report = ingest(config, settings)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(60)
        return figures(report, expected=expected, database=database)


def run_paced(*, data: Path, home: Path, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """In process, the file replayed at a pace that averages PACED_PER_SECOND: how far the
    stored data trails the replay clock, and how long items wait from read to stored."""
    import pandas as pd  # noqa: PLC0415

    times = pd.to_datetime(pd.read_parquet(data, columns=["trans_date_trans_time"]).iloc[:, 0])
    span = (times.max() - times.min()).total_seconds()
    rows = rows_in(data)
    speed = PACED_PER_SECOND * span / rows
    behind: list[float] = []
    with production_stores(args.postgres_url, args.redis_url) as (database, _prefix):
        settings = Settings(
            home=home,
            database_url=database,
            log_level="warning",
            _env_file=None,  # type: ignore[call-arg]
        )
        config = IngestConfig(
            source="file",
            data=data,
            speed=speed,
            state_dir=tmp / "state-paced",
            options=IngestOptions(batch_size=args.batch_size, progress_seconds=1.0),
        )
        metrics = IngestMetrics()
        sampler = threading.Thread(
            target=_sample_behind, args=(metrics, behind), daemon=True, name="bench-sampler"
        )
        sampler.start()
        report = ingest(config, settings, metrics=metrics)
        result = figures(report, expected=rows, database=database)
    behind_array = np.array(behind or [0.0])
    result |= {
        "speed": round(speed, 1),
        "input_per_second": PACED_PER_SECOND,
        "behind_seconds": {
            "p50": round(float(np.percentile(behind_array, 50)), 2),
            "p99": round(float(np.percentile(behind_array, 99)), 2),
            "max": round(float(behind_array.max()), 2),
        },
    }
    return result


def _sample_behind(metrics: IngestMetrics, out: list[float]) -> None:
    """Read the ingester's `behind_seconds` gauge once a second."""
    while True:
        time.sleep(1.0)
        value = metrics.registry.get_sample_value(
            "fraudops_ingest_source_lag", {"measure": "behind_seconds"}
        )
        if value is not None:
            out.append(value)


def rows_in(data: Path) -> int:
    """Rows of the Parquet file."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    return int(pq.ParquetFile(data).metadata.num_rows)


def main() -> None:
    """Prepare, replay through each sink, print and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--train-days", type=int, default=45)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--sinks", default=",".join(SINKS))
    parser.add_argument("--no-paced", action="store_true", help="skip the paced run")
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--no-save", action="store_true", help="print only, keep the JSON")
    args = parser.parse_args()
    sinks = args.sinks.split(",")
    if unknown := set(sinks) - set(SINKS):
        sys.exit(f"unknown sinks {sorted(unknown)}; choose from {', '.join(SINKS)}")
    configure_logging(Settings(log_level="warning"))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fraudops-bench-ingest-") as folder:
        tmp = Path(folder)
        data, home, setup = prepare(tmp, args)
        print(f"setup        {rows_in(data):,} simulated transactions, trained in {setup:.0f} s",
              flush=True)  # fmt: skip
        results = {}
        for sink in sinks:
            print(f"{sink:<12} replaying into PostgreSQL", flush=True)
            results[sink] = run_sink(sink, data=data, home=home, tmp=tmp, args=args)
        paced = None
        if not args.no_paced:
            print(f"paced        in process at {PACED_PER_SECOND:,.0f}/s on average", flush=True)
            paced = run_paced(data=data, home=home, tmp=tmp, args=args)
    shown = " ".join(["python benchmarks/bench_ingest.py", *sys.argv[1:]])
    targets = {
        f"{sink}_sustained_per_second": {
            "at_least": TARGET_PER_SECOND,
            "value": figures_["sustained_per_second"],
            "pass": figures_["sustained_per_second"] >= TARGET_PER_SECOND,
        }
        for sink, figures_ in results.items()
    }
    valid = all(f["exactly_once"] for f in results.values()) and (
        paced is None or paced["exactly_once"]
    )
    result = {
        "command": shown,
        "code": harness_code(),
        "data": f"fraudops simulate --cards {args.cards} --days {args.days} --seed {args.seed}; "
        f"xgboost trained on the first {args.train_days} days; the whole file replayed",
        "batch_size": args.batch_size,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "sinks": results,
        "paced": paced,
        "targets": targets,
        "valid": valid,
        "pass": valid and all(t["pass"] for t in targets.values()),
    }
    print(f"command      {shown}")
    for sink, f in results.items():
        print(f"{sink:<12} {f['per_second']:,.0f}/s overall, {f['sustained_per_second']:,.0f}/s "
              f"sustained (slowest 10 s window), delivery p50 {f['delivery_ms']['p50']} ms "
              f"p99 {f['delivery_ms']['p99']} ms, left {f['left_in_spool']}, "
              f"exactly once: {f['exactly_once']}")  # fmt: skip
        print(f"{'':<12} 10 s windows: {f['windows_per_second']}")
    if paced is not None:
        b, d = paced["behind_seconds"], paced["delivery_ms"]
        rate, speed = paced["input_per_second"], paced["speed"]
        print(f"paced        {rate:,.0f}/s in on average (x{speed:,.0f}): behind the replay "
              f"clock p50 {b['p50']} s, p99 {b['p99']} s, max {b['max']} s; "
              f"read to stored p50 {d['p50']} ms, p99 {d['p99']} ms")  # fmt: skip
    for name, target in targets.items():
        print(f"target {name}: {target['value']} -> {'pass' if target['pass'] else 'FAIL'}")
    print("result       " + ("pass" if result["pass"] else "FAIL"))
    if not args.no_save:
        print(f"recorded     {harness.record('ingest', result)}")
    sys.exit(0 if result["pass"] else 1)


def harness_code() -> str:
    """The commit measured (bench_serve's helper)."""
    from bench_serve import code_version  # noqa: PLC0415

    return code_version()


if __name__ == "__main__":
    main()
