"""fraudops.client against a real `fraudops serve`: every call, both clients, the errors."""

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from champion_registry import champion_env, register_champion

from fraudops.client import AsyncFraudOpsClient, FraudOpsClient, FraudOpsError, RetryPolicy
from fraudops.data.schema import CanonicalTransaction
from fraudops.training.bundle import ModelBundle
from service_process import TOKEN, ServiceProcess, running_service
from transaction_bodies import request_body

pytestmark = pytest.mark.integration
SERVICE_BATCH_LIMIT = 5


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    train_bundle: Callable[..., ModelBundle],
    sample_frame: pd.DataFrame,
) -> Iterator[ServiceProcess]:
    """A service (SQLite, in-process state) whose batch limit is 5, serving a champion."""
    registry_home = register_champion(
        tmp_path_factory.mktemp("registry"), train_bundle, sample_frame
    )
    home = tmp_path_factory.mktemp("service")
    env = champion_env(home, registry_home, batch_limit=str(SERVICE_BATCH_LIMIT))
    with running_service(home, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def bodies(sample_frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The sample's first 40 transactions in time order, as canonical bodies."""
    ordered = sample_frame.sort_values("event_time", kind="stable").head(40)
    return [request_body(row) for row in ordered.to_dict("records")]


def batch_requests(service: ServiceProcess) -> Counter[str]:
    """POST /v1/score/batch requests the service answered so far, by status."""
    text = httpx.get(f"{service.url}/metrics", timeout=10).text
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        found = re.match(r"fraudops_http_requests_total\{(.*)\} ([0-9.e+]+)$", line)
        if found and 'route="/v1/score/batch"' in found.group(1):
            status = re.search(r'status="(\d+)"', found.group(1))
            assert status is not None
            counts[status.group(1)] += int(float(found.group(2)))
    return counts


def test_score_label_read_back_and_models(
    service: ServiceProcess, bodies: list[dict[str, Any]]
) -> None:
    """One score (a dict), the same again (a model: the stored verdict, duplicate), its label,
    the stored transaction with score and label, the champion in service."""
    with FraudOpsClient(service.url, token=TOKEN, timeout=30) as client:
        first = client.score(bodies[0])
        again = client.score(CanonicalTransaction.model_validate(bodies[0]))
        labelled = client.label(
            bodies[0]["trans_num"], is_fraud=True, source="analyst", analyst="alice"
        )
        stored = client.transaction(bodies[0]["trans_num"])
        models = client.models()
    assert (bodies[0]["trans_num"], False) == (first.trans_num, first.duplicate)
    assert first.decision in {"approve", "review", "decline"}
    assert "fraud-detector" == first.model.name
    assert (True, first.fraud_probability) == (again.duplicate, again.fraud_probability)
    assert (1, ()) == (labelled.stored, labelled.unknown_trans_nums)
    assert stored.champion is not None and stored.label is not None
    assert (first.fraud_probability, "analyst", "alice") == (
        stored.champion.fraud_probability,
        stored.label.source,
        stored.label.analyst,
    )
    assert "masked" == stored.personal_data
    assert models.champion is not None and models.challenger is None
    assert first.model.version == models.champion.version


def test_score_many_goes_in_chunks_of_the_services_limit(
    service: ServiceProcess, bodies: list[dict[str, Any]]
) -> None:
    """12 transactions with the client's default limit (1000) to a service limited to 5: one
    413, then chunks of 5; every result in order, and a second pass all duplicates."""
    items = bodies[1:13]
    before = batch_requests(service)
    with FraudOpsClient(service.url, token=TOKEN, timeout=30) as client:
        results = client.score_many(items)
        assert SERVICE_BATCH_LIMIT == client.batch_limit
        assert {"200": 3, "413": 1} == batch_requests(service) - before  # 5, 5, 2
        repeated = client.score_many(items)
    assert [b["trans_num"] for b in items] == [r.trans_num for r in results]
    assert [False] * 12 == [r.duplicate for r in results]
    assert [r.fraud_probability for r in results] == [r.fraud_probability for r in repeated]
    assert [True] * 12 == [r.duplicate for r in repeated]


def test_labels_many_sum_their_outcomes(
    service: ServiceProcess, bodies: list[dict[str, Any]]
) -> None:
    """7 labels (over two requests of the limit), one of them for an unknown transaction."""
    with FraudOpsClient(service.url, token=TOKEN, timeout=30) as client:
        client.score_many(bodies[13:19])
        labels = [{"trans_num": b["trans_num"], "is_fraud": False} for b in bodies[13:19]]
        outcome = client.labels([*labels, {"trans_num": "not-seen-yet", "is_fraud": True}])
    assert (7, ("not-seen-yet",)) == (outcome.stored, outcome.unknown_trans_nums)


def test_refusals_raise_with_the_status_and_the_services_detail(
    service: ServiceProcess, bodies: list[dict[str, Any]]
) -> None:
    """A negative amount is a 422 naming amt; a reused trans_num a 409; an unknown one a
    404; a wrong token a 401: none retried (no wait recorded)."""
    waits: list[float] = []
    with FraudOpsClient(service.url, token=TOKEN, timeout=30, sleep=waits.append) as client:
        with pytest.raises(FraudOpsError) as invalid:
            client.score(bodies[20] | {"amt": -1})
        client.score(bodies[21])
        with pytest.raises(FraudOpsError) as conflict:
            client.score(bodies[21] | {"amt": bodies[21]["amt"] + 1})
        with pytest.raises(FraudOpsError) as missing:
            client.transaction("never-sent")
    with (
        FraudOpsClient(service.url, token="x" * 32, sleep=waits.append) as stranger,
        pytest.raises(FraudOpsError) as unauthorised,
    ):
        stranger.models()
    assert 422 == invalid.value.status
    assert ["body", "amt"] == invalid.value.detail[0]["loc"]
    assert (409, bodies[21]["trans_num"]) == (
        conflict.value.status,
        conflict.value.detail[0]["trans_num"],
    )
    assert (404, "no stored transaction 'never-sent'") == (
        missing.value.status,
        missing.value.detail,
    )
    assert 401 == unauthorised.value.status
    assert [] == waits


@pytest.mark.anyio
async def test_the_async_client_does_the_same(
    service: ServiceProcess, bodies: list[dict[str, Any]]
) -> None:
    """AsyncFraudOpsClient: score, score_many, label, transaction, models against the service."""
    async with AsyncFraudOpsClient(
        service.url, token=TOKEN, timeout=30, retry=RetryPolicy(retries=1)
    ) as client:
        one = await client.score(bodies[30])
        many = await client.score_many(bodies[30:37])
        labelled = await client.label(bodies[31]["trans_num"], is_fraud=False)
        stored = await client.transaction(bodies[31]["trans_num"])
        models = await client.models()
    assert [True] + [False] * 6 == [r.duplicate for r in many]
    assert one.fraud_probability == many[0].fraud_probability
    assert 1 == labelled.stored
    assert stored.label is not None and stored.label.is_fraud is False
    assert models.champion is not None


@pytest.fixture
def anyio_backend() -> str:
    """The async client on asyncio."""
    return "asyncio"


def test_a_transaction_whose_trans_num_holds_a_slash_and_spaces_reads_back(
    service: ServiceProcess, bodies: list[dict[str, Any]]
) -> None:
    """The path is quoted, '/' kept as the route allows."""
    trans_num = "batch 7/item #1?"
    with FraudOpsClient(service.url, token=TOKEN, timeout=30) as client:
        client.score(bodies[38] | {"trans_num": trans_num})
        assert trans_num == client.transaction(trans_num).trans_num
