"""Real `fraudops serve` processes: restarts, replicas sharing Redis, hot reload, schemathesis."""

import contextlib
import itertools
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.features.batch import batch_features
from fraudops.features.redis_store import RedisStateStore
from fraudops.registry import CHALLENGER, CHAMPION, MlflowRegistry
from fraudops.training.bundle import ModelBundle
from mlflow_store import seeded_home
from polling import CLOSE, POLL
from service_process import (
    ADMIN_TOKEN,
    TOKEN,
    running_service,
    service_env,
)
from transaction_bodies import request_body

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stream(sample_path: Path) -> pd.DataFrame:
    """The real sample in time order: a stream of transactions of many cards."""
    frame = load_transactions(sample_path, SPARKOV).frame
    return frame.sort_values(["event_time", "trans_num"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def registered(
    tmp_path_factory: pytest.TempPathFactory,
    train_bundle: Callable[..., ModelBundle],
    stream: pd.DataFrame,
) -> tuple[Path, ModelBundle]:
    """An MLflow registry (SQLite) with a champion (v1) and a challenger (v2)."""
    home = seeded_home(tmp_path_factory.mktemp("registry"))
    registry = MlflowRegistry(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    champion = train_bundle(stream, threshold=0.5, seed=3)
    for bundle in (champion, train_bundle(stream, threshold=0.4, seed=11)):
        registry.log_training(bundle, input_example=stream.head(3), dataset_fingerprint="sample")
    return home, champion


def env_for(home: Path, registry_home: Path, **settings: str) -> dict[str, str]:
    """A service environment using the shared registry and its own warehouse and home."""
    tracking = Settings(home=registry_home, _env_file=None)  # type: ignore[call-arg]
    return service_env(home, tracking_uri=tracking.resolved_tracking_uri, **settings)


def stored_features(url: str, names: tuple[str, ...]) -> dict[str, list[float]]:
    """The champion feature vector of every stored transaction, by trans_num."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT trans_num, features FROM scores WHERE role = 'champion'")
        ).all()
    engine.dispose()
    out = {}
    for trans_num, features in rows:
        values = json.loads(features) if isinstance(features, str) else features
        out[trans_num] = [np.nan if values[n] is None else values[n] for n in names]
    return out


def assert_features_as_one_uninterrupted_process(
    url: str, history: pd.DataFrame, bundle: ModelBundle
) -> None:
    """Every stored feature vector equals the batch features of the whole history."""
    unlabelled = history.assign(is_fraud=0)  # no label reached the service
    expected = batch_features(unlabelled, bundle.spec)
    stored = stored_features(url, bundle.feature_names)
    assert len(history) == len(stored)
    for row, trans_num in enumerate(history["trans_num"]):
        np.testing.assert_array_equal(expected[row], np.array(stored[trans_num]), trans_num)


def children_of(pid: int) -> list[int]:
    """The live child processes of `pid` but multiprocessing's resource tracker."""
    children = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):  # gone meanwhile
            continue
        if parent == pid and b"resource_tracker" not in command:
            children.append(int(entry.name))
    return children


def test_a_killed_and_restarted_service_keeps_every_card_velocity(
    tmp_path: Path, registered: tuple[Path, ModelBundle], stream: pd.DataFrame
) -> None:
    """kill -9 mid-stream, restart: state is rebuilt from the warehouse, features unchanged."""
    registry_home, champion = registered
    history = stream.head(600)
    database = f"sqlite:///{tmp_path / 'warehouse.db'}"
    env = env_for(tmp_path / "home", registry_home, database_url=database)
    bodies = [request_body(row) for row in history.to_dict("records")]
    with running_service(tmp_path / "home", env=env) as first, first.client() as http:
        before = [http.post("/v1/score", json=body).json() for body in bodies[:300]]
        (drain,) = children_of(first.process.pid)  # the drain process (FRAUDOPS_JOURNAL_DRAIN)
        first.process.kill()  # SIGKILL: no shutdown hook runs
        first.process.wait(10)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{drain}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{drain}").exists()  # it does not outlive the service
    with running_service(tmp_path / "home", env=env) as second, second.client() as http:
        after = [http.post("/v1/score", json=body).json() for body in bodies[300:]]
        again = http.post("/v1/score", json=bodies[5]).json()
    assert [False] * 600 == [r["duplicate"] for r in before + after]
    assert True is again["duplicate"]
    assert before[5]["fraud_probability"] == again["fraud_probability"]
    assert "rebuilt" in second.log()
    assert_features_as_one_uninterrupted_process(database, history, champion)


def test_two_replicas_sharing_redis_give_the_features_of_one_process(
    tmp_path: Path,
    registered: tuple[Path, ModelBundle],
    stream: pd.DataFrame,
    redis_url: str,
    clean_postgres_url: str,
) -> None:
    """Two service processes on one Redis and one PostgreSQL, fed alternately: one history;
    a repeat sent to the other replica at once answers duplicate and writes nothing."""
    registry_home, champion = registered
    history = stream.head(600)
    prefix = f"fraudops-test-{secrets.token_hex(4)}"
    env = env_for(
        tmp_path / "home",
        registry_home,
        database_url=clean_postgres_url,
        redis_url=redis_url,
        redis_prefix=prefix,
    )
    bodies = [request_body(row) for row in history.to_dict("records")]
    try:
        with (
            running_service(tmp_path / "home", env=env) as one,
            running_service(tmp_path / "home", env=env) as two,
            one.client() as first,
            two.client() as second,
        ):
            replies = [
                client.post("/v1/score", json=body)
                for client, body in zip(itertools.cycle((first, second)), bodies, strict=False)
            ]
            # The one before last went to the first replica, perhaps still in its journal.
            repeat = second.post("/v1/score", json=bodies[-2])
            metrics = first.get("/metrics").text
    finally:
        RedisStateStore.from_url(redis_url, prefix=prefix).clear()
    assert [200] * 600 == [r.status_code for r in replies]
    assert (200, True) == (repeat.status_code, repeat.json()["duplicate"])
    assert replies[-2].json()["fraud_probability"] == repeat.json()["fraud_probability"]
    assert "fraudops_feature_state_seconds_count 300.0" in metrics
    assert_features_as_one_uninterrupted_process(clean_postgres_url, history, champion)


def test_a_service_killed_mid_batch_leaves_no_unstored_transaction_in_redis(
    tmp_path: Path,
    registered: tuple[Path, ModelBundle],
    stream: pd.DataFrame,
    redis_url: str,
    clean_postgres_url: str,
) -> None:
    """kill -9 while a 1,000-transaction batch is half through the shared state, before its
    commit: the restarted service finds the unconfirmed claims, rebuilds, and the state of
    every card in Redis is what the warehouse's rows give."""
    import redis  # noqa: PLC0415

    registry_home, _ = registered
    prefix = f"fraudops-test-{secrets.token_hex(4)}"
    env = env_for(
        tmp_path / "home",
        registry_home,
        database_url=clean_postgres_url,
        redis_url=redis_url,
        redis_prefix=prefix,
    )
    bodies = [request_body(row) for row in stream.head(1_300).to_dict("records")]
    client = redis.Redis.from_url(redis_url)
    unconfirmed = f"{prefix}:v3:unconfirmed"
    try:
        with running_service(tmp_path / "home", env=env) as first, first.client() as http:
            for start in range(0, 300, 100):
                batch = {"transactions": bodies[start : start + 100]}
                assert 200 == http.post("/v1/score/batch", json=batch).status_code

            def send_the_big_batch() -> None:
                with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                    httpx.post(
                        f"{first.url}/v1/score/batch",
                        json={"transactions": bodies[300:1_300]},
                        headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=60,
                    )

            sender = threading.Thread(target=send_the_big_batch, daemon=True)
            sender.start()
            deadline = time.monotonic() + 30
            while client.zcard(unconfirmed) < 50:
                assert time.monotonic() < deadline, "the batch never reached the state"
                time.sleep(0.002)  # a busy loop would take the core the service needs
            first.process.kill()
            first.process.wait(10)
        with running_service(tmp_path / "home", env=env) as second:
            log = second.log()
        engine = sa.create_engine(clean_postgres_url)
        with engine.connect() as connection:
            stored = connection.scalar(sa.text("SELECT count(*) FROM transactions"))
        engine.dispose()
        store = RedisStateStore.from_url(redis_url, prefix=prefix)
        events = sum(
            len(state.times)
            for key in {str(row["cc_num"]) for row in bodies}
            if (state := store.get_card(champion_card_id(key))) is not None
        )
        store.close()
    finally:
        RedisStateStore.from_url(redis_url, prefix=prefix).clear()
        client.close()
    assert 300 == stored
    assert 300 == events, log[-3000:]
    assert "the online state holds transactions the warehouse does not" in log


def champion_card_id(cc_num: str) -> str:
    """A card's id as the services of these tests hash it (the session's card-hash key)."""
    from fraudops.data.personal import PersonalData  # noqa: PLC0415

    return PersonalData.from_text(os.environ["FRAUDOPS_CARD_HASH_KEY"]).card_id(cc_num)


def test_twenty_hot_reloads_under_load_fail_no_request(
    tmp_path: Path,
    train_bundle: Callable[..., ModelBundle],
    stream: pd.DataFrame,
) -> None:
    """Flip the champion between two versions 20 times while 4 clients score: no failure."""
    registry_home = seeded_home(tmp_path / "registry")
    registry = MlflowRegistry(Settings(home=registry_home, _env_file=None))  # type: ignore[call-arg]
    for seed in (3, 11):
        registry.log_training(
            train_bundle(stream, threshold=0.5, seed=seed),
            input_example=stream.head(3),
            dataset_fingerprint="sample",
        )
    registry.delete_alias(CHALLENGER)
    env = env_for(tmp_path / "home", registry_home)
    template = request_body(stream.iloc[0].to_dict())
    statuses: Counter[int] = Counter()
    versions: Counter[str] = Counter()
    stop = threading.Event()
    counter = itertools.count()

    def load(url: str) -> None:

        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as http:
            while not stop.is_set():
                number = next(counter)
                body = template | {"trans_num": f"load-{number}", "cc_num": str(number % 50)}
                response = http.post("/v1/score", json=body)
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    versions[response.json()["model"]["version"]] += 1

    with running_service(tmp_path / "home", env=env) as service:
        clients = [threading.Thread(target=load, args=(service.url,)) for _ in range(4)]
        for client in clients:
            client.start()
        outcomes = []
        with service.client(admin=True, timeout=120) as admin:
            for flip in range(20):
                registry.set_alias(2 if flip % 2 == 0 else 1, CHAMPION)
                outcomes.append(admin.post("/v1/models/reload").json()["champion"]["outcome"])
        stop.set()
        for client in clients:
            client.join(60)
    assert ["swapped"] * 20 == outcomes
    assert {200} == set(statuses), statuses
    assert sum(statuses.values()) > 100
    assert {"1", "2"} == set(versions)


def test_schemathesis_finds_no_server_error(
    tmp_path: Path, registered: tuple[Path, ModelBundle], clean_postgres_url: str
) -> None:
    """Schemathesis, generating requests from /openapi.json (every phase, the stateful one
    chaining score -> read -> label through the schema's links), never gets a 5xx from a
    service on PostgreSQL; nor do the requests that once did: a NUL in the path, a label
    time that overflows when made UTC."""

    registry_home, _ = registered
    env = env_for(tmp_path / "home", registry_home, database_url=clean_postgres_url)
    with running_service(tmp_path / "home", env=env) as service:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{service.url}/openapi.json",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--checks",
                "not_a_server_error",
                "--header",
                f"Authorization: Bearer {ADMIN_TOKEN}",
                "--max-examples",
                "40",
                "--generation-allow-x00",
                "true",
                "--seed",
                "20261129",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            cwd=tmp_path,  # schemathesis keeps its example database in the working folder
        )
        with httpx.Client(
            base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as http:
            nul = http.get("/v1/transactions/%00")
            overflow = http.post(
                "/v1/labels",
                json={
                    "trans_num": "t",
                    "is_fraud": True,
                    "label_time": "9999-12-31T23:59:59-05:00",
                },
            )
            alive = http.get("/healthz")  # the same kept-alive connection still answers
        log = service.log()
    assert 0 == result.returncode, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Stateful" in result.stdout or "stateful" in result.stdout, result.stdout[-3000:]
    assert (422, 422, 200) == (nul.status_code, overflow.status_code, alive.status_code)
    assert "Traceback" not in log, log[-4000:]


def every_worker_ready(url: str, *, timeout_s: float = 120.0) -> None:
    """Wait until ten /readyz on new connections in a row answer 200: the service is ready once
    one worker is, and the kernel may hand the next connection to another still loading."""

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if all(200 == POLL.get(f"{url}/readyz", headers=CLOSE).status_code for _ in range(10)):
                return
        except httpx.TransportError:  # a worker still starting
            pass
        time.sleep(0.2)
    pytest.fail(f"not every worker of {url} was ready within {timeout_s:g} s")


def score_on_a_ready_worker(url: str, body: object, headers: dict[str, str]) -> httpx.Response:
    """POST on a new connection, again while it lands on a worker still loading (503): ten
    ready answers in a row need not have reached every worker, since which worker accepts a
    connection is the kernel's choice."""
    deadline = time.monotonic() + 60
    while True:
        response: httpx.Response = POLL.post(url, json=body, headers=headers | CLOSE, timeout=30)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_metrics_add_up_every_worker(
    tmp_path: Path, registered: tuple[Path, ModelBundle], stream: pd.DataFrame, redis_url: str
) -> None:
    """With two workers, /metrics counts the requests both of them served."""

    registry_home, _ = registered
    prefix = f"fraudops-test-{secrets.token_hex(4)}"
    home = tmp_path / "home"
    env = env_for(home, registry_home, redis_url=redis_url, redis_prefix=prefix)
    bodies = [request_body(row) for row in stream.head(60).to_dict("records")]
    try:
        with running_service(home, "--workers", "2", env=env) as service:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            every_worker_ready(service.url)
            for body in bodies:  # a new connection each: the kernel spreads them over workers
                response = score_on_a_ready_worker(f"{service.url}/v1/score", body, headers)
                assert 200 == response.status_code
            metrics = httpx.get(f"{service.url}/metrics").text
            workers = {
                path.name.split("_")[-1]
                for path in (home / "prometheus-multiproc").glob("counter_*.db")
            }
    finally:
        RedisStateStore.from_url(redis_url, prefix=prefix).clear()
    assert 2 <= len(workers), workers
    line = 'fraudops_http_requests_total{method="POST",route="/v1/score",status="200"} 60.0'
    assert line in metrics
