"""fraudops on the Fraud Detection Handbook's simulated data, against its published baselines.

Regenerates the Handbook's data set from its published algorithm (benchmarks/handbook_data.py;
the published file itself is not downloaded), then runs `fraudops backtest` with the
Handbook's protocol (chapter 3.3 "Baseline fraud detection system"): train on the week
2018-07-25 .. 2018-07-31, a 7-day delay, test on 2018-08-08 .. 2018-08-14; `--no-holdout`,
as the Handbook has no validation period. It runs with no optional feature group and with
the default ones. Each is judged twice: on every test transaction (the backtest's own
report), and on the Handbook's test set, which leaves out the cards already known to be
compromised (a fraud in the training week or, for each test day, up to that day minus the
delay), with the Handbook's card precision@100 (a card detected one day leaves the next
days' pools). The Handbook's baselines on its test set: random forest average precision
0.658 and card precision@100 0.287 (the "0.66 / 0.29"), XGBoost 0.639 / 0.273, logistic
regression 0.606 / 0.291. Records benchmarks/results/handbook.json.

    .venv/bin/python benchmarks/bench_handbook.py [--models xgboost,random_forest]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudops.features.spec import DEFAULT_FEATURE_GROUPS
from fraudops.training.metrics import average_precision, card_precision_at_k, roc_auc
from handbook_data import check_against_handbook, handbook_transactions
from harness import fraudops_command, record

TRAIN_START = "2018-07-25"
TEST_START = "2018-08-08"
TEST_END = "2018-08-14"
DELAY_DAYS = 7
# Chapter 3.3's test-set table (Chapter_3_GettingStarted/BaselineModeling.ipynb).
HANDBOOK_BASELINES = {
    "random_forest": {"average_precision": 0.658, "card_precision_at_100": 0.287, "roc_auc": 0.867},
    "xgboost": {"average_precision": 0.639, "card_precision_at_100": 0.273, "roc_auc": 0.862},
    "logreg": {"average_precision": 0.606, "card_precision_at_100": 0.291, "roc_auc": 0.871},
}


def main() -> None:
    """Generate, backtest with and without the default groups, print and record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="xgboost,random_forest")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-save", action="store_true", help="print only, keep the JSON")
    args = parser.parse_args()

    started = time.perf_counter()
    frame = handbook_transactions()
    generation = {
        "seconds": round(time.perf_counter() - started, 1),
        "against_handbook": check_against_handbook(frame),
    }
    print(f"generated in {generation['seconds']:.0f} s: {generation['against_handbook']}")
    variants = {"none": "none", "default": ",".join(sorted(DEFAULT_FEATURE_GROUPS))}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    commands: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame.to_parquet(folder / "handbook.parquet", index=False)
        handbook_test = handbook_test_rows(frame)
        for model in args.models.split(","):
            results[model] = {}
            for name, groups in variants.items():
                command = _backtest(model, groups, args.seed)
                commands[f"{model} {name}"] = "fraudops " + " ".join(command)
                results[model][name] = _run(command, folder, frame, handbook_test)
                _print_row(f"{model} {name}", results[model][name])
    if not args.no_save:
        path = record(
            "handbook",
            {
                "command": " ".join(["python benchmarks/bench_handbook.py", *sys.argv[1:]]),
                "data": "benchmarks/handbook_data.py: the Handbook's generator re-implemented "
                "(5,000 customers, 10,000 terminals, 183 days from 2018-04-01, r = 5), "
                "written to handbook.parquet in the fdh profile's columns",
                "generation": generation,
                "protocol": {
                    "train": f"{TRAIN_START} .. 2018-07-31",
                    "delay_days": DELAY_DAYS,
                    "test": f"{TEST_START} .. {TEST_END}",
                    "handbook_test_set": "test days without the cards known compromised "
                    "by the day minus the delay (the Handbook's get_train_test_set)",
                },
                "handbook_baselines": HANDBOOK_BASELINES,
                "commands": commands,
                "results": results,
            },
        )
        print(f"recorded {path}")


def handbook_test_rows(frame: pd.DataFrame) -> np.ndarray:
    """Test-week rows whose card was not yet known compromised, as the Handbook selects them."""
    days = frame["TX_TIME_DAYS"].to_numpy()
    cards = frame["CUSTOMER_ID"].to_numpy()
    fraud = frame["TX_FRAUD"].to_numpy() == 1
    when = frame["TX_DATETIME"]
    train_rows = (when >= pd.Timestamp(TRAIN_START)) & (
        when < pd.Timestamp(TRAIN_START) + pd.Timedelta(days=7)
    )
    first_day = int(days[train_rows.to_numpy()].min())
    known = set(cards[train_rows.to_numpy() & fraud].tolist())
    keep = np.zeros(len(frame), dtype=np.bool_)
    for offset in range(7):
        # The frauds of the day `delay` before this test day are now known, with all before.
        reported_day = first_day + 7 + offset - 1
        known |= set(cards[(days == reported_day) & fraud].tolist())
        test_day = days == first_day + 7 + DELAY_DAYS + offset
        keep |= test_day & ~np.isin(cards, list(known))
    return keep


def _backtest(model: str, groups: str, seed: int) -> list[str]:
    """A `fraudops backtest` with the Handbook's periods and these feature groups."""
    return [
        "backtest", "--data", "handbook.parquet", "--profile", "fdh",
        "--train-start", TRAIN_START, "--test-start", TEST_START, "--test-end", TEST_END,
        "--delay-days", str(DELAY_DAYS), "--no-holdout", "--model", model, "--trials", "0",
        "--seed", str(seed), "--feature-groups", groups,
        "--scores-out", "scores.parquet", "--report-out", "report.json",
    ]  # fmt: skip


def _run(
    command: list[str], folder: Path, frame: pd.DataFrame, handbook_test: np.ndarray
) -> dict[str, Any]:
    """Run a backtest; its report's metrics and the Handbook's on its own test set."""
    started = time.perf_counter()
    subprocess.run(
        [fraudops_command(), *command], cwd=folder, check=True, stdout=subprocess.DEVNULL
    )
    seconds = round(time.perf_counter() - started, 1)
    report = json.loads((folder / "report.json").read_text())["metrics"]
    scores = pd.read_parquet(folder / "scores.parquet")
    scored = frame.merge(scores, on="TRANSACTION_ID", how="inner", validate="one_to_one")
    chosen = scored[np.isin(scored["TRANSACTION_ID"], frame.loc[handbook_test, "TRANSACTION_ID"])]
    labels = chosen["TX_FRAUD"].to_numpy()
    values = chosen["score"].to_numpy(dtype=np.float64)
    cards = card_precision_at_k(
        days=chosen["TX_TIME_DAYS"].to_numpy(),
        cards=chosen["CUSTOMER_ID"].to_numpy(),
        scores=values,
        labels=labels,
        k=100,
    )
    return {
        "all_test_transactions": {
            "average_precision": round(report["average_precision"], 4),
            "card_precision_at_100": round(report["card_precision_at_100"], 4),
            "roc_auc": round(report["roc_auc"], 4),
            "transactions": report["transactions"],
            "frauds": report["frauds"],
        },
        "handbook_test_set": {
            "average_precision": round(average_precision(labels, values), 4),
            "card_precision_at_100": round(cards.mean, 4),
            "roc_auc": round(roc_auc(labels, values), 4),
            "transactions": len(chosen),
            "frauds": int(labels.sum()),
        },
        "seconds": seconds,
    }


def _print_row(name: str, metrics: dict[str, Any]) -> None:
    """One line per variant: the Handbook test set's figures, then all test transactions'."""
    ours = metrics["handbook_test_set"]
    every = metrics["all_test_transactions"]
    print(
        f"{name:<24} handbook test set: AP {ours['average_precision']:.3f} "
        f"CP@100 {ours['card_precision_at_100']:.3f} AUC {ours['roc_auc']:.3f} | "
        f"all test transactions: AP {every['average_precision']:.3f} "
        f"CP@100 {every['card_precision_at_100']:.3f}  ({metrics['seconds']:.0f} s)",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
