"""The analyst console at 1 M stored transactions: p50/p95 of the queue and of a case, through
the library's reads and over HTTP from a real `fraudops console` (uvicorn) process.

    .venv/bin/python benchmarks/fill_warehouse.py     # once: the 1 M-row PostgreSQL warehouse
    .venv/bin/python benchmarks/bench_console.py [--database fraudops_bench] [--runs 100]
        [--no-http] [--no-save]

Reads (storage.console through the Warehouse, as the console's routes call them): the queue's
first page newest first, riskiest first, declines only, and its fifth page; a case
(get_transaction and the merchant's rates over 30 days, what /cases/{trans_num} reads) and
its card timeline (card_of and 30 days of card history). Cases are unlabelled alerts drawn
at random. HTTP: GET /queue, /queue/rows (the part the page refreshes every second),
/cases/{trans_num} and /plots/card-timeline.svg, one at a time, logged in as an analyst.
Targets (issue 14): /queue p95 ≤ 300 ms, /cases/{trans_num} p95 ≤ 200 ms. Results go to
results/console.json.
"""

import argparse
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from fill_warehouse import CARD_KEY, database_url
from fraudops.console.queries import PAGE_SIZE
from fraudops.storage import Warehouse
from fraudops.storage.console import QueueFilter
from harness import fraudops_command, record

TARGETS_MS = {"/queue": 300.0, "/cases/{trans_num}": 200.0}
HISTORY_DAYS = 30


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p95 and max of samples in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(ordered[-1], 2),
        "runs": len(ordered),
    }


def timed(call: Callable[[], object], runs: int, *, warm: int = 3) -> dict[str, float]:
    """Run `call` `warm` times untimed, then `runs` times timed."""
    for _ in range(warm):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def sample_cases(url: str, count: int, seed: int) -> list[str]:
    """Unlabelled alerts drawn at random: the cases an analyst opens."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        found = [
            str(row[0])
            for row in connection.execute(
                sa.text(
                    "SELECT s.trans_num FROM scores s LEFT JOIN labels l USING (trans_num) "
                    "WHERE s.role = 'champion' AND s.decision IN ('review', 'decline') "
                    "AND l.trans_num IS NULL ORDER BY s.trans_num"
                )
            )
        ]
    engine.dispose()
    return random.Random(seed).sample(found, min(count, len(found)))


def bench_reads(warehouse: Warehouse, cases: list[str], runs: int) -> dict[str, Any]:
    """The console's reads, timed in this process."""
    everything = QueueFilter()
    declines = QueueFilter(decision="decline")
    results: dict[str, Any] = {
        "queue_newest_page1": timed(
            lambda: warehouse.alert_queue(everything, order="newest", limit=PAGE_SIZE + 1), runs
        ),
        "queue_riskiest_page1": timed(
            lambda: warehouse.alert_queue(everything, order="riskiest", limit=PAGE_SIZE + 1),
            runs,
        ),
        "queue_declines_page1": timed(
            lambda: warehouse.alert_queue(declines, order="newest", limit=PAGE_SIZE + 1), runs
        ),
        "queue_newest_page5": timed(
            lambda: warehouse.alert_queue(
                everything, order="newest", limit=PAGE_SIZE + 1, offset=4 * PAGE_SIZE
            ),
            runs,
        ),
    }
    history = timedelta(days=HISTORY_DAYS)
    picks = iter(cases * (runs // max(len(cases), 1) + 2))

    def case() -> None:
        stored = warehouse.get_transaction(next(picks))
        if stored is None:
            sys.exit("a sampled case is not stored")
        merchant = stored.record.get("merchant")
        if isinstance(merchant, str):
            warehouse.merchant_rates(
                merchant,
                start=stored.event_time - history,
                end=stored.event_time + timedelta(seconds=1),
            )

    def timeline() -> None:
        trans_num = next(picks)
        stored = warehouse.get_transaction(trans_num)
        card = warehouse.card_of(trans_num)
        if stored is None or card is None:
            sys.exit("a sampled case is not stored")
        warehouse.card_history(
            card, start=stored.event_time - history, end=stored.event_time + timedelta(days=1)
        )

    results["case"] = timed(case, runs)
    results["card_timeline"] = timed(timeline, runs)
    return results


def free_port() -> int:
    """A TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bench_http(url: str, cases: list[str], runs: int) -> dict[str, Any]:
    """The pages over HTTP from a `fraudops console` process on the filled warehouse."""
    from fraudops.config import Settings  # noqa: PLC0415
    from fraudops.console.auth import SESSION_COOKIE, Role, Sessions  # noqa: PLC0415

    secret = secrets.token_urlsafe(32)
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="fraudops-bench-console-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDOPS_")}
    env |= {
        "FRAUDOPS_HOME": str(home),
        "FRAUDOPS_DATABASE_URL": url,
        "FRAUDOPS_CARD_HASH_KEY": CARD_KEY,
        "FRAUDOPS_ANALYST_TOKENS": "bench=" + secrets.token_urlsafe(32),
        "FRAUDOPS_CONSOLE_SECRET": secret,
        "FRAUDOPS_LOG_LEVEL": "warning",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    settings = Settings(console_secret=secret, home=home, _env_file=None)  # type: ignore[call-arg]
    cookie, _ = Sessions(settings).issue("bench", Role.ANALYST)
    log = (home / "console.log").open("wb")
    process = subprocess.Popen(
        [fraudops_command(), "console", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                sys.exit(f"fraudops console exited; see {home / 'console.log'}")
            try:
                httpx.get(f"{base}/login", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    sys.exit("fraudops console did not start in 120 s")
                time.sleep(0.3)
        with httpx.Client(base_url=base, cookies={SESSION_COOKIE: cookie}, timeout=30) as client:
            first_case = client.get(f"/cases/{cases[0]}")
            if "/cases/" not in client.get("/queue").text or cases[0] not in first_case.text:
                sys.exit("the console's queue or case page shows no case: not logged in?")
            picks = iter(cases * (runs // max(len(cases), 1) + 2))

            def get(path: Callable[[], str]) -> Callable[[], None]:
                def call() -> None:
                    response = client.get(path())
                    if response.status_code != 200:
                        sys.exit(f"GET {response.url} answered {response.status_code}")

                return call

            return {
                "/queue": timed(get(lambda: "/queue"), runs),
                "/queue/rows": timed(get(lambda: "/queue/rows"), runs),
                "/queue?order=riskiest": timed(get(lambda: "/queue?order=riskiest"), runs),
                "/queue?decision=decline": timed(get(lambda: "/queue?decision=decline"), runs),
                "/cases/{trans_num}": timed(get(lambda: f"/cases/{next(picks)}"), runs),
                "/plots/card-timeline.svg": timed(
                    get(lambda: f"/plots/card-timeline.svg?trans_num={next(picks)}"), runs
                ),
            }
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def main(argv: list[str]) -> None:
    """Time the reads and the pages, print them, record them with the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="fraudops_bench")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    url = database_url(args.database)
    cases = sample_cases(url, args.cases, args.seed)
    warehouse = Warehouse(url)
    with warehouse.engine.connect() as connection:
        rows = int(connection.scalar(sa.text("SELECT count(*) FROM transactions")) or 0)
    reads = bench_reads(warehouse, cases, args.runs)
    warehouse.dispose()
    for name, figures in reads.items():
        print(f"read  {name:28} p50 {figures['p50_ms']:7.2f} ms  p95 {figures['p95_ms']:7.2f} ms")
    pages: dict[str, Any] = {}
    if not args.no_http:
        pages = bench_http(url, cases, args.runs)
        for name, figures in pages.items():
            print(
                f"http  {name:28} p50 {figures['p50_ms']:7.2f} ms  p95 {figures['p95_ms']:7.2f} ms"
            )
    verdicts = {
        page: {"target_p95_ms": target, "pass": pages[page]["p95_ms"] <= target}
        for page, target in TARGETS_MS.items()
        if page in pages
    }
    for page, verdict in verdicts.items():
        outcome = "pass" if verdict["pass"] else "MISSED"
        print(f"{page}: p95 target {verdict['target_p95_ms']:g} ms: {outcome}")
    if not args.no_save:
        record(
            "console",
            {
                "command": "python benchmarks/bench_console.py " + " ".join(argv),
                "transactions": rows,
                "cases_sampled": len(cases),
                "reads": reads,
                "http": pages,
                "targets": verdicts,
            },
        )
    if not all(verdict["pass"] for verdict in verdicts.values()):
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
