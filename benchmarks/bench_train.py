"""Benchmark `fraudops train`: XGBoost with Optuna tuning on about a million transactions.

Simulates the data once, then runs the real command (load, features, tuning, fit,
threshold, report, MLflow registration into a fresh FRAUDOPS_HOME) in a child process and
records wall time and peak memory in benchmarks/results/train.json.

    .venv/bin/python benchmarks/bench_train.py [--cards 10000] [--days 60] [--trials 15]
"""

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from harness import fraudops_command, record, run_once

TARGET_SECONDS = 300.0


def main() -> None:
    """Run the benchmark, print the figures and record them with pass/fail."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--no-save", action="store_true", help="print only, keep the JSON")
    args = parser.parse_args()

    fraudops = fraudops_command()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "history.parquet"
        subprocess.run(
            [fraudops, "simulate", "--cards", str(args.cards), "--days", str(args.days),
             "--seed", str(args.seed), "--out", str(data)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        rows = pq.read_metadata(data).num_rows
        command = [
            fraudops, "train", "--data", str(data), "--profile", "sparkov",
            "--delay-days", "7", "--trials", str(args.trials), "--seed", str(args.seed),
        ]  # fmt: skip
        home = Path(tmp) / "home"
        seconds, peak = run_once(command, env={"FRAUDOPS_HOME": str(home)})
        metrics = registered_metrics(home / "mlflow.db")
    passed = seconds <= TARGET_SECONDS
    shown = ["fraudops", *command[1:3], "history.parquet", *command[4:]]
    result = {
        "command": " ".join(shown),
        "data": f"fraudops simulate --cards {args.cards} --days {args.days} --seed {args.seed}",
        "rows": rows,
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak, 1),
        "stages_seconds": {k: round(v, 1) for k, v in metrics.items() if k.startswith("seconds_")},
        "validation_average_precision": round(metrics["validation_average_precision"], 4),
        "tuning_trials": int(metrics["tuning_trials"]),
        "targets": {"seconds": {"at_most": TARGET_SECONDS, "pass": passed}},
        "pass": passed,
    }
    print(json.dumps(result, indent=2))
    if not args.no_save:
        print(f"recorded {record('train', result)}")
    sys.exit(0 if passed else 1)


def registered_metrics(database: Path) -> dict[str, float]:
    """The metrics the training run logged, read from the MLflow SQLite store."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT key, value FROM latest_metrics").fetchall()
    return {str(key): float(value) for key, value in rows}


if __name__ == "__main__":
    main()
