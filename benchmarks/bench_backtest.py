"""Backtest quality on simulated data: 7-day label delay, 7-day test week, three models.

Simulates a history with `fraudops simulate`, then runs `fraudops backtest` for each model
type on the last full week, and records each model's test metrics in
benchmarks/results/backtest.json (the figures the README quotes).

    .venv/bin/python benchmarks/bench_backtest.py [--cards 5000] [--days 91] [--trials 15]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from harness import fraudops_command, record

HEADLINE = (
    "average_precision",
    "card_precision_at_100",
    "card_precision_at_100_best_possible",
    "roc_auc",
    "precision",
    "recall",
    "f1",
)


def main() -> None:
    """Run the backtests, print a table and record the metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=91)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--trials", type=int, default=15, help="tuning trials for xgboost")
    parser.add_argument("--models", default="xgboost,random_forest,logreg")
    parser.add_argument("--no-save", action="store_true", help="print only, keep the JSON")
    args = parser.parse_args()

    start = date(2024, 1, 1)
    test_end = start + timedelta(days=args.days - 1)
    test_start = test_end - timedelta(days=6)
    fraudops = fraudops_command()
    simulate = [
        "simulate", "--cards", str(args.cards), "--days", str(args.days),
        "--seed", str(args.seed), "--start", start.isoformat(),
    ]  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    commands: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "history.parquet"
        subprocess.run(
            [fraudops, *simulate, "--out", str(data)], check=True, stdout=subprocess.DEVNULL
        )
        for model in args.models.split(","):
            trials = args.trials if model == "xgboost" else 0
            report = Path(tmp) / f"{model}.json"
            backtest = [
                "backtest", "--data", "history.parquet", "--profile", "sparkov",
                "--test-start", test_start.isoformat(), "--test-end", test_end.isoformat(),
                "--delay-days", "7", "--model", model, "--trials", str(trials),
                "--seed", str(args.seed), "--scores-out", f"{model}.parquet",
                "--report-out", f"{model}.json",
            ]  # fmt: skip
            started = time.perf_counter()
            subprocess.run([fraudops, *backtest], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
            metrics = json.loads(report.read_text())["metrics"]
            results[model] = {name: round(metrics[name], 4) for name in HEADLINE} | {
                "test_transactions": metrics["transactions"],
                "test_frauds": metrics["frauds"],
                "seconds": round(time.perf_counter() - started, 1),
            }
            commands[model] = "fraudops " + " ".join(backtest)
    print(f"{'model':<14}" + "".join(f"{name[:22]:>24}" for name in HEADLINE))
    for model, metrics in results.items():
        print(f"{model:<14}" + "".join(f"{metrics[name]:>24.4f}" for name in HEADLINE))
    if not args.no_save:
        path = record(
            "backtest",
            {
                "data": "fraudops " + " ".join(simulate) + " --out history.parquet",
                "commands": commands,
                "results": results,
            },
        )
        print(f"recorded {path}")


if __name__ == "__main__":
    sys.exit(main())
