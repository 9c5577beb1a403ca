"""The client's behaviour when the service is overloaded, restarting or unreachable.

The happy paths run against a real `fraudops serve` (tests/integration/test_client.py). A
real service cannot be made to answer 429 or 503 with a chosen Retry-After on demand, so
these tests put httpx's MockTransport in its place, and only for those answers; the refused
connection is real (a local port nothing listens on).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from fraudops.api import schemas
from fraudops.client import (
    AsyncFraudOpsClient,
    FraudOpsClient,
    FraudOpsError,
    LabelsResult,
    ModelInfo,
    ModelRef,
    ModelsInService,
    Reason,
    RetryPolicy,
    ScoreResult,
    StoredLabel,
    StoredScore,
    StoredTransaction,
)
from fraudops.client.retry import retry_after_seconds
from ports import free_port

TRANSACTION = {"trans_num": "t-1", "cc_num": 1, "merchant": "m", "category": "c", "amt": 1.0}


def verdict(trans_num: str, *, duplicate: bool = False) -> dict[str, Any]:
    """A score answer as the service writes it."""
    return {
        "trans_num": trans_num,
        "fraud_probability": 0.25,
        "decision": "approve",
        "model": {"name": "fraud-detector", "version": "1"},
        "reasons": [{"feature": "amount", "value": 1.0, "contribution": 0.1, "text": "amount 1"}],
        "latency_ms": 1.5,
        "scoring_latency_ms": 0.4,
        "duplicate": duplicate,
    }


def scripted(*answers: httpx.Response) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering the given responses in turn, and the requests it saw."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return httpx.MockTransport(handle), seen


def client_with(
    transport: httpx.MockTransport, waits: list[float], **options: Any
) -> FraudOpsClient:
    """A blocking client on a scripted transport, recording its waits instead of sleeping."""
    return FraudOpsClient(
        "http://service", token="t" * 20, transport=transport, sleep=waits.append, **options
    )


def test_a_429_is_retried_after_the_seconds_retry_after_asks_for() -> None:
    """429 with Retry-After: 2, then the verdict: one wait of at least 2 s, the verdict back."""
    transport, seen = scripted(
        httpx.Response(429, headers={"Retry-After": "2"}, json={"detail": "slow down"}),
        httpx.Response(200, json=verdict("t-1")),
    )
    waits: list[float] = []
    with client_with(transport, waits) as client:
        result = client.score(TRANSACTION)
    assert "t-1" == result.trans_num
    assert 2 == len(seen)
    assert 1 == len(waits) and waits[0] >= 2.0
    assert f"Bearer {'t' * 20}" == seen[0].headers["Authorization"]


def test_a_503_with_an_http_date_retry_after_is_waited_for() -> None:
    """Retry-After as an HTTP date 5 s ahead: the wait is about 5 s."""
    later = format_datetime(datetime.fromtimestamp(datetime.now(UTC).timestamp() + 5, UTC), True)
    transport, _ = scripted(
        httpx.Response(503, headers={"Retry-After": later}, json={"detail": "restarting"}),
        httpx.Response(200, json=verdict("t-1", duplicate=True)),
    )
    waits: list[float] = []
    with client_with(transport, waits) as client:
        assert client.score(TRANSACTION).duplicate is True
    assert 1 == len(waits) and 3.5 < waits[0] <= 5.0


def test_backoff_grows_and_gives_up_with_the_last_status() -> None:
    """503 every time: 3 retries with growing ceilings, then FraudOpsError(503, detail)."""
    transport, seen = scripted(*[httpx.Response(503, json={"detail": "no model"})] * 4)
    waits: list[float] = []
    with (
        client_with(transport, waits, retry=RetryPolicy(retries=3, base=1.0, cap=100.0)) as client,
        pytest.raises(FraudOpsError) as raised,
    ):
        client.models()
    assert 4 == len(seen)
    assert 3 == len(waits)
    assert all(0 <= wait <= 2.0**n for n, wait in enumerate(waits, start=1))
    assert (503, "no model", True) == (
        raised.value.status,
        raised.value.detail,
        raised.value.transient,
    )


def test_a_retry_after_beyond_the_longest_wait_is_not_waited_for() -> None:
    """Retry-After: 3600 with max_wait 60: no wait, the error carries retry_after=3600."""
    transport, seen = scripted(httpx.Response(429, headers={"Retry-After": "3600"}, json={}))
    waits: list[float] = []
    with client_with(transport, waits) as client, pytest.raises(FraudOpsError) as raised:
        client.score(TRANSACTION)
    assert ([], 1, 3600.0) == (waits, len(seen), raised.value.retry_after)


@pytest.mark.parametrize("status", [400, 500])
def test_client_errors_and_500_are_not_retried_and_carry_the_detail(status: int) -> None:
    """A 4xx or a 500 (a bug, not an overload) raises at once with the service's detail
    (401, 404, 409 and 422 from the real service: tests/integration/test_client.py)."""
    detail = [{"loc": ["body", "amt"], "msg": "must be finite", "type": "value_error"}]
    transport, seen = scripted(httpx.Response(status, json={"detail": detail}))
    waits: list[float] = []
    with client_with(transport, waits) as client, pytest.raises(FraudOpsError) as raised:
        client.score(TRANSACTION)
    assert (status, detail, False, 1, []) == (
        raised.value.status,
        raised.value.detail,
        raised.value.transient,
        len(seen),
        waits,
    )


def test_a_refused_connection_is_retried_then_raised_without_a_status() -> None:
    """Nothing listens on the port: every attempt is refused; status None, transient."""
    waits: list[float] = []
    client = FraudOpsClient(
        f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(retries=2), sleep=waits.append
    )
    with client, pytest.raises(FraudOpsError) as raised:
        client.score(TRANSACTION)
    assert (None, True, 2) == (raised.value.status, raised.value.transient, len(waits))
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


@pytest.fixture
def anyio_backend() -> str:
    """The async client on asyncio."""
    return "asyncio"


@pytest.mark.anyio
async def test_the_async_client_retries_a_503_then_a_refused_connection() -> None:
    """AsyncFraudOpsClient: the same retries, awaited; a transport error is retried too."""
    answers: list[Callable[[httpx.Request], httpx.Response]] = [
        lambda _: httpx.Response(503, headers={"Retry-After": "1"}, json={"detail": "busy"}),
        lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused", request=request)),
        lambda _: httpx.Response(200, json=verdict("t-1")),
    ]
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    def handle(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)(request)

    transport = httpx.MockTransport(handle)
    async with AsyncFraudOpsClient("http://s", transport=transport, sleep=record) as client:
        result = await client.score(TRANSACTION)
    assert "t-1" == result.trans_num
    assert 2 == len(waits) and waits[0] >= 1.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("-3", 0.0), ("Sat, 05 Dec 2026 00:00:10 GMT", 10.0), ("soon", None),
     (None, None), ("Fri, 04 Dec 2026 23:59:00 GMT", 0.0)],
)  # fmt: skip
def test_retry_after_is_read_in_both_forms(header: str | None, seconds: float | None) -> None:
    """Delay seconds, or an HTTP date (measured from now); nonsense is ignored."""
    now = datetime(2026, 12, 5, 0, 0, 0, tzinfo=UTC)
    assert seconds == retry_after_seconds(header, now=now)


@pytest.mark.parametrize(
    ("mirror", "schema"),
    [
        (ScoreResult, schemas.ScoreResponse),
        (Reason, schemas.ReasonOut),
        (ModelRef, schemas.ModelRef),
        (LabelsResult, schemas.LabelsResponse),
        (StoredTransaction, schemas.TransactionOut),
        (StoredScore, schemas.StoredScoreOut),
        (StoredLabel, schemas.LabelOut),
        (ModelInfo, schemas.ModelOut),
        (ModelsInService, schemas.ModelsResponse),
    ],
)
def test_the_client_results_mirror_the_service_responses(mirror: Any, schema: Any) -> None:
    """Each typed result has exactly the fields of the response it reads."""
    assert list(schema.model_fields) == list(mirror.model_fields)
