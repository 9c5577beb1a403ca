"""A Redis that restarts empty mid-stream: the service rebuilds its state and scores on exactly.

Each test runs its own `redis-server` (nothing saved to disk, as in production), kills it
with SIGKILL and starts it again on the same port, under a ScoringService in this process.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from private_redis import PrivateRedis

from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.data.schema import CanonicalTransaction
from fraudops.features.online import OnlineFeatureEngine
from fraudops.features.redis_store import RedisStateStore
from fraudops.features.state import (
    Claim,
    FeatureStateStore,
    FeatureStateUnavailableError,
    InMemoryStateStore,
)
from fraudops.registry.memory import InMemoryRegistry
from fraudops.scoring.service import ScoringService
from fraudops.simulate import SimulationConfig, simulate, write_transactions
from fraudops.storage.base import StoredResult
from fraudops.storage.warehouse import Warehouse
from fraudops.training.bundle import ModelBundle
from transaction_bodies import request_body

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Stream:
    """Time-ordered transactions (labelled, as the feed sends them), and a model for them."""

    frame: pd.DataFrame
    bundle: ModelBundle
    transactions: list[CanonicalTransaction]


@pytest.fixture(scope="module")
def stream(
    tmp_path_factory: pytest.TempPathFactory, train_bundle: Callable[..., ModelBundle]
) -> Stream:
    """~900 purchases of 40 cards at 14 merchants over 20 days: cards and merchants recur."""
    path = tmp_path_factory.mktemp("recovery") / "stream.parquet"
    config = SimulationConfig(days=20, cards=40, merchants=14, fraud_rate=0.05, seed=8)
    write_transactions(simulate(config), path)
    frame = load_transactions(path, SPARKOV).frame
    frame = frame.sort_values(["event_time", "trans_num"], kind="stable").reset_index(drop=True)
    transactions = [
        CanonicalTransaction.model_validate(request_body(row) | {"is_fraud": int(row["is_fraud"])})
        for row in frame.to_dict("records")
    ]
    return Stream(frame, train_bundle(frame, threshold=0.5, seed=3), transactions)


def scoring_service(
    folder: Path, stream: Stream, store: FeatureStateStore, name: str
) -> ScoringService:
    """A started service on its own SQLite warehouse, the stream's model as champion."""
    registry = InMemoryRegistry()
    registry.log_training(
        stream.bundle, input_example=stream.frame.head(3), dataset_fingerprint="recovery"
    )
    service = ScoringService(
        settings=Settings(home=folder / name, _env_file=None),  # type: ignore[call-arg]
        warehouse=Warehouse(f"sqlite:///{folder / name}.db"),
        registry=registry,
        store=store,
    )
    service.start()
    return service


def score_all(
    service: ScoringService,
    transactions: Sequence[CanonicalTransaction],
    *,
    refusals: list[str] | None = None,
) -> dict[str, StoredResult]:
    """Score in order, each once stored; a refused one is sent again, as a client retries."""
    results = {}
    for transaction in transactions:
        deadline = time.monotonic() + 60
        while True:
            try:
                results[transaction.trans_num] = service.score(transaction).result(timeout=30)
                break
            except FeatureStateUnavailableError as error:
                if refusals is None or time.monotonic() > deadline:
                    raise
                refusals.append(str(error))
                time.sleep(0.02)
    return results


@pytest.fixture(scope="module")
def uninterrupted(
    tmp_path_factory: pytest.TempPathFactory, stream: Stream
) -> dict[str, StoredResult]:
    """Every transaction's stored result from a service whose state was never lost."""
    service = scoring_service(
        tmp_path_factory.mktemp("uninterrupted"), stream, InMemoryStateStore(), "reference"
    )
    try:
        return score_all(service, stream.transactions)
    finally:
        service.stop()


def assert_as_uninterrupted(
    expected: dict[str, StoredResult], actual: dict[str, StoredResult]
) -> None:
    """Same transactions, each newly stored, with the very same features and probability."""
    assert list(expected) == list(actual)
    assert all(result.created for result in actual.values())
    for trans_num, result in actual.items():
        reference = expected[trans_num].score
        assert reference.fraud_probability == result.score.fraud_probability, trans_num
        np.testing.assert_array_equal(
            np.array(list(reference.features.values()), dtype=float),
            np.array(list(result.score.features.values()), dtype=float),
            err_msg=trans_num,
        )


def test_scoring_after_a_redis_restart_rebuilds_and_matches_an_uninterrupted_run(
    tmp_path: Path,
    private_redis: PrivateRedis,
    stream: Stream,
    uninterrupted: dict[str, StoredResult],
) -> None:
    """Redis dies mid-stream and comes back empty; requests fail (503) until rebuilt, then match.

    While Redis is down a request fails with FeatureStateUnavailableError; the first one
    after it is back finds the initialised mark gone and starts the rebuild from the
    warehouse; requests meanwhile are refused as rebuilding, and retried.
    """
    store = RedisStateStore.from_url(private_redis.url, prefix="recovery")
    service = scoring_service(tmp_path, stream, store, "redis")
    split = len(stream.transactions) * 3 // 5
    try:
        before = score_all(service, stream.transactions[:split])
        private_redis.kill()
        with pytest.raises(FeatureStateUnavailableError, match="unavailable"):
            service.score(stream.transactions[split])
        private_redis.start()
        refusals: list[str] = []
        after = score_all(service, stream.transactions[split:], refusals=refusals)
        assert None is service.readiness()
        assert store.initialised()
    finally:
        service.stop()
    assert any("rebuilding" in refusal for refusal in refusals), refusals
    assert_as_uninterrupted(uninterrupted, before | after)


def test_a_lost_state_is_noticed_and_rebuilt_without_a_request(
    tmp_path: Path,
    private_redis: PrivateRedis,
    stream: Stream,
    uninterrupted: dict[str, StoredResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis restarts while no request comes: the periodic check rebuilds the state by itself."""
    monkeypatch.setattr("fraudops.scoring.supervision.STATE_CHECK_SECONDS", 0.1)
    store = RedisStateStore.from_url(private_redis.url, prefix="recovery")
    service = scoring_service(tmp_path, stream, store, "redis")
    split = len(stream.transactions) // 3
    try:
        before = score_all(service, stream.transactions[:split])
        private_redis.kill()
        private_redis.start()
        watcher = RedisStateStore.from_url(private_redis.url, prefix="recovery")
        deadline = time.monotonic() + 30
        while not watcher.initialised() and time.monotonic() < deadline:
            time.sleep(0.05)
        watcher.close()
        assert store.initialised(), "the service did not rebuild the lost state by itself"
        for _ in range(100):  # the mark comes with the last write; readiness follows it
            if service.readiness() is None:
                break
            time.sleep(0.02)
        assert None is service.readiness()
        after = score_all(service, stream.transactions[split:])
    finally:
        service.stop()
    assert_as_uninterrupted(uninterrupted, before | after)


def test_state_changes_of_a_replica_that_died_before_storing_are_undone(
    tmp_path: Path,
    private_redis: PrivateRedis,
    stream: Stream,
    uninterrupted: dict[str, StoredResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another replica adds 60 transactions to the shared state and dies before its commit
    (kill -9 mid-batch), so they are never stored: the service notices the unconfirmed
    claims, rebuilds the state from the warehouse, and later transactions of the same cards
    score as if those 60 had never been seen."""
    monkeypatch.setattr("fraudops.scoring.supervision.STATE_CHECK_SECONDS", 0.1)
    monkeypatch.setattr("fraudops.features.redis_store.HEARTBEAT_MILLISECONDS", 1_000)
    store = RedisStateStore.from_url(private_redis.url, prefix="recovery")
    service = scoring_service(tmp_path, stream, store, "redis")
    split = len(stream.transactions) // 2
    ghosts = [
        transaction.model_copy(update={"trans_num": f"ghost-{transaction.trans_num}"})
        for transaction in stream.transactions[split : split + 60]
    ]
    try:
        before = score_all(service, stream.transactions[:split])
        dying = RedisStateStore.from_url(private_redis.url, prefix="recovery")
        dying.heartbeat()  # alive while it works, for a second
        champion = service.models.champion
        assert champion is not None
        engine = OnlineFeatureEngine(champion.bundle.spec, dying)
        for ghost in ghosts:
            protected = service.personal.protect(ghost)
            engine.features_then_update(
                champion.record(protected.transaction),
                claim=Claim(protected.trans_num, protected.fingerprint),
            )
        dying.close()  # no heartbeat any more: as a replica killed before it confirmed
        deadline = time.monotonic() + 30
        while service.metrics.state_reconciled._value.get() < 1:
            assert time.monotonic() < deadline, "the service never noticed the unstored state"
            time.sleep(0.05)
        refusals: list[str] = []
        after = score_all(service, stream.transactions[split:], refusals=refusals)
    finally:
        service.stop()
    assert_as_uninterrupted(uninterrupted, before | after)
