"""Benchmark `fraudops simulate`: wall time and peak memory for about a million rows.

Runs the real command in a child process, reads its peak resident memory from the
kernel's accounting of children, and writes benchmarks/results/simulate.json.

    .venv/bin/python benchmarks/bench_simulate.py [--cards 10000] [--days 60] [--repeat 1]
"""

import argparse
import json
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from harness import fraudops_command, machine, run_once

RESULTS = Path(__file__).parent / "results" / "simulate.json"
TARGET_ROWS = 1_000_000
TARGET_SECONDS = 60.0
TARGET_RSS_MIB = 2_048.0


def main() -> None:
    """Run the benchmark, print the figures and record them with pass/fail against targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="runs; the median is recorded")
    parser.add_argument("--no-save", action="store_true", help="print only, keep the JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "simulated.parquet"
        command = [
            fraudops_command(), "simulate", "--cards", str(args.cards), "--days", str(args.days),
            "--seed", str(args.seed), "--out", str(out),
        ]  # fmt: skip
        runs = [run_once(command) for _ in range(args.repeat)]
        rows = pq.read_metadata(out).num_rows
    seconds = statistics.median(s for s, _ in runs)
    peak = max(m for _, m in runs)
    shown = ["fraudops", *command[1:-1], "simulated.parquet"]
    targets = {
        "rows": {"at_least": TARGET_ROWS, "pass": rows >= TARGET_ROWS},
        "seconds": {"at_most": TARGET_SECONDS, "pass": seconds <= TARGET_SECONDS},
        "peak_rss_mib": {"at_most": TARGET_RSS_MIB, "pass": peak < TARGET_RSS_MIB},
    }
    passed = all(bool(t["pass"]) for t in targets.values())
    record = {
        "benchmark": "simulate",
        "command": " ".join(shown),
        "rows": rows,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak, 1),
        "rows_per_second": round(rows / seconds),
        "runs": [{"seconds": round(s, 2), "peak_rss_mib": round(m, 1)} for s, m in runs],
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "targets": targets,
        "pass": passed,
    }
    print(f"command          {record['command']}")
    print(f"rows             {rows:,}")
    print(f"seconds          {seconds:.2f}  (target <= {TARGET_SECONDS:.0f})")
    print(f"peak RSS         {peak:.0f} MiB  (target < {TARGET_RSS_MIB:.0f})")
    print(f"rows per second  {rows / seconds:,.0f}")
    print("result           " + ("pass" if passed else "FAIL"))
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"recorded         {RESULTS}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
