"""The production topology of deploy/ run for real as processes (no container engine).

deploy/local_stack.py starts moto's S3 server, an MLflow server on a fresh PostgreSQL
database with its artifacts in S3, two `fraudops serve` replicas on PostgreSQL and Redis,
nginx with deploy/nginx/nginx.conf, the ingester on a Redis stream and the scheduler with
deploy/compose.yaml's command lines, and Prometheus with deploy/prometheus/ (targets
rewritten). This test trains and registers through that MLflow, scores through nginx,
promotes, and reads every Grafana panel's query from Prometheus.
"""

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pandas as pd
import pytest
import redis

from fraudops.ingest.sources import FileReplaySource

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy"))

from local_stack import (  # noqa: E402 - deploy/ is a folder of scripts, not a package
    BUCKET,
    LocalStack,
    LocalStackConfig,
    StackError,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
POSTGRES_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PROGRAMS = ("nginx", "prometheus", "promtool")
DIRECT_REQUESTS = 24  # POST /v1/score through nginx
STREAM_DAYS = (
    "2024-01-14",
    "2024-01-15",
    "2024-01-16",
)  # streamed through Redis, the ingester and nginx


def require_programs() -> None:
    """nginx and Prometheus from Debian (make deploy-tools); missing under CI=true fails."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None and not Path("/usr/sbin", p).exists()]
    if missing:
        message = f"{', '.join(missing)} not installed: run `make deploy-tools`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the deployment test must run, not skip)")
        pytest.skip(message)


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[LocalStack]:
    """The topology's storage half (S3, databases, MLflow, nginx, Prometheus), stopped after."""
    require_programs()
    config = LocalStackConfig(
        folder=tmp_path / "stack",
        postgres_url=os.environ.get("FRAUDOPS_TEST_POSTGRES_URL", POSTGRES_DEFAULT_URL),
        redis_url=redis_url,
        scrape_interval="1s",
        model_watch_seconds=1.0,
    )
    running = LocalStack(config)
    try:
        running.start_storage()
    except Exception as error:
        running.close()
        if "connection" in str(error).lower() and os.environ.get("CI", "").lower() != "true":
            pytest.skip(f"PostgreSQL is unreachable: {error}")
        raise
    yield running
    running.close()


def train(stack: LocalStack, data: Path, *, train_end: str) -> str:
    """`fraudops train` through the stack's MLflow; its output."""
    done = stack.fraudops(
        *("train", "--data", str(data), "--profile", "sparkov", "--trials", "0"),
        *("--delay-days", "2", "--validation-days", "5", "--train-end", train_end),
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    return done.stdout


def publish(stack: LocalStack, data: Path, tmp_path: Path) -> int:
    """The streamed days' transactions (each with its label) on the Redis stream."""
    frame = pd.read_parquet(data).drop(columns=["fraud_scenario"])
    days = frame["trans_date_trans_time"].astype(str).str[:10]
    part = tmp_path / "stream.parquet"
    frame[days.isin(STREAM_DAYS)].to_parquet(part)
    source = FileReplaySource(part, checkpoint=tmp_path / "replay.json")
    items = source.read(100_000)
    client = redis.Redis.from_url(stack.config.redis_url)
    pipe = client.pipeline()
    for item in items:
        pipe.xadd(stack.stream, {"transaction": orjson.dumps(item.data)})
    pipe.execute()
    client.close()
    return len(items)


def scored_request(stack: LocalStack, data: Path, count: int) -> list[dict[str, object]]:
    """`count` transactions of the day after the stream, as POST /v1/score bodies."""
    frame = pd.read_parquet(data).drop(columns=["fraud_scenario", "is_fraud"])
    day = frame[frame["trans_date_trans_time"].astype(str).str.startswith("2024-01-17")]
    return json.loads(day.head(count).to_json(orient="records"))


def value(stack: LocalStack, promql: str) -> float | None:
    """The single value of a query, None while it has no series."""
    result = stack.query(promql)
    return float(result[0]["value"][1]) if result else None


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, PromQL) of every panel target in deploy/grafana/dashboards."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            queries += [(path.stem, panel["title"], t["expr"]) for t in panel["targets"]]
    return queries


# One test walks the whole story: the topology takes a minute to start, once.
def test_the_deployed_topology_scores_promotes_and_feeds_every_dashboard(  # noqa: PLR0915
    stack: LocalStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Trained and registered through MLflow on PostgreSQL with artifacts in S3; two replicas
    load the champion from S3; N requests through nginx are N on Prometheus summed over the
    replicas; the Redis stream reaches them through the ingester; a promotion hot-swaps both
    and Prometheus shows the new version; every Grafana panel's query returns series."""
    started = time.monotonic()
    data = tmp_path / "history.parquet"
    simulated = stack.fraudops(
        "simulate", "--days", "21", "--cards", "400", "--seed", "7", "--out", str(data)
    )
    assert 0 == simulated.returncode, simulated.stderr
    assert "version 1 as champion" in train(stack, data, train_end="2024-01-13")

    # The champion's artifacts are in the bucket, and the registry points there.
    keys = [
        item["Key"]
        for page in stack.s3_client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for item in page.get("Contents", [])
    ]
    assert any(key.endswith("/MLmodel") for key in keys), keys
    versions = httpx.get(
        f"{stack.url('mlflow')}/api/2.0/mlflow/model-versions/search",
        params={"filter": "name='fraud-detector'"},
    ).json()["model_versions"]
    assert [f"s3://{BUCKET}/"] == sorted({v["source"][: len(BUCKET) + 6] for v in versions})

    # The challenger trains while both replicas start (two cores: overlap what can be).
    with ThreadPoolExecutor(1) as pool:
        challenger: Future[str] = pool.submit(train, stack, data, train_end="2024-01-14")
        stack.start_serving()
        assert "version 2 as challenger" in challenger.result()
    for replica in ("serve-1", "serve-2"):
        ready = httpx.get(f"{stack.url(replica)}/readyz").json()
        assert {"status": "ready", "champion_version": "1"} == ready

    # N requests through nginx: Prometheus sums N over the replicas, each having had some.
    phases = {"registered": time.monotonic() - started}
    api = httpx.Client(
        base_url=stack.url("nginx"),
        headers={"Authorization": f"Bearer {stack.api_token}"},
        timeout=30,
    )
    request.addfinalizer(api.close)
    bodies = scored_request(stack, data, DIRECT_REQUESTS)
    for body in bodies:
        assert 200 == api.post("/v1/score", json=body).status_code
    assert api.post("/v1/score", json=bodies[0]).json()["duplicate"]  # counted as duplicate
    assert 401 == httpx.post(f"{stack.url('nginx')}/v1/score", json=bodies[0]).status_code
    label = {"trans_num": bodies[0]["trans_num"], "is_fraud": False, "source": "analyst"}
    assert 200 == api.post("/v1/labels", json=label).status_code
    direct = 'fraudops_http_requests_total{route="/v1/score",method="POST",status="200"}'
    wait_until(
        lambda: value(stack, f"sum({direct})") == DIRECT_REQUESTS + 1,
        timeout=20,
        what=f"{DIRECT_REQUESTS + 1} scored requests on Prometheus",
    )
    per_replica = stack.query(f"sum by (instance) ({direct})")
    assert 2 == len(per_replica)
    assert all(float(series["value"][1]) > 0 for series in per_replica)

    # The stream, through the ingester and nginx into both replicas.
    streamed = publish(stack, data, tmp_path)
    total = DIRECT_REQUESTS + streamed
    wait_until(
        lambda: value(stack, "sum(fraudops_decisions_total)") == total,
        timeout=60,
        what=f"{total} decisions on Prometheus",
    )
    wait_until(
        lambda: value(stack, 'sum(fraudops_ingest_stored_total{outcome="new"})') == streamed,
        timeout=10,
        what=f"the ingester's {streamed} stored transactions on Prometheus",
    )

    phases["streamed"] = time.monotonic() - started
    # A monitoring run of v1 (labels of the first streamed day have matured; the last day's
    # features against its training reference) for the monitoring panels.
    # The policy's label delay is the simulation's (two days), not the default week.
    (stack.folder / "home" / "policy.toml").write_text("label_delay_days = 1\n")
    monitored = stack.fraudops("monitor")
    assert 0 == monitored.returncode, monitored.stdout + monitored.stderr

    # A promotion: both replicas swap to v2 without a restart; Prometheus shows it.
    pids = {c.name: c.process.pid for c in stack.children}
    promoted = stack.fraudops("models", "promote", "2", "--reason", "deployment test")
    assert 0 == promoted.returncode, promoted.stdout + promoted.stderr
    new_champion = 'fraudops_model_info{role="champion",version="2"} == 1'
    wait_until(
        lambda: len(stack.query(new_champion)) == 2,
        timeout=30,
        what="both replicas serving v2 on Prometheus",
    )
    for replica in ("serve-1", "serve-2"):
        assert "2" == httpx.get(f"{stack.url(replica)}/readyz").json()["champion_version"]
    assert pids == {c.name: c.process.pid for c in stack.children}
    stack.check_alive()
    phases["promoted"] = time.monotonic() - started

    # Every panel's query must answer with at least one series.
    queries = panel_queries()
    assert len(queries) >= 30
    empty: list[str] = []

    def all_answer() -> bool:
        empty[:] = [f"{d} / {p}: {q}" for d, p, q in queries if not stack.query(q)]
        return not empty

    try:
        wait_until(all_answer, timeout=30, what="every Grafana panel to have series", every=1)
    except StackError:
        pytest.fail("panels without series:\n" + "\n".join(empty))
    stack.check_alive()
    phases["dashboards"] = time.monotonic() - started
    print("topology test, seconds since start:", phases)  # noqa: T201 - shown with -s
