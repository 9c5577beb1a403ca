"""Benchmark loading a history into the warehouse: the in-process replay against the backfill.

Simulates the demo's data (`fraudops.demo.DemoPlan` defaults: 1,500 cards, 56 days, card
testing from day 38), trains the demo's champion on the first five weeks (default
parameters) and loads those five weeks, labels two days behind, into a fresh embedded home
twice: through `fraudops.ingest` with the scoring service in process (batches of 500, as the
demo did), and with `fraudops.ingest.backfill` (one vectorised pass). For each: wall
seconds, this process's CPU seconds (every thread), and the warehouse's transactions,
champion scores and labels, which must all equal the history's rows. The two run in one
process, one after the other, on the same machine state. Records
benchmarks/results/backfill.json.

    .venv/bin/python benchmarks/bench_backfill.py [--modes ingest,backfill]
"""

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

import harness
from bench_serve import code_version
from fraudops.config import Settings
from fraudops.demo import DemoPlan, _train_champion
from fraudops.features.spec import MS_PER_DAY
from fraudops.ingest.app import IngestConfig, ingest
from fraudops.ingest.backfill import backfill
from fraudops.ingest.runner import IngestOptions
from fraudops.logs import configure_logging
from fraudops.registry import MlflowRegistry
from fraudops.simulate import simulate, write_transactions
from fraudops.storage.warehouse import Warehouse

MODES = ("ingest", "backfill")


def load(mode: str, *, frame: pd.DataFrame, home: Path, plan: DemoPlan) -> dict[str, Any]:
    """Train the champion into `home`, load the history by `mode`; time, CPU and counts."""
    folder = home / "demo"
    folder.mkdir(parents=True)
    settings = Settings(home=home, _env_file=None)  # type: ignore[call-arg]
    times = pd.to_datetime(frame["trans_date_trans_time"])
    stream_start = (times.min().normalize() + pd.Timedelta(days=plan.history_days)).to_pydatetime()
    history = write_transactions(frame[times < stream_start], folder / "history.parquet")
    delay = timedelta(days=plan.label_delay_days)
    _train_champion(plan, history, stream_start - delay, folder, MlflowRegistry(settings))
    delay_ms = int(plan.label_delay_days * MS_PER_DAY)
    wall, cpu = time.perf_counter(), time.process_time()
    if mode == "ingest":
        options = IngestOptions(batch_size=500)
        config = IngestConfig(
            source="file", data=history, label_delay_ms=delay_ms, state_dir=folder / "state",
            options=options,
        )  # fmt: skip
        ingest(config, settings)
    else:
        backfill(history, settings, label_delay_ms=delay_ms)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    warehouse = Warehouse.from_settings(settings)
    with warehouse.engine.connect() as connection:
        counts = {
            table: int(connection.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608
            for table in ("transactions", "scores", "labels")
        }
    warehouse.dispose()
    rows = int((times < stream_start).sum())
    return {
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "cpu_us_per_transaction": round(cpu / rows * 1e6, 1),
        "rows": rows,
        **counts,
        "complete": all(count == rows for count in counts.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--no-save", action="store_true", help="print only, keep the JSON")
    args = parser.parse_args()
    configure_logging(Settings(log_level="warning"))
    plan = DemoPlan(trials=0)
    frame = simulate(plan.simulation())
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fraudops-bench-backfill-") as tmp:
        for mode in args.modes.split(","):
            results[mode] = load(mode, frame=frame, home=Path(tmp) / mode, plan=plan)
            print(f"{mode:9} {results[mode]}", flush=True)
    if not all(result["complete"] for result in results.values()):
        raise SystemExit("a load left transactions, scores or labels out")
    if {"ingest", "backfill"} <= results.keys():
        ratio = results["ingest"]["cpu_seconds"] / results["backfill"]["cpu_seconds"]
        print(f"CPU: the backfill takes 1/{ratio:.1f} of the in-process ingest's")
        results["ingest_over_backfill_cpu"] = round(ratio, 2)
    if not args.no_save:
        result = {
            "command": "python benchmarks/bench_backfill.py",
            "code": code_version(),
            "data": f"the demo's history: DemoPlan() simulation, first {plan.history_days} "
            f"days, labels {plan.label_delay_days:g} days behind",
            "results": results,
        }
        print(f"recorded {harness.record('backfill', result)}")


if __name__ == "__main__":
    main()
