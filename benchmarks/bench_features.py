"""Benchmark the feature engines: batch over ~1.75 M rows, online latency per transaction.

Simulates the data once, then measures each engine in a fresh child process: the batch
child loads the Parquet file with load_transactions and computes batch_features (load and
features timed separately, peak RSS from the kernel); the online child replays a ~100 k
transaction stream through features_then_update, timing every call, and checks that the
online values equal the batch ones. Writes benchmarks/results/features.json.

    .venv/bin/python benchmarks/bench_features.py [--cards 17000] [--days 60] [--no-save]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness

TARGET_ROWS = 1_750_000
TARGET_BATCH_SECONDS = 60.0
TARGET_RSS_MIB = 4_096.0
TARGET_P99_US = 100.0


def peak_rss_mib() -> float:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def simulate_to(path: Path, *, cards: int, days: int, seed: int) -> int:
    """Simulate transactions into a Parquet file; the number of rows."""
    from fraudops.simulate import SimulationConfig, simulate, write_transactions  # noqa: PLC0415

    frame = simulate(SimulationConfig(days=days, cards=cards, seed=seed))
    write_transactions(frame, path)
    return len(frame)


def batch_child(path: Path, *, delay_days: int) -> dict[str, float]:
    """Load the file and compute its batch features; times and memory."""
    from fraudops.data.profiles import SPARKOV  # noqa: PLC0415
    from fraudops.data.readers import load_transactions  # noqa: PLC0415
    from fraudops.features.batch import batch_features  # noqa: PLC0415
    from fraudops.features.spec import MS_PER_DAY, fit_feature_spec  # noqa: PLC0415

    began = time.perf_counter()
    frame = load_transactions(path, SPARKOV).frame
    load_seconds = time.perf_counter() - began
    rss_loaded = peak_rss_mib()
    began = time.perf_counter()
    spec = fit_feature_spec(frame, SPARKOV, label_delay_ms=delay_days * MS_PER_DAY)
    values = batch_features(frame, spec)
    feature_seconds = time.perf_counter() - began
    return {
        "rows": len(frame),
        "features": values.shape[1],
        "load_seconds": round(load_seconds, 2),
        "feature_seconds": round(feature_seconds, 2),
        "rss_after_load_mib": round(rss_loaded, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def online_child(path: Path, *, delay_days: int) -> dict[str, Any]:
    """Replay the stream through the online engine, timing each read + update.

    A second engine without the optional feature groups takes each transaction too (first
    and second by turns), so the cost of the groups is measured under the very same load.
    """
    import numpy as np  # noqa: PLC0415

    from fraudops.data.profiles import SPARKOV  # noqa: PLC0415
    from fraudops.data.readers import load_transactions  # noqa: PLC0415
    from fraudops.features.batch import batch_features  # noqa: PLC0415
    from fraudops.features.online import OnlineFeatureEngine, records_from_frame  # noqa: PLC0415
    from fraudops.features.spec import MS_PER_DAY, fit_feature_spec  # noqa: PLC0415

    frame = load_transactions(path, SPARKOV).frame.sort_values("event_time", kind="stable")
    spec = fit_feature_spec(frame, SPARKOV, label_delay_ms=delay_days * MS_PER_DAY)
    plain = fit_feature_spec(
        frame, SPARKOV, label_delay_ms=delay_days * MS_PER_DAY, groups=frozenset()
    )
    records = records_from_frame(frame, spec)
    labels = frame["is_fraud"].tolist()
    engine, plain_engine = OnlineFeatureEngine(spec), OnlineFeatureEngine(plain)
    online = np.empty((len(records), len(spec.names)))
    elapsed = np.empty(len(records))
    plain_elapsed = np.empty(len(records))
    clock = time.perf_counter_ns
    for row, (record, label) in enumerate(zip(records, labels, strict=True)):
        # Turn about first: the second call finds the record warm in the caches.
        if row % 2:
            began = clock()
            plain_engine.features_then_update(record, label=label)
            middle = clock()
            online[row] = engine.features_then_update(record, label=label)
            elapsed[row], plain_elapsed[row] = clock() - middle, middle - began
        else:
            began = clock()
            online[row] = engine.features_then_update(record, label=label)
            middle = clock()
            plain_engine.features_then_update(record, label=label)
            elapsed[row], plain_elapsed[row] = middle - began, clock() - middle
    micro = elapsed / 1000.0
    plain_micro = plain_elapsed / 1000.0
    steady = micro[len(micro) // 2 :]
    expected = batch_features(frame, spec)
    same = np.isclose(expected, online, rtol=1e-9, atol=1e-9, equal_nan=True)
    return {
        "features": len(spec.names),
        "feature_groups": sorted(spec.groups),
        "without_groups": {
            "features": len(plain.names),
            "p50_us": round(float(np.percentile(plain_micro, 50)), 1),
            "p99_us": round(float(np.percentile(plain_micro, 99)), 1),
            "mean_us": round(float(plain_micro.mean()), 1),
        },
        "transactions": len(records),
        "cards": int(frame["cc_num"].nunique()),
        "p50_us": round(float(np.percentile(micro, 50)), 1),
        "p99_us": round(float(np.percentile(micro, 99)), 1),
        "max_us": round(float(micro.max()), 1),
        "mean_us": round(float(micro.mean()), 1),
        "steady_p99_us": round(float(np.percentile(steady, 99)), 1),
        "parity": bool(same.all()),
    }


def run_child(mode: str, path: Path, *, delay_days: int) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and read its JSON answer."""
    command = [sys.executable, __file__, "--child", mode, "--path", str(path)]
    command += ["--delay-days", str(delay_days)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{mode} child failed:\n{result.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def main() -> None:
    """Run both benchmarks, print the figures and record them with pass/fail."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=17_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stream-cards", type=int, default=1_000)
    parser.add_argument("--stream-days", type=int, default=60)
    parser.add_argument("--delay-days", type=int, default=7)
    parser.add_argument("--no-save", action="store_true", help="print only, keep the JSON")
    parser.add_argument("--child", choices=["batch", "online"], help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from fraudops.config import Settings  # noqa: PLC0415
        from fraudops.logs import configure_logging  # noqa: PLC0415

        configure_logging(Settings(log_level="warning"))
        child = batch_child if args.child == "batch" else online_child
        print(json.dumps(child(args.path, delay_days=args.delay_days)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        big, stream = Path(tmp) / "batch.parquet", Path(tmp) / "stream.parquet"
        simulate_to(big, cards=args.cards, days=args.days, seed=args.seed)
        simulate_to(stream, cards=args.stream_cards, days=args.stream_days, seed=args.seed)
        batch = run_child("batch", big, delay_days=args.delay_days)
        online = run_child("online", stream, delay_days=args.delay_days)
    targets = {
        "rows": {"at_least": TARGET_ROWS, "pass": batch["rows"] >= TARGET_ROWS},
        "seconds": {
            "at_most": TARGET_BATCH_SECONDS,
            "pass": batch["feature_seconds"] <= TARGET_BATCH_SECONDS,
        },
        "peak_rss_mib": {"at_most": TARGET_RSS_MIB, "pass": batch["peak_rss_mib"] < TARGET_RSS_MIB},
        "online_p99_us": {"at_most": TARGET_P99_US, "pass": online["p99_us"] <= TARGET_P99_US},
        "online_parity": {"equals": True, "pass": bool(online["parity"])},
    }
    passed = all(bool(t["pass"]) for t in targets.values())
    shown = (
        f"python benchmarks/bench_features.py --cards {args.cards} --days {args.days} "
        f"--seed {args.seed} --stream-cards {args.stream_cards} --stream-days {args.stream_days} "
        f"--delay-days {args.delay_days}"
    )
    result = {
        "command": shown,
        "rows": batch["rows"],
        "seconds": batch["feature_seconds"],
        "peak_rss_mib": batch["peak_rss_mib"],
        "batch": batch,
        "online": online,
        "targets": targets,
        "pass": passed,
    }
    print(f"command            {shown}")
    print(f"batch rows         {batch['rows']:,} x {batch['features']} features")
    print(f"load seconds       {batch['load_seconds']:.2f}")
    print(
        f"feature seconds    {batch['feature_seconds']:.2f}  (target <= {TARGET_BATCH_SECONDS:.0f})"
    )
    print(f"peak RSS           {batch['peak_rss_mib']:.0f} MiB  (target < {TARGET_RSS_MIB:.0f})")
    print(f"online stream      {online['transactions']:,} transactions, {online['cards']:,} cards")
    print(f"online p50 / p99   {online['p50_us']:.1f} / {online['p99_us']:.1f} us  (p99 <= 100)")
    plain = online["without_groups"]
    print(f"  without groups   {plain['p50_us']:.1f} / {plain['p99_us']:.1f} us (same run)")
    print(f"online parity      {online['parity']}")
    print("result             " + ("pass" if passed else "FAIL"))
    if not args.no_save:
        print(f"recorded           {harness.record('features', result)}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
