"""Fill a fresh PostgreSQL warehouse with a month of stored, scored transactions (1 M).

    .venv/bin/python benchmarks/fill_warehouse.py [--rows 1000000] [--database fraudops_bench]
        [--no-save]

For the console benchmark (bench_console.py) and EXPLAIN: the warehouse's own tables, made by
its migrations, hold what a month of serving leaves behind. The simulator makes the month's
transactions (~20,000 cards, ~2,000 merchants); each is protected exactly as the service
stores it (the warehouse's own row: card as a keyed hash, last four digits, fingerprint);
its champion score follows the decision mix of production (~0.4 % of legitimate
transactions and ~85 % of frauds are reviewed or declined: 1-2 % alerts), champion v1 until
day 18 and v2 after, and the last ten days carry a challenger's shadow score; frauds get a
chargeback label 1-10 days later and 60 % of the alerts an analyst's label within a day
(labels after the month's end not yet arrived). Rows go in with COPY, two processes at
once, before the console's indexes (migration 0006) are built; both times are reported.
The database is dropped and created again. The timings go to results/warehouse_fill.json.
"""

import argparse
import hashlib
import itertools
import multiprocessing
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
import psycopg
import sqlalchemy as sa

from fraudops.data.personal import PersonalData
from fraudops.simulate import SimulationConfig, simulate
from fraudops.storage import Warehouse
from harness import record

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# A fixed card-hash key: the data are simulated, and a reader with the same key (the
# benchmark's FRAUDOPS_CARD_HASH_KEY) finds the same card ids.
CARD_KEY = hashlib.sha256(b"fraudops benchmark warehouse").hexdigest()
DAYS = 30
CARDS_PER_MILLION = 20_000
MODEL = "fraud-detector"
PROMOTION_DAY = 18
SHADOW_DAYS = 10
WORKERS = 2
FEATURES = ("amount", "amount_ratio_card_30d", "card_tx_1h", "card_tx_24h", "merchant_fraud_7d")
REASON_TEXTS = {
    "amount_ratio_card_30d": "amount {:.1f}x the card's 30-day average",
    "card_tx_1h": "{:.0f} transactions on the card in the last hour",
    "merchant_fraud_7d": "merchant's fraud rate {:.1%} over 7 days",
}
TRANSACTION_COLUMNS = (
    "trans_num",
    "card_id",
    "merchant",
    "category",
    "amount",
    "event_time",
    "record",
    "received_at",
    "card_last4",
    "fingerprint",
)
SCORE_COLUMNS = (
    "trans_num",
    "model_name",
    "model_version",
    "role",
    "fraud_probability",
    "decision",
    "reasons",
    "features",
    "latency_ms",
    "scored_at",
)


def database_url(name: str) -> str:
    """The URL of database `name` on the benchmark's server."""
    return sa.make_url(SERVER).set(database=name).render_as_string(hide_password=False)


def recreate_database(name: str) -> None:
    """Drop and create the benchmark database."""
    engine = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def decisions(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Champion probability and decision per transaction: alerts ~1-2 %, most frauds caught."""
    fraud = frame["is_fraud"].to_numpy() == 1
    draw = rng.random(len(frame))
    decline = np.where(fraud, draw < 0.70, draw < 0.004)
    review = ~decline & np.where(fraud, draw < 0.85, draw < 0.012)
    probability = np.where(
        decline,
        rng.uniform(0.80, 1.0, len(frame)),
        np.where(review, rng.uniform(0.40, 0.80, len(frame)), rng.beta(0.6, 40, len(frame))),
    )
    decision = np.where(decline, "decline", np.where(review, "review", "approve"))
    return pd.DataFrame({"probability": probability, "decision": decision}, index=frame.index)


def fill_part(args: tuple[str, pd.DataFrame, pd.DataFrame, datetime]) -> int:
    """COPY one part's transactions and scores in one database transaction (a worker)."""
    url, frame, scored, start = args
    warehouse = Warehouse(url, personal=PersonalData.from_text(CARD_KEY))
    records = frame.drop(columns=["is_fraud", "fraud_scenario"]).to_dict(orient="records")
    rng = np.random.default_rng(len(frame))
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        times = []
        with cursor.copy(
            f"COPY transactions ({', '.join(TRANSACTION_COLUMNS)}) FROM STDIN"
        ) as copy:
            for record in records:
                event_time = datetime.fromisoformat(str(record["trans_date_trans_time"]))
                received = event_time + timedelta(milliseconds=20)
                row = warehouse._transaction_row(record, received_at=received)
                times.append(event_time)
                copy.write_row(
                    [
                        orjson.dumps(row[c]).decode() if c == "record" else row[c]
                        for c in TRANSACTION_COLUMNS
                    ]
                )
        with cursor.copy(f"COPY scores ({', '.join(SCORE_COLUMNS)}) FROM STDIN") as copy:
            for record, event_time, probability, decision in zip(
                records, times, scored["probability"], scored["decision"], strict=True
            ):
                day = (event_time - start).days
                version = "1" if day < PROMOTION_DAY else "2"
                features = score_features(record, rng)
                for role, model_version, value in score_roles(day, version, probability, rng=rng):
                    copy.write_row(
                        [
                            record["trans_num"],
                            MODEL,
                            model_version,
                            role,
                            float(value),
                            decision if role == "champion" else decide(value),
                            orjson.dumps(reasons(features)).decode(),
                            orjson.dumps(features).decode(),
                            float(rng.gamma(2.0, 0.6)),
                            event_time + timedelta(milliseconds=25),
                        ]
                    )
    warehouse.dispose()
    return len(records)


def score_roles(
    day: int, version: str, probability: float, *, rng: np.random.Generator
) -> list[tuple[str, str, float]]:
    """The champion's score, and in the last SHADOW_DAYS a challenger's close to it."""
    roles = [("champion", version, probability)]
    if day >= DAYS - SHADOW_DAYS:
        shadow = float(np.clip(probability + rng.normal(0, 0.05), 0.0, 1.0))
        roles.append(("challenger", "3", shadow))
    return roles


def decide(probability: float) -> str:
    """The decision at the benchmark's thresholds (0.8 decline, 0.4 review)."""
    return "decline" if probability >= 0.8 else "review" if probability >= 0.4 else "approve"


def score_features(record: dict[str, Any], rng: np.random.Generator) -> dict[str, float]:
    """A few stored feature values, as the case page shows them."""
    return {
        "amount": float(record["amt"]),
        "amount_ratio_card_30d": float(rng.lognormal(0, 0.6)),
        "card_tx_1h": float(rng.poisson(0.3)),
        "card_tx_24h": float(rng.poisson(2.0)),
        "merchant_fraud_7d": float(rng.beta(1, 200)),
    }


def reasons(features: dict[str, float]) -> list[dict[str, Any]]:
    """Three reasons in the stored shape (feature, value, contribution, text)."""
    return [
        {
            "feature": name,
            "value": features[name],
            "contribution": round(1.0 / (rank + 1), 3),
            "text": text.format(features[name]),
        }
        for rank, (name, text) in enumerate(REASON_TEXTS.items())
    ]


def labels(frame: pd.DataFrame, scored: pd.DataFrame, end: datetime, seed: int) -> list[tuple]:
    """(trans_num, is_fraud, label_time, source) of the labels that arrived by `end`."""
    rng = np.random.default_rng(seed + 1)  # independent of the decisions' draws
    events = pd.to_datetime(frame["trans_date_trans_time"]).to_numpy()
    fraud = frame["is_fraud"].to_numpy() == 1
    alert = scored["decision"].to_numpy() != "approve"
    trans_nums = frame["trans_num"].to_numpy()
    analyst = alert & (rng.random(len(frame)) < 0.6)
    analyst_at = events + (rng.uniform(0.2, 24, len(frame)) * 3600e9).astype("timedelta64[ns]")
    chargeback_at = events + (rng.uniform(1, 10, len(frame)) * 86400e9).astype("timedelta64[ns]")
    found = []
    for i in np.flatnonzero(analyst | fraud):
        if analyst[i]:
            at, source = analyst_at[i], "analyst"
        else:
            at, source = chargeback_at[i], "chargeback"
        if at <= np.datetime64(end):
            stamp = pd.Timestamp(at).floor("us").to_pydatetime()
            found.append((trans_nums[i], bool(fraud[i]), stamp, source, stamp))
    return found


def copy_labels(url: str, rows: list[tuple]) -> None:
    """COPY the labels and their history."""
    columns = "trans_num, is_fraud, label_time, source, received_at"
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        for table in ("labels", "label_events"):
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def fill(*, rows: int, database: str, seed: int) -> dict[str, Any]:
    """Recreate the database, fill it, build the indexes; the timings and counts."""
    began = time.perf_counter()
    cards = max(1_000, rows * CARDS_PER_MILLION // 1_000_000)
    frame = simulate(SimulationConfig(days=DAYS + 1, cards=cards, seed=seed)).head(rows)
    frame = frame.reset_index(drop=True)
    simulated = time.perf_counter() - began
    url = database_url(database)
    recreate_database(database)
    warehouse = Warehouse(url, personal=PersonalData.from_text(CARD_KEY))
    warehouse.migrate("0005")  # the tables; the console's indexes come after the rows
    _ = warehouse.personal  # records the card key's check value
    warehouse.dispose()
    scored = decisions(frame, np.random.default_rng(seed))
    start = pd.Timestamp(frame["trans_date_trans_time"].iloc[0]).normalize().to_pydatetime()
    end = pd.Timestamp(frame["trans_date_trans_time"].iloc[-1]).to_pydatetime()
    t0 = time.perf_counter()
    bounds = np.linspace(0, len(frame), WORKERS * 8 + 1).astype(int)
    parts = [(url, frame.iloc[a:b], scored.iloc[a:b], start) for a, b in itertools.pairwise(bounds)]
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        stored = sum(pool.map(fill_part, parts))
    label_rows = labels(frame, scored, end, seed)
    copy_labels(url, label_rows)
    copied = time.perf_counter() - t0
    t1 = time.perf_counter()
    warehouse = Warehouse(url)
    warehouse.migrate()  # 0006: the console's indexes on the filled tables
    with warehouse.engine.begin() as connection:
        connection.execute(sa.text("ANALYZE"))
        counts = {
            table: int(connection.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608
            for table in ("transactions", "scores", "labels")
        }
        alerts = int(
            connection.scalar(
                sa.text(
                    "SELECT count(*) FROM scores WHERE role = 'champion' "
                    "AND decision IN ('review', 'decline')"
                )
            )
            or 0
        )
        unlabelled = int(
            connection.scalar(
                sa.text(
                    "SELECT count(*) FROM scores s LEFT JOIN labels l USING (trans_num) "
                    "WHERE s.role = 'champion' AND s.decision IN ('review', 'decline') "
                    "AND l.trans_num IS NULL"
                )
            )
            or 0
        )
    warehouse.dispose()
    indexed = time.perf_counter() - t1
    return {
        "database": url,
        "rows": stored,
        "cards": int(frame["cc_num"].nunique()),
        "merchants": int(frame["merchant"].nunique()),
        "event_time": [str(frame["trans_date_trans_time"].iloc[0]), str(end)],
        "counts": counts,
        "alerts": alerts,
        "alert_share": round(alerts / max(stored, 1), 4),
        "unlabelled_alerts": unlabelled,
        "seconds": {
            "simulate": round(simulated, 1),
            "copy": round(copied, 1),
            "indexes_and_analyze": round(indexed, 1),
            "total": round(time.perf_counter() - began, 1),
        },
    }


def main(argv: list[str]) -> None:
    """Parse the options, fill, print what was done."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", default="fraudops_bench")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    result = fill(rows=args.rows, database=args.database, seed=args.seed)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    if not args.no_save:
        record("warehouse_fill", {"command": "python benchmarks/fill_warehouse.py", **result})


if __name__ == "__main__":
    main(sys.argv[1:])
