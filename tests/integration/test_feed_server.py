"""The real `fraudops feed` process, polled over HTTP the way clients of the public API do."""

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest

from fraudops.data.schema import FEED_COLUMNS
from polling import POLL
from ports import free_port

pytestmark = pytest.mark.integration

FRAUDOPS = Path(sys.executable).parent / "fraudops"
STARTUP_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def sparkov_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated data set in Sparkov shape, written as Parquet by `fraudops simulate`."""
    path = tmp_path_factory.mktemp("feed") / "transactions.parquet"
    subprocess.run(
        [
            str(FRAUDOPS),
            "simulate",
            "--days",
            "2",
            "--cards",
            "30",
            "--seed",
            "7",
            "--out",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return path


@contextmanager
def running_feed(tmp_path: Path, *options: str) -> Iterator[str]:
    """Start `fraudops feed` on a free port, wait until /healthz answers, stop it afterwards."""
    port = free_port()
    log_path = tmp_path / f"feed-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(FRAUDOPS), "feed", "--port", str(port), *options], stdout=log, stderr=log
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"feed exited with {process.returncode}: {log_path.read_text()}")
            try:
                if POLL.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"feed not up after {STARTUP_TIMEOUT_S} s: {log_path.read_text()}")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_feed_serves_the_file_in_time_order_in_the_public_format(
    sparkov_parquet: Path, tmp_path: Path
) -> None:
    """A client decodes each answer with json.loads and pd.read_json and gets the next rows."""
    data = pd.read_parquet(sparkov_parquet)
    earliest = data.sort_values("trans_date_trans_time", kind="stable")["trans_num"].tolist()
    with running_feed(tmp_path, "--data", str(sparkov_parquet)) as url:
        response = httpx.get(f"{url}/current-transactions", timeout=10.0)
        assert 200 == response.status_code
        document = json.loads(response.json())
        assert list(FEED_COLUMNS) == document["columns"]
        first = pd.read_json(io.StringIO(response.json()), orient="split")
        assert list(FEED_COLUMNS) == first.columns.tolist()
        assert [earliest[0]] == first["trans_num"].tolist()
        row = data.set_index("trans_num").loc[earliest[0]]
        assert int(row["cc_num"]) == first["cc_num"].iloc[0]
        assert pd.Timestamp(row["trans_date_trans_time"]) == first["current_time"].iloc[0]
        batch = httpx.get(f"{url}/current-transactions", params={"n": 3}, timeout=10.0)
        rows = pd.read_json(io.StringIO(batch.json()), orient="split")
        assert earliest[1:4] == rows["trans_num"].tolist()
        health = httpx.get(f"{url}/healthz", timeout=10.0).json()
        assert {"status": "ok", "served": 4, "remaining": len(data) - 4} == health


def test_feed_rate_limit_answers_429_with_retry_after(
    sparkov_parquet: Path, tmp_path: Path
) -> None:
    """With --rate-limit 3/minute the fourth call within the minute is refused with Retry-After."""
    with running_feed(tmp_path, "--data", str(sparkov_parquet), "--rate-limit", "3/minute") as url:
        codes = [
            httpx.get(f"{url}/current-transactions", timeout=10.0).status_code for _ in range(3)
        ]
        refused = httpx.get(f"{url}/current-transactions", timeout=10.0)
    assert [200, 200, 200] == codes
    assert 429 == refused.status_code
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "rate limit" in refused.json()["detail"]


def test_feed_with_simulated_data_and_delayed_labels(tmp_path: Path) -> None:
    """--simulate with --label-delay streams is_fraud as null and serves /labels."""
    options = ("--simulate", "--days", "7", "--cards", "20", "--label-delay", "1h")
    with running_feed(tmp_path, *options) as url:
        rows = pd.read_json(
            io.StringIO(httpx.get(f"{url}/current-transactions", params={"n": 50}).json()),
            orient="split",
        )
        labels = httpx.get(f"{url}/labels", timeout=10.0).json()
    assert 50 == len(rows)
    assert labels["labels"]
    assert rows["is_fraud"].isna().all()
    assert set(labels) >= {"labels", "until"}
    latest = int(rows["current_time"].max().value // 1_000_000)
    assert all(label["label_time"] <= latest for label in labels["labels"])
    assert all(label["label_time"] == label["event_time"] + 3_600_000 for label in labels["labels"])
