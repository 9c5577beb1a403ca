"""Benchmark the in-process replay: CPU per transaction of `fraudops ingest` with labels.

Simulates cards, trains an XGBoost champion (`fraudops simulate`, `fraudops train
--trials 0`), then, in a fresh child per run, replays the whole file through
`fraudops.ingest` with a ScoringService in the process on the embedded default (SQLite
warehouse, in-process feature state), labels `--label-delay-days` behind, batches of 500:
the demo's backfill. Reports the child's CPU seconds (user + sys, getrusage) per 1,000
transactions, the wall time, and a digest of the stored rows (scores, features, decisions,
labels) that must not change when the code gets faster. With --profile, the run is sampled
by py-spy and the samples are shared out over the scoring path's stages.

    .venv/bin/python benchmarks/bench_replay_cpu.py [--runs 3] [--profile] [--label before]
"""

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import harness

# Stages of the scoring path, by the first matching frame from the leaf up (the most
# specific first); a sample matching none is "other".
STAGES = (
    ("labels: add_label (online state)", ("OnlineFeatureEngine.add_label",)),
    ("labels: re-read records", ("TransactionTables.records_of",)),
    ("labels: settle wait", ("ScoringService.settle ",)),
    ("labels: warehouse SQL", ("TransactionTables.record_labels",)),
    ("labels: rest", ("ScoringService.record_labels",)),
    ("drain thread (warehouse inserts)", ("JournaledWriter._drain",)),
    ("journal thread (encode, fdatasync)", ("JournaledWriter._journal_loop",)),
    ("score: admission", ("admit (",)),
    ("score: online features", ("ScoringService._features",)),
    ("score: model", ("FastModel.",)),
    ("score: store (record, journal submit)", ("ScoringService._store",)),
    ("score: rest", ("ScoringService.score_many",)),
    ("ingest: waiting for stored", ("_Storing.result",)),
    ("ingest: source and spool", ("sources.py", "spool.py")),
    ("start-up (imports, model, state)", ("_find_and_load", "ScoringService.start")),
)

# Frames (leaves) where a thread waits: a lock, a queue, a sleep.
IDLE = (
    "Condition.wait ",
    "Event.wait ",
    "Thread.join ",
    "Thread._wait_for_tstate_lock ",
    "TMonitor.run ",
    "GroupCommitWriter._run ",
    "_waiting_group ",
    "ShadowScorer._run ",
)


def prepare(tmp: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """Simulate and train once; the data file and the trained home (kept as a template)."""
    fraudops = harness.fraudops_command()
    env = {**os.environ, "FRAUDOPS_LOG_LEVEL": "warning", "MLFLOW_DISABLE_TELEMETRY": "true"}
    data = tmp / "simulated.parquet"
    home = tmp / "home"
    if data.exists() and (home / ".trained").exists():
        return data, home
    subprocess.run(
        [fraudops, "simulate", "--cards", str(args.cards), "--days", str(args.days),
         "--seed", str(args.seed), "--start", "2024-01-01", "--out", str(data)],
        env=env, cwd=tmp, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        [fraudops, "train", "--data", str(data), "--profile", "sparkov",
         "--train-end", args.train_end, "--model", "xgboost", "--trials", "0",
         "--delay-days", "7", "--seed", str(args.seed)],
        env={**env, "FRAUDOPS_HOME": str(home)}, cwd=tmp, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    (home / ".trained").touch()
    return data, home


def child(data: Path, home: Path, label_delay_days: float, out: Path) -> None:
    """One replay in this process: CPU, wall and the stored rows' digest to `out`."""
    from fraudops.config import Settings  # noqa: PLC0415
    from fraudops.ingest.app import IngestConfig, ingest  # noqa: PLC0415
    from fraudops.ingest.runner import IngestOptions  # noqa: PLC0415
    from fraudops.logs import configure_logging  # noqa: PLC0415

    settings = Settings(home=home, log_level="warning", _env_file=None)  # type: ignore[call-arg]
    configure_logging(settings)
    config = IngestConfig(
        source="file",
        data=data,
        label_delay_ms=int(label_delay_days * 86_400_000),
        state_dir=home / "backfill",
        options=IngestOptions(batch_size=500),
    )
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    report = ingest(config, settings)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = {
        "transactions": report.stored,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "digest": stored_digest(settings.resolved_database_url),
    }
    out.write_text(json.dumps(result), encoding="utf-8")


def stored_digest(url: str) -> dict[str, Any]:
    """Counts and a hash of what the warehouse holds (no times of storing)."""
    import sqlalchemy as sa  # noqa: PLC0415

    engine = sa.create_engine(url)
    digest = hashlib.sha256()
    counts = {}
    queries = {
        # Not the card id, the fingerprint nor the record's cc_num: keyed by each warehouse's
        # own random card-hash key.
        "transactions": "SELECT trans_num, merchant, category, amount, event_time, record, "
        "card_last4 FROM transactions ORDER BY trans_num",
        "scores": "SELECT trans_num, model_name, model_version, role, fraud_probability, "
        "decision, reasons, features FROM scores ORDER BY trans_num, role, model_version",
        "labels": "SELECT trans_num, is_fraud, label_time, source FROM labels ORDER BY trans_num",
        "label_events": "SELECT trans_num, is_fraud, label_time, source FROM label_events "
        "ORDER BY id",
    }
    with engine.connect() as connection:
        for table, query in queries.items():
            rows = connection.execute(sa.text(query)).all()
            counts[table] = len(rows)
            for row in rows:
                values = list(row)
                if table == "transactions":
                    values[5] = {k: v for k, v in json.loads(values[5]).items() if k != "cc_num"}
                digest.update(repr(values).encode())
    engine.dispose()
    return {"counts": counts, "sha256": digest.hexdigest()}


def run(data: Path, template: Path, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One replay in a fresh child on a fresh copy of the trained home."""
    home = tmp / "run-home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(template, home)
    out = tmp / "run.json"
    command = [sys.executable, __file__, "--child", str(data), str(home), str(out),
               "--label-delay-days", str(args.label_delay_days)]  # fmt: skip
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "MLFLOW_DISABLE_TELEMETRY": "true"}
    stages = None
    if args.profile:
        raw = tmp / "profile.txt"
        subprocess.run(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw",
             "--rate", "200", "--threads", "--output", str(raw), "--", *command],
            env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        stages = stage_shares(raw)
    else:
        subprocess.run(command, env=env, check=True)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    if stages is not None:
        result["stages"] = stages
    return result


def stage_shares(raw: Path) -> dict[str, float]:
    """Shares of py-spy's samples by stage of the scoring path (threads blocked left out:
    py-spy cannot tell a thread blocked in C from one running)."""
    counts: Counter[str] = Counter()
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        if leaf.startswith(IDLE) or any(f.startswith("stored_digest ") for f in frames):
            continue  # a thread blocked, or the benchmark's own check
        counts[_stage(frames)] += int(number)
    total = sum(counts.values()) or 1
    return {stage: round(100 * n / total, 1) for stage, n in counts.most_common()}


def _stage(frames: list[str]) -> str:
    """The stage a sample's stack belongs to."""
    for frame in reversed(frames):
        for stage, marks in STAGES:
            if any(mark in frame for mark in marks):
                return stage
    return "other"


def main() -> None:
    """Prepare once, run the replay `--runs` times, print and record the figures."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        parser = argparse.ArgumentParser()
        parser.add_argument("data", type=Path)
        parser.add_argument("home", type=Path)
        parser.add_argument("out", type=Path)
        parser.add_argument("--label-delay-days", type=float, default=2.0)
        args = parser.parse_args(sys.argv[2:])
        child(args.data, args.home, args.label_delay_days, args.out)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1_500)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train-end", default="2024-01-28")
    parser.add_argument("--label-delay-days", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="one more run under py-spy")
    parser.add_argument("--label", default="after", help="name of this measurement")
    parser.add_argument("--work", type=Path, default=None, help="keep the prepared data here")
    parser.add_argument("--no-save", action="store_true", help="print only, keep the JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fraudops-bench-replay-") as folder:
        tmp = args.work or Path(folder)
        tmp.mkdir(parents=True, exist_ok=True)
        data, template = prepare(tmp, args)
        runs = [run(data, template, tmp, argparse.Namespace(**{**vars(args), "profile": False}))
                for _ in range(args.runs)]  # fmt: skip
        profiled = run(data, template, tmp, args) if args.profile else None
        if not runs and profiled is not None:  # its CPU includes being sampled
            runs = [profiled]
    per_thousand = sorted(1000 * r["cpu_seconds"] / r["transactions"] for r in runs)
    digests = {r["digest"]["sha256"] for r in runs}
    shown = " ".join(["python benchmarks/bench_replay_cpu.py", *sys.argv[1:]])
    result = {
        "command": shown,
        "code": _code_version(),
        "label": args.label,
        "data": f"fraudops simulate --cards {args.cards} --days {args.days} --seed {args.seed}; "
        f"xgboost (--trials 0) trained to {args.train_end}; the whole file ingested in "
        f"process (SQLite, in-memory state), batches of 500, labels "
        f"{args.label_delay_days:g} days behind",
        "transactions": runs[0]["transactions"],
        "cpu_seconds_per_1000": {
            "runs": [round(x, 3) for x in per_thousand],
            "median": round(per_thousand[len(per_thousand) // 2], 3),
        },
        "wall_seconds": [round(r["wall_seconds"], 1) for r in runs],
        "stored": runs[0]["digest"],
        "same_rows_every_run": len(digests) == 1,
        "stages_percent": None if profiled is None else profiled["stages"],
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))
    if not args.no_save:
        print(f"recorded     {harness.record(f'replay_cpu_{args.label}', result)}")


def _code_version() -> str:
    """The commit measured (bench_serve's helper)."""
    from bench_serve import code_version  # noqa: PLC0415

    return code_version()


if __name__ == "__main__":
    main()
