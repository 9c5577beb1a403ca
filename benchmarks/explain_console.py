"""EXPLAIN ANALYZE of the console's reads on the filled benchmark warehouse (fill_warehouse.py).

    .venv/bin/python benchmarks/explain_console.py [--database fraudops_bench] [--no-save]

The queue (unlabelled champion reviews and declines, newest first and riskiest first, LIMIT
50), a case's card history and its merchant's rates: the plans PostgreSQL picks at 1 M rows,
the indexes they use and their execution times, recorded in results/console_explain.json.
The SQL is written out in benchmarks/README.md (console).
"""

import argparse
import re
import sys
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from fill_warehouse import database_url
from harness import record

QUEUE_NEWEST = """
SELECT t.trans_num, t.event_time, t.amount, t.merchant, t.category, t.card_last4,
       s.fraud_probability, s.decision, s.model_version
FROM transactions t
JOIN scores s ON s.trans_num = t.trans_num AND s.role = 'champion'
LEFT JOIN labels l ON l.trans_num = t.trans_num
WHERE l.trans_num IS NULL AND s.decision IN ('review', 'decline')
ORDER BY t.event_time DESC, t.trans_num DESC
LIMIT 50
"""
QUEUE_RISKIEST = QUEUE_NEWEST.replace(
    "ORDER BY t.event_time DESC", "ORDER BY s.fraud_probability DESC, t.event_time DESC"
)
QUEUE_DECLINES = QUEUE_NEWEST.replace("IN ('review', 'decline')", "IN ('decline')")
QUEUE_BY_SCORED_AT = QUEUE_NEWEST.replace(
    "ORDER BY t.event_time DESC, t.trans_num DESC", "ORDER BY s.scored_at DESC"
)
CARD_HISTORY = """
SELECT t.trans_num, t.event_time, t.amount, s.fraud_probability, s.decision, l.is_fraud
FROM transactions t
LEFT JOIN scores s ON s.trans_num = t.trans_num AND s.role = 'champion'
LEFT JOIN labels l ON l.trans_num = t.trans_num
WHERE t.card_id = :card_id AND t.event_time >= :start AND t.event_time <= :end
ORDER BY t.event_time DESC, t.trans_num DESC
LIMIT 200
"""
MERCHANT_RATES = """
SELECT count(*),
       coalesce(sum(CASE WHEN s.decision IN ('review', 'decline') THEN 1 ELSE 0 END), 0),
       coalesce(sum(CASE WHEN l.is_fraud IS true THEN 1 ELSE 0 END), 0),
       count(l.trans_num)
FROM transactions t
LEFT JOIN scores s ON s.trans_num = t.trans_num AND s.role = 'champion'
LEFT JOIN labels l ON l.trans_num = t.trans_num
WHERE t.merchant = :merchant AND t.event_time >= :start AND t.event_time < :end
"""
NEWEST_SCORED = "SELECT max(scored_at) FROM scores WHERE role = 'champion'"
QUERIES = {
    "queue_newest": QUEUE_NEWEST,
    "queue_riskiest": QUEUE_RISKIEST,
    "queue_declines_newest": QUEUE_DECLINES,
    "queue_by_scored_at": QUEUE_BY_SCORED_AT,
    "card_history_30d": CARD_HISTORY,
    "merchant_rates_7d": MERCHANT_RATES,
    "newest_champion_score": NEWEST_SCORED,
}


INDEX_SCAN = r"(?:Index|Index Only|Bitmap Index) Scan(?: Backward)? (?:using|on) (\w+)"


def case_parameters(connection: sa.Connection) -> dict[str, Any]:
    """A recent alert's card and merchant, and the windows the case page reads."""
    row = connection.execute(
        sa.text(
            "SELECT t.card_id, t.merchant, t.event_time FROM transactions t "
            "JOIN scores s ON s.trans_num = t.trans_num AND s.role = 'champion' "
            "WHERE s.decision = 'decline' ORDER BY t.event_time DESC LIMIT 1"
        )
    ).one()
    return {"card_id": row.card_id, "merchant": row.merchant, "end": row.event_time}


def explain(connection: sa.Connection, sql: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The plan as text, the indexes it names and its execution time."""
    lines = [
        str(line[0])
        for line in connection.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS) " + sql), parameters)
    ]
    plan = "\n".join(lines)
    time_ms = float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1))  # type: ignore[union-attr]
    return {
        "execution_ms": time_ms,
        "indexes": sorted(set(re.findall(INDEX_SCAN, plan))),
        "seq_scans": sorted(set(re.findall(r"Seq Scan on (\w+)", plan))),
        "plan": lines,
    }


def main(argv: list[str]) -> None:
    """Explain every query, print a summary and the plans, record them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="fraudops_bench")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    engine = sa.create_engine(database_url(args.database))
    results: dict[str, Any] = {}
    with engine.connect() as connection:
        case = case_parameters(connection)
        windows = {
            "card_history_30d": timedelta(days=30),
            "merchant_rates_7d": timedelta(days=7),
        }
        rows = int(connection.scalar(sa.text("SELECT count(*) FROM transactions")) or 0)
        for name, sql in QUERIES.items():
            parameters: dict[str, Any] = {}
            if name in windows:
                parameters = {
                    "card_id": case["card_id"],
                    "merchant": case["merchant"],
                    "start": case["end"] - windows[name],
                    "end": case["end"],
                }
                parameters = {k: v for k, v in parameters.items() if f":{k}" in sql}
            explain(connection, sql, parameters)  # warm the cache
            results[name] = explain(connection, sql, parameters)
            summary = results[name]
            print(
                f"{name:24} {summary['execution_ms']:8.2f} ms  "
                f"indexes {', '.join(summary['indexes']) or '-'}; "
                f"seq scans {', '.join(summary['seq_scans']) or '-'}"
            )
    engine.dispose()
    for name, summary in results.items():
        print(f"\n== {name}\n" + "\n".join(summary["plan"]))
    if not args.no_save:
        record(
            "console_explain",
            {
                "command": "python benchmarks/explain_console.py",
                "transactions": rows,
                "queries": {name: sql.strip() for name, sql in QUERIES.items()},
                "results": results,
            },
        )


if __name__ == "__main__":
    main(sys.argv[1:])
