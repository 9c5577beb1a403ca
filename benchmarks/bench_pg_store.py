"""Benchmark storing scored transactions in PostgreSQL by group size: client and server CPU.

The scoring service's drain stores what the journal holds in groups: large while the
warehouse catches up, a few transactions at a time at a few hundred requests a second.
This stores simulated transactions, each with a champion and a challenger score of 58
features, through `Warehouse.store_scored_batch` in groups of 1, 5, 20, 100 and 500 (a
fresh schema of the real server, dropped after), and reports per transaction the wall
time, this process's CPU, and the CPU of every PostgreSQL server process on the machine
(from /proc, as benchmarks/profile_serve.py counts it). Records
benchmarks/results/pg_store.json under `--label` (labels kept side by side).

    .venv/bin/python benchmarks/bench_pg_store.py [--label after] [--groups 1,5,20,100,500]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

import argparse
import json
import logging
import resource
import secrets
import time
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog

import harness
from bench_serve import code_version
from fraudops.simulate import SimulationConfig, simulate
from fraudops.storage import ScoreRecord, Warehouse
from fraudops.storage.base import ScoredTransaction
from profile_serve import store_cpu_seconds

FEATURES = {f"feature_{i}": i / 7 for i in range(58)}  # as many as the demo's champion


def score(version: str) -> ScoreRecord:
    """A score of 58 features by model version `version`."""
    return ScoreRecord(
        model_name="fraud-detector",
        model_version=version,
        fraud_probability=0.4,
        decision="review",
        scored_at=datetime(2026, 3, 1),
        features=FEATURES,
    )


def process_cpu() -> float:
    """This process's user + system CPU seconds (every thread)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def measure(warehouse: Warehouse, items: list[ScoredTransaction], group: int) -> dict[str, Any]:
    """Store `items` in groups of `group`; per-transaction figures in microseconds."""
    server = store_cpu_seconds()["postgresql"]
    client = process_cpu()
    began = time.perf_counter()
    for start in range(0, len(items), group):
        warehouse.store_scored_batch(items[start : start + group])
    wall = time.perf_counter() - began
    client = process_cpu() - client
    server = store_cpu_seconds()["postgresql"] - server
    per = 1e6 / len(items)
    return {
        "group": group,
        "transactions": len(items),
        "wall_us": round(wall * per, 1),
        "client_cpu_us": round(client * per, 1),
        "postgresql_cpu_us": round(server * per, 1),
        "total_cpu_us": round((client + server) * per, 1),
    }


def main() -> None:
    """Parse the options, run each group size on its own transactions, record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after")
    parser.add_argument("--groups", default="1,5,20,100,500")
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    groups = [int(group) for group in args.groups.split(",")]
    server = sa.make_url(args.database_url)
    schema = f"bench_pg_store_{secrets.token_hex(4)}"
    admin = sa.create_engine(server)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = server.update_query_dict({"options": f"-csearch_path={schema}"})
    warehouse = Warehouse(url.render_as_string(hide_password=False))
    try:
        warehouse.migrate()
        frame = simulate(SimulationConfig(days=20, cards=1_000, seed=1))
        records = frame.drop(columns=["is_fraud", "fraud_scenario"]).to_dict(orient="records")
        results = []
        used = 0
        for group in groups:
            count = 3_000 if group < 50 else 6_000  # enough groups of every size
            items = [
                ScoredTransaction(transaction=r, score=score("1"), shadow=score("2"))
                for r in records[used : used + count]
            ]
            used += count
            results.append(measure(warehouse, items, group))
            print(json.dumps(results[-1]), flush=True)
    finally:
        warehouse.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    path = harness.RESULTS_DIR / "pg_store.json"
    recorded = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    runs = dict(recorded.get("runs", {}))
    runs[args.label] = {
        "command": f"python benchmarks/bench_pg_store.py --label {args.label}",
        "code": code_version(),
        "groups": results,
    }
    print(f"recorded {harness.record('pg_store', {'runs': runs})}")


if __name__ == "__main__":
    main()
