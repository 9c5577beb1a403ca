"""What each optional feature group earns: time-ordered backtests with and without it.

Simulates a history with `fraudops simulate`, then runs `fraudops backtest` (train on the
weeks before, 7-day label delay, test the last full week) with no optional group, with
every group, and with every group but one, for each group. A group earns its place when
leaving it out loses average precision or card precision@100. The same is run on the
simulator's Fraud Detection Handbook columns (`--format fdh`, profile `fdh`) with no
group and with the kept ones. Records benchmarks/results/feature_gain.json; with
`--labels realistic` (labels as they arrive: analyst reviews within hours, chargebacks
7-120 days late, unreported and friendly fraud; see docs/simulator.md), the training
learns only the labels known by its moment, and the table goes to feature_gain_realistic.json.
With `--label-lag` (realistic labels) it runs instead the default groups, then no optional
group, each twice: with label windows ending at t, a label counting from its label time
(what a spec fitted on data with label times does), and with them ending the 7-day delay
before t (the rule before label times counted), recorded in label_lag_realistic.json
(label_lag_realistic_seed<N>.json for another seed).

    .venv/bin/python benchmarks/bench_feature_gain.py [--cards 2000] [--days 63]
        [--labels fixed|realistic] [--label-lag] [--seed 7] [--out feature_gain_seed11]
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

GROUPS = (
    "card_fraud_history",
    "card_merchant_novelty",
    "card_diversity",
    "card_category_amount",
    "card_hour_profile",
)
METRICS = ("average_precision", "card_precision_at_100", "roc_auc")
# Average precision a group must add (leaving it out must lose at least this) to be kept,
# unless leaving it out loses card precision@100.
MIN_GAIN = 0.002
DELAY_DAYS = "7"
DEFAULT_SEED = 7


def main() -> None:
    """Run the backtests, print the table and record it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=63)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--fraud-rate", default="0.01")
    parser.add_argument("--labels", choices=("fixed", "realistic"), default="fixed")
    parser.add_argument("--kept", help="skip the ablation: groups kept, comma-separated")
    parser.add_argument(
        "--label-lag",
        action="store_true",
        help="compare label windows ending at t with ending the delay before (realistic labels)",
    )
    parser.add_argument("--no-save", action="store_true", help="print only, keep the JSON")
    parser.add_argument(
        "--out",
        help="results name (default: feature_gain, or feature_gain_<labels>), e.g. "
        "feature_gain_seed11 for another seed's table beside the recorded one",
    )
    args = parser.parse_args()

    if args.label_lag:
        if args.labels != "realistic":
            parser.error("--label-lag needs --labels realistic (label times)")
        _compare_label_lags(args)
        return
    simulate, period = _simulation(args)
    results: dict[str, dict[str, dict[str, float]]] = {"sparkov": {}, "fdh": {}}
    commands: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # FDH files carry no label times: the Handbook columns run with fixed labels only.
        formats = ("sparkov", "fdh") if args.labels == "fixed" else ("sparkov",)
        for fmt in formats:
            subprocess.run(
                [fraudops_command(), *simulate, "--format", fmt, "--out", f"{fmt}.parquet"],
                cwd=folder,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        variants = {"none": "none", "all": ",".join(GROUPS)}
        if args.kept is None:
            variants |= {
                f"without {group}": ",".join(g for g in GROUPS if g != group) for group in GROUPS
            }
        for name, groups in variants.items():
            command = _backtest("sparkov", groups, period, args.seed)
            results["sparkov"][name] = _run(command, folder)
            commands[f"sparkov {name}"] = "fraudops " + " ".join(command)
            _print_row(f"sparkov {name}", results["sparkov"][name])
        kept = (
            [g for g in args.kept.split(",") if g]
            if args.kept is not None
            else [g for g in GROUPS if _earns(results["sparkov"], g)]
        )
        fdh_variants = {"none": "none", "kept": ",".join(kept) or "none"}
        for name, groups in fdh_variants.items() if "fdh" in formats else ():
            command = _backtest("fdh", groups, period, args.seed)
            results["fdh"][name] = _run(command, folder)
            commands[f"fdh {name}"] = "fraudops " + " ".join(command)
            _print_row(f"fdh {name}", results["fdh"][name])
    gains = {
        group: round(_gain(results["sparkov"], group), 4)
        for group in GROUPS
        if f"without {group}" in results["sparkov"]
    }
    print(f"average precision lost without each group: {gains}")
    print(f"kept: {kept}")
    if not args.no_save:
        data = "fraudops " + " ".join(simulate) + " --format {sparkov,fdh} --out {format}.parquet"
        default_name = "feature_gain" if args.labels == "fixed" else f"feature_gain_{args.labels}"
        path = record(
            args.out or default_name,
            {
                "command": " ".join(["python benchmarks/bench_feature_gain.py", *sys.argv[1:]]),
                "data": data,
                "min_gain": MIN_GAIN,
                "commands": commands,
                "results": results,
                "average_precision_lost_without": gains,
                "kept": kept,
            },
        )
        print(f"recorded {path}")


def _compare_label_lags(args: argparse.Namespace) -> None:
    """The default groups, then no optional group, each with label windows ending at t and
    ending the delay before t, on the same realistic simulation and test week; print and
    record the rows."""
    simulate, period = _simulation(args)
    lags = {
        "labels from label_time (windows end at t)": [],
        "windows end the delay before t (old rule)": ["--label-window-lag-days", DELAY_DAYS],
    }
    results: dict[str, dict[str, dict[str, float]]] = {"default groups": {}, "no group": {}}
    commands: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run(
            [fraudops_command(), *simulate, "--format", "sparkov", "--out", "sparkov.parquet"],
            cwd=folder,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for groups, chosen in (("default groups", None), ("no group", "none")):
            for name, lag in lags.items():
                command = [*_backtest("sparkov", chosen, period, args.seed), *lag]
                results[groups][name] = _run(command, folder)
                commands[f"{groups}, {name}"] = "fraudops " + " ".join(command)
                _print_row(f"{groups}, {name}", results[groups][name])
    new, old = lags
    earned = {
        groups: round(rows[new]["average_precision"] - rows[old]["average_precision"], 4)
        for groups, rows in results.items()
    }
    print(f"average precision earned by labels from their label time: {earned}")
    if not args.no_save:
        name = "label_lag_realistic" + ("" if args.seed == DEFAULT_SEED else f"_seed{args.seed}")
        path = record(
            name,
            {
                "command": " ".join(["python benchmarks/bench_feature_gain.py", *sys.argv[1:]]),
                "data": "fraudops "
                + " ".join(simulate)
                + " --format sparkov --out sparkov.parquet",
                "groups": "default groups: fit_feature_spec's default; no group: none",
                "commands": commands,
                "results": results,
                "average_precision_earned": earned,
            },
        )
        print(f"recorded {path}")


def _simulation(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The `fraudops simulate` arguments (without format and output) and the test period."""
    start = date(2024, 1, 1)
    test_end = start + timedelta(days=args.days - 1)
    test_start = test_end - timedelta(days=6)
    simulate = [
        "simulate", "--cards", str(args.cards), "--days", str(args.days), "--seed",
        str(args.seed), "--start", start.isoformat(), "--fraud-rate", args.fraud_rate,
        "--labels", args.labels,
    ]  # fmt: skip
    period = ["--test-start", test_start.isoformat(), "--test-end", test_end.isoformat()]
    return simulate, period


def _backtest(profile: str, groups: str | None, period: list[str], seed: int) -> list[str]:
    """A `fraudops backtest` of one profile's file with these feature groups (None: the
    default ones)."""
    chosen = [] if groups is None else ["--feature-groups", groups]
    return [
        "backtest", "--data", f"{profile}.parquet", "--profile", profile, *period,
        "--delay-days", DELAY_DAYS, "--model", "xgboost", "--trials", "0", "--seed", str(seed),
        *chosen, "--scores-out", "scores.parquet", "--report-out", "report.json",
    ]  # fmt: skip


def _run(command: list[str], folder: Path) -> dict[str, float]:
    """Run a backtest; its headline test metrics and its wall time."""
    started = time.perf_counter()
    subprocess.run(
        [fraudops_command(), *command], cwd=folder, check=True, stdout=subprocess.DEVNULL
    )
    metrics = json.loads((folder / "report.json").read_text())["metrics"]
    return {name: round(metrics[name], 4) for name in METRICS} | {
        "test_transactions": metrics["transactions"],
        "test_frauds": metrics["frauds"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def _gain(results: dict[str, dict[str, float]], group: str, metric: str = METRICS[0]) -> float:
    """A metric with every group minus the same without this one."""
    without = results.get(f"without {group}")
    if without is None:
        return 0.0
    return results["all"][metric] - without[metric]


def _earns(results: dict[str, dict[str, float]], group: str) -> bool:
    """Leaving the group out loses MIN_GAIN of average precision, or card precision@100."""
    return _gain(results, group) >= MIN_GAIN or _gain(results, group, "card_precision_at_100") > 0


def _print_row(name: str, metrics: dict[str, float]) -> None:
    """One line of the table as it comes."""
    figures = "  ".join(f"{metric} {metrics[metric]:.4f}" for metric in METRICS)
    print(f"{name:<36} {figures}  ({metrics['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
