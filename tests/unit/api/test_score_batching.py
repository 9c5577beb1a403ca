"""Concurrent POST /v1/score requests are scored together, each answered on its own."""

import asyncio
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest
from served_app import started_app

from embedded_service import sqlite_service
from fraudops.config import Settings
from fraudops.data.schema import CanonicalTransaction
from fraudops.features.state import FeatureStateUnavailableError, InMemoryStateStore
from fraudops.registry.memory import InMemoryRegistry
from fraudops.scoring.service import ScoringService
from fraudops.storage.warehouse import Warehouse

pytestmark = pytest.mark.anyio

YEAR_9999 = 253_402_300_799


@pytest.fixture
def batch_sizes(service: ScoringService) -> Iterator[list[int]]:
    """How many transactions each `score_each` call of the service took."""
    sizes: list[int] = []
    score_each = service.score_each

    def counted(transactions: Sequence[CanonicalTransaction]) -> Any:
        sizes.append(len(transactions))
        return score_each(transactions)

    service.score_each = counted  # type: ignore[method-assign]
    yield sizes


async def test_concurrent_requests_share_a_batch_and_a_refusal_stays_with_its_request(
    client: httpx.AsyncClient,
    bodies: list[dict[str, Any]],
    service: ScoringService,
    batch_sizes: list[int],
) -> None:
    """Twelve requests at once: the eight new ones are stored; a date far ahead is a 422, a
    stored trans_num with other content and a twin of another request are 409s, and a
    repeat of another request is its duplicate. None of them changes another's answer."""
    stored = bodies[20]
    assert 200 == (await client.post("/v1/score", json=stored)).status_code
    batch_sizes.clear()
    new = bodies[:8]
    poison = {k: v for k, v in bodies[8].items() if k != "trans_date_trans_time"}
    poison |= {"unix_time": YEAR_9999}
    conflicting = {**bodies[9], "trans_num": stored["trans_num"]}
    repeat = dict(new[3])
    twin = {**bodies[10], "trans_num": new[5]["trans_num"]}
    sent = [*new, poison, conflicting, repeat, twin]
    answers = await asyncio.gather(*(client.post("/v1/score", json=body) for body in sent))

    assert [200] * 8 + [422, 409, 200, 409] == [answer.status_code for answer in answers]
    assert max(batch_sizes) > 1, batch_sizes  # they were scored together
    assert sum(batch_sizes) == len(sent)
    assert ["body", "unix_time"] == answers[8].json()["detail"][0]["loc"]
    assert "amt" in answers[9].json()["detail"][0]["msg"]
    assert answers[10].json()["duplicate"] is True
    assert answers[10].json()["fraud_probability"] == answers[3].json()["fraud_probability"]
    assert ["body", "trans_num"] == answers[11].json()["detail"][0]["loc"]
    assert all(answer.json()["duplicate"] is False for answer in answers[:8])
    assert service.settle()
    for body, answer in zip(new, answers, strict=False):
        found = service.get_transaction(body["trans_num"])
        assert found is not None
        assert found.champion is not None
        assert found.champion.fraud_probability == answer.json()["fraud_probability"]
        assert body["amt"] == found.record["amt"]  # the twin changed nothing
    assert service.get_transaction(poison["trans_num"]) is None


async def test_scores_of_a_concurrent_batch_equal_those_sent_one_at_a_time(
    client: httpx.AsyncClient,
    bodies: list[dict[str, Any]],
    settings: Settings,
    registry: InMemoryRegistry,
    tmp_path: Path,
    batch_sizes: list[int],
) -> None:
    """The same 40 transactions, at once here and one by one on a second service: the very
    same probabilities and reasons (one card's transactions are read in arrival order)."""
    sent = bodies[:40]
    together = await asyncio.gather(*(client.post("/v1/score", json=body) for body in sent))
    assert max(batch_sizes) > 1
    (tmp_path / "alone").mkdir()
    alone = sqlite_service(settings, registry, tmp_path / "alone")
    async with started_app(settings, alone) as (_, http):
        singles = [(await http.post("/v1/score", json=body)).json() for body in sent]
    fields = ("trans_num", "fraud_probability", "decision", "reasons")
    assert [{f: s[f] for f in fields} for s in singles] == [
        {f: t.json()[f] for f in fields} for t in together
    ]


async def test_scoring_in_threads_takes_what_arrived_meanwhile_as_the_next_batch(
    settings: Settings,
    service: ScoringService,
    bodies: list[dict[str, Any]],
    batch_sizes: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As on PostgreSQL and Redis (scoring in worker threads), with one thread: the first
    request's batch holds it while the others arrive; they go together in the next one."""
    import fraudops.api.app as app_module  # noqa: PLC0415 - patched before the app starts

    monkeypatch.setattr(ScoringService, "blocking", property(lambda _: True))
    monkeypatch.setattr(app_module, "BATCH_THREADS", 1)
    score_each = service.score_each
    first_started = asyncio.Event()
    release = asyncio.Event()
    loop: asyncio.AbstractEventLoop | None = None

    def slow_first(transactions: Sequence[CanonicalTransaction]) -> Any:
        if not batch_sizes:  # the first batch: hold its thread until the others wait
            assert loop is not None
            loop.call_soon_threadsafe(first_started.set)
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=10)
        return score_each(transactions)

    service.score_each = slow_first  # type: ignore[method-assign]
    async with started_app(settings, service) as (_, http):
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(http.post("/v1/score", json=bodies[0]))
        await first_started.wait()
        rest = [asyncio.ensure_future(http.post("/v1/score", json=b)) for b in bodies[1:6]]
        for _ in range(50):  # every other request has reached the batcher
            await asyncio.sleep(0.01)
        release.set()
        answers = await asyncio.gather(first, *rest)
    assert [200] * 6 == [answer.status_code for answer in answers]
    assert [1, 5] == batch_sizes


class _FailingAfter(InMemoryStateStore):
    """In-process state that goes down after `good` more transitions (None: never)."""

    good: int | None = None

    def transact(self, *args: Any, **kwargs: Any) -> Any:
        if self.good == 0:
            raise FeatureStateUnavailableError("the state went down")
        if self.good is not None:
            self.good -= 1
        return super().transact(*args, **kwargs)


async def test_a_state_failing_part_way_fails_only_the_transactions_it_did_not_reach(
    settings: Settings, registry: InMemoryRegistry, tmp_path: Path, bodies: list[dict[str, Any]]
) -> None:
    """Three read, then the state fails: those three are stored and answered, the other two
    (and a repeat of one of them) get the state's error; nothing is raised for all."""
    store = _FailingAfter()
    service = ScoringService(
        settings=settings,
        warehouse=Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}"),
        registry=registry,
        store=store,
    )
    service.start()
    store.good = 3
    try:
        transactions = [CanonicalTransaction.model_validate(body) for body in bodies[:5]]
        outcomes = service.score_each([*transactions, transactions[4]])
        assert [Future] * 3 == [type(outcome) for outcome in outcomes[:3]]
        assert all(isinstance(o, FeatureStateUnavailableError) for o in outcomes[3:]), outcomes
        for transaction, outcome in zip(transactions, outcomes[:3], strict=False):
            assert isinstance(outcome, Future)
            assert transaction.trans_num == outcome.result(timeout=10).trans_num
        assert service.settle()
        for transaction in transactions:
            stored = service.get_transaction(transaction.trans_num)
            assert (stored is not None) == (transaction in transactions[:3])
    finally:
        service.stop()
