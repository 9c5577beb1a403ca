"""The ingester's sources against real servers: `fraudops feed` (429s, delayed labels) and
Redis Streams (consumer groups, redelivery of what a dead consumer never acknowledged)."""

import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest
import redis
import sqlalchemy as sa

from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.ingest.runner import Ingester, IngestOptions, IngestReport
from fraudops.ingest.sinks import InProcessSink
from fraudops.ingest.sources import (
    LABEL,
    TRANSACTION,
    FileReplaySource,
    HttpFeedSource,
    RedisStreamSource,
    Source,
    publish,
)
from fraudops.ingest.spool import Item, Spool
from fraudops.scoring.service import ScoringService
from polling import POLL

pytestmark = pytest.mark.integration

FRAUDOPS = Path(sys.executable).parent / "fraudops"
ROWS = 600


@pytest.fixture
def service(in_process_service: ScoringService) -> ScoringService:
    """The started in-process scoring service (tests/conftest.py)."""
    return in_process_service


def count(service: ScoringService, table: str) -> int:
    """Rows in a warehouse table."""
    with service.warehouse.engine.connect() as connection:
        found = connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))  # noqa: S608 - ours
        return int(found or 0)


def run_until(ingester: Ingester, done: Callable[[], bool], timeout: float = 120.0) -> IngestReport:
    """Run the ingester in a thread; stop it once `done()` holds; its report."""
    reports: list[IngestReport] = []
    thread = threading.Thread(target=lambda: reports.append(ingester.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline or not thread.is_alive():
            break
        time.sleep(0.1)
    ingester.stop()
    thread.join(60)
    ingester.source.close()
    assert reports, "the ingester did not finish"
    assert done(), f"not done: {reports[0]}"
    return reports[0]


def ingester_for(source: Source, service: ScoringService, state: Path) -> Ingester:
    """An ingester into the in-process service, with quick retries."""
    return Ingester(
        source,
        InProcessSink(service),
        spool=Spool(state / "spool.db", memory_items=200, durable=not source.redelivers),
        dead_letter=state / "dead-letter.jsonl",
        options=IngestOptions(
            batch_size=100, retry_base_seconds=0.05, retry_cap_seconds=0.5, drain_seconds=5
        ),
    )


# --- the live feed --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def feed_file(sample_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's first 600 rows in time, as the file the feed serves."""
    frame = load_transactions(sample_path, SPARKOV).frame
    frame = frame.sort_values("event_time", kind="stable").head(ROWS)
    path = tmp_path_factory.mktemp("feed") / "feed.parquet"
    frame.drop(columns=["event_time"]).to_parquet(path, index=False)
    return path


@contextmanager
def running_feed(tmp_path: Path, *options: str) -> Iterator[str]:
    """`fraudops feed` on a free port until the block ends."""
    from service_process import free_port  # noqa: PLC0415 - the integration helpers

    port = free_port()
    log = tmp_path / "feed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(FRAUDOPS), "feed", "--port", str(port), *options], stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if POLL.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the feed did not start: {log.read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(30)


def test_the_feed_is_ingested_whole_through_429s_with_its_delayed_labels(
    tmp_path: Path, feed_file: Path, service: ScoringService
) -> None:
    """A rate-limited feed answers 429 with Retry-After: the ingester waits as told, loses
    nothing, and stores the labels the feed releases after their delay."""
    served = pd.read_parquet(feed_file)
    times = pd.to_datetime(served["trans_date_trans_time"])
    released = int((times + pd.Timedelta(hours=1) <= times.max()).sum())
    options = ("--data", str(feed_file), "--label-delay", "1h", "--rate-limit", "4/second")
    with running_feed(tmp_path, *options) as url:
        source = HttpFeedSource(url, state=tmp_path / "state" / "feed.json")
        report = run_until(
            ingester_for(source, service, tmp_path / "state"),
            lambda: count(service, "transactions") == ROWS and count(service, "labels") >= released,
        )
    assert source.retries >= 1  # some 429s were met and waited out
    assert ROWS == report.stored_new == count(service, "transactions")
    assert released <= count(service, "labels")
    assert 0 == count(service, "labels WHERE trans_num NOT IN (SELECT trans_num FROM transactions)")


# --- Redis Streams --------------------------------------------------------------------------


@pytest.fixture
def stream_client(redis_url: str) -> Iterator[tuple[redis.Redis, str]]:
    """A Redis client and a stream key of this test's own (deleted afterwards)."""
    client = redis.Redis.from_url(redis_url)
    key = f"fraudops-test-stream-{secrets.token_hex(4)}"
    yield client, key
    client.delete(key)
    client.close()


def stream_items(sample_path: Path, tmp_path: Path) -> list[Item]:
    """The sample's first 600 transactions, then a label for each, as stream entries."""
    source = FileReplaySource(sample_path, checkpoint=tmp_path / "unused.json")
    transactions = [i for i in source.read(ROWS) if i.kind == TRANSACTION]
    labels = [
        Item(
            LABEL,
            {
                "trans_num": i.data["trans_num"],
                "is_fraud": bool(i.data.pop("is_fraud")),
                "label_time": "2030-01-01T00:00:00",
                "source": "stream",
            },
            "",
        )
        for i in transactions
    ]
    return [*transactions, *labels]


def test_a_redis_stream_is_ingested_once_even_after_a_consumer_dies(
    tmp_path: Path,
    sample_path: Path,
    service: ScoringService,
    stream_client: tuple[redis.Redis, str],
    redis_url: str,
) -> None:
    """A consumer reads 250 entries and dies before acknowledging: restarted under the same
    name it gets them again first; every transaction and label is stored once, and the
    group ends with nothing pending."""
    client, stream = stream_client
    publish(client, stream, stream_items(sample_path, tmp_path))
    dead = RedisStreamSource.from_url(redis_url, stream=stream, consumer="c1")
    delivered = dead.read(250)
    assert 250 == len(delivered)
    dead.close()  # gone without XACK, as after kill -9
    source = RedisStreamSource.from_url(redis_url, stream=stream, consumer="c1")
    report = run_until(
        ingester_for(source, service, tmp_path / "state"),
        lambda: count(service, "labels") == ROWS,
    )
    assert ROWS == report.stored_new == count(service, "transactions")
    assert ROWS == count(service, "labels")
    assert 0 == client.xpending(stream, "fraudops-ingest")["pending"]


def test_entries_left_by_a_dead_consumer_are_claimed_by_another(
    tmp_path: Path,
    sample_path: Path,
    service: ScoringService,
    stream_client: tuple[redis.Redis, str],
    redis_url: str,
) -> None:
    """Consumer c1 dies holding 100 entries; c2 claims them once they are idle long enough."""
    client, stream = stream_client
    items = stream_items(sample_path, tmp_path)[:ROWS]
    publish(client, stream, items)
    dead = RedisStreamSource.from_url(redis_url, stream=stream, consumer="c1")
    dead.read(100)
    dead.close()
    time.sleep(0.3)
    source = RedisStreamSource.from_url(redis_url, stream=stream, consumer="c2", claim_idle_ms=200)
    report = run_until(
        ingester_for(source, service, tmp_path / "state"),
        lambda: count(service, "transactions") == ROWS,
    )
    assert ROWS == report.stored_new
    assert 0 == client.xpending(stream, "fraudops-ingest")["pending"]


def test_a_malformed_stream_entry_is_dead_lettered_not_retried_forever(
    tmp_path: Path,
    service: ScoringService,
    stream_client: tuple[redis.Redis, str],
    redis_url: str,
) -> None:
    """An entry that is not JSON, and one of an unknown shape: refused, acknowledged, named."""
    client, stream = stream_client
    client.xadd(stream, {"transaction": b"{not json"})
    client.xadd(stream, {"something": b"else"})
    source = RedisStreamSource.from_url(redis_url, stream=stream)
    ingester = ingester_for(source, service, tmp_path / "state")
    run_until(ingester, lambda: ingester.report.invalid == 2, timeout=30)
    assert 0 == client.xpending(stream, "fraudops-ingest")["pending"]
    letters = (tmp_path / "state" / "dead-letter.jsonl").read_text().splitlines()
    assert 2 == len(letters)
