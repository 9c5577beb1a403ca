"""Ingestion that never loses a transaction: real processes killed mid-replay and restarted.

A 6,000-transaction replay goes through `fraudops ingest` into `fraudops serve`; once with
nothing going wrong (the reference), then with the service killed (-9) and restarted, with
the ingester killed (-9) and restarted, and with the Redis holding the service's feature
state killed and started again empty. Each time the warehouse must end up holding
every transaction exactly once, each with the score the uninterrupted run gave it.
"""

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from private_redis import PrivateRedis

from fraudops.config import Settings
from fraudops.registry import MlflowRegistry
from fraudops.training.bundle import ModelBundle
from mlflow_store import seeded_home
from service_process import FRAUDOPS, TOKEN, free_port, running_service, service_env

pytestmark = pytest.mark.integration

TRANSACTIONS = 6_000
KILL_AFTER = 1_500
FINISH_TIMEOUT_S = 600.0


@pytest.fixture(scope="module")
def replay_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6,000 simulated transactions in time order (Parquet, as `fraudops simulate` writes)."""
    folder = tmp_path_factory.mktemp("replay")
    simulated = folder / "simulated.parquet"
    subprocess.run(
        [str(FRAUDOPS), "simulate", "--cards", "800", "--days", "8", "--seed", "5",
         "--out", str(simulated)],
        check=True, capture_output=True, cwd=folder,
    )  # fmt: skip
    frame = pd.read_parquet(simulated)
    frame = frame.sort_values("trans_date_trans_time", kind="stable").head(TRANSACTIONS)
    assert TRANSACTIONS == len(frame)
    path = folder / "replay.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def registry_home(
    tmp_path_factory: pytest.TempPathFactory,
    train_bundle: Callable[..., ModelBundle],
    sample_frame: pd.DataFrame,
) -> Path:
    """An MLflow registry (SQLite) whose champion was trained on the real sample."""
    home = seeded_home(tmp_path_factory.mktemp("registry"))
    registry = MlflowRegistry(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    bundle = train_bundle(sample_frame, threshold=0.5, seed=3)
    registry.log_training(bundle, input_example=sample_frame.head(3), dataset_fingerprint="s")
    return home


def env_for(home: Path, registry_home: Path) -> dict[str, str]:
    """A service (or ingester) environment: own home and warehouse, the shared registry."""
    tracking = Settings(home=registry_home, _env_file=None)  # type: ignore[call-arg]
    return service_env(home, tracking_uri=tracking.resolved_tracking_uri)


def champion_scores(home: Path) -> tuple[int, dict[str, float]]:
    """Transactions stored, and the champion probability of each, from the SQLite warehouse."""
    with sqlite3.connect(home / "warehouse.db") as db:
        count = db.execute("SELECT count(*) FROM transactions").fetchone()[0]
        rows = db.execute(
            "SELECT trans_num, fraud_probability FROM scores WHERE role = 'champion'"
        ).fetchall()
    scores = dict(rows)
    assert len(rows) == len(scores)  # one champion score per transaction
    return count, scores


def stored(home: Path) -> int:
    """Transactions the warehouse holds now (0 before it exists)."""
    if not (home / "warehouse.db").exists():
        return 0
    with sqlite3.connect(home / "warehouse.db", timeout=30) as db:
        try:
            return int(db.execute("SELECT count(*) FROM transactions").fetchone()[0])
        except sqlite3.OperationalError:  # not migrated yet
            return 0


def wait_for(condition: Callable[[], bool], *, what: str, timeout: float = 300.0) -> None:
    """Poll until `condition` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@contextmanager
def ingester(
    replay: Path, *, url: str, state: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """`fraudops ingest` replaying the file into the service at `url` (killed at exit)."""
    log = state.parent / f"{state.name}-ingest-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(FRAUDOPS), "ingest", "--source", "file", "--data", str(replay),
             "--service-url", url, "--token", TOKEN, "--state-dir", str(state),
             "--batch-size", "500"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def finish(process: subprocess.Popen[bytes], state: Path) -> None:
    """Wait for an ingester to end on its own, successfully."""
    try:
        code = process.wait(FINISH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        code = None
    logs = "\n".join(p.read_text()[-3000:] for p in state.parent.glob(f"{state.name}-ingest-*"))
    assert code == 0, logs


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, replay_file: Path, registry_home: Path
) -> dict[str, float]:
    """The champion score of every transaction when nothing goes wrong."""
    home = tmp_path_factory.mktemp("reference")
    env = env_for(home, registry_home)
    with (
        running_service(home, env=env) as service,
        ingester(replay_file, url=service.url, state=home / "ingest", env=env) as run,
    ):
        finish(run, home / "ingest")
    count, scores = champion_scores(home)
    assert TRANSACTIONS == count == len(scores)
    return scores


def test_the_service_killed_and_restarted_mid_replay(
    tmp_path: Path, replay_file: Path, registry_home: Path, reference: dict[str, float]
) -> None:
    """kill -9 the service after 1,500 are stored, start it again on the same port."""
    env = env_for(tmp_path, registry_home)
    port = free_port()
    with (
        running_service(tmp_path, env=env, port=port) as first,
        ingester(replay_file, url=first.url, state=tmp_path / "ingest", env=env) as run,
    ):
        wait_for(lambda: stored(tmp_path) >= KILL_AFTER, what="the first transactions")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        assert stored(tmp_path) < TRANSACTIONS
        time.sleep(2)  # the ingester meets a dead service and backs off
        assert run.poll() is None
        with running_service(tmp_path, env=env, port=port):
            finish(run, tmp_path / "ingest")
    count, scores = champion_scores(tmp_path)
    assert TRANSACTIONS == count
    assert reference == scores


def test_the_ingester_killed_and_restarted_mid_replay(
    tmp_path: Path, replay_file: Path, registry_home: Path, reference: dict[str, float]
) -> None:
    """kill -9 the ingester after 1,500 are stored, start it again with the same state."""
    env = env_for(tmp_path, registry_home)
    state = tmp_path / "ingest"
    with running_service(tmp_path, env=env) as service:
        with ingester(replay_file, url=service.url, state=state, env=env) as first:
            wait_for(lambda: stored(tmp_path) >= KILL_AFTER, what="the first transactions")
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
        assert stored(tmp_path) < TRANSACTIONS
        with ingester(replay_file, url=service.url, state=state, env=env) as second:
            finish(second, state)
    count, scores = champion_scores(tmp_path)
    assert TRANSACTIONS == count
    assert reference == scores


def test_redis_restarted_empty_mid_replay(
    tmp_path: Path,
    replay_file: Path,
    registry_home: Path,
    reference: dict[str, float],
    private_redis: PrivateRedis,
) -> None:
    """The service keeps its feature state in Redis; Redis is killed after 1,500 stored and
    started again empty. The service answers 503 meanwhile, notices the state is gone,
    rebuilds it from the warehouse, and the replay ends as if nothing had happened."""
    env = env_for(tmp_path, registry_home) | {"FRAUDOPS_REDIS_URL": private_redis.url}
    with (
        running_service(tmp_path, env=env) as service,
        ingester(replay_file, url=service.url, state=tmp_path / "ingest", env=env) as run,
    ):
        wait_for(lambda: stored(tmp_path) >= KILL_AFTER, what="the first transactions")
        private_redis.kill()
        time.sleep(1)
        private_redis.start()  # empty: every card's and merchant's state is gone
        finish(run, tmp_path / "ingest")
        assert "gone from the store: rebuilding it" in service.log()
    count, scores = champion_scores(tmp_path)
    assert TRANSACTIONS == count
    assert reference == scores
