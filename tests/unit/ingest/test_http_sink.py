"""The ingester's HTTP sink maps the client's errors onto its own no-loss semantics.

A real service is behind the sink in tests/integration/test_ingest_faults.py; the answers
here (a 503 with Retry-After, a 422 naming items) come from httpx's MockTransport, and the
refused connection from a local port nothing listens on.
"""

import json
from typing import Any

import httpx
import pytest

from fraudops.data.profile_schema import transaction_schema
from fraudops.data.profiles import FDH
from fraudops.data.schema import CanonicalTransaction
from fraudops.ingest.sinks import (
    HttpSink,
    ItemsRefusedError,
    SinkRefusedError,
    SinkUnavailableError,
)
from ports import free_port

TRANSACTIONS = [
    CanonicalTransaction.model_validate(
        {"trans_num": f"t-{n}", "cc_num": 1, "merchant": "m", "category": "c", "amt": 1.0,
         "unix_time": 1_700_000_000 + n}
    )
    for n in range(2)
]  # fmt: skip


def sink_answering(response: httpx.Response) -> tuple[HttpSink, list[httpx.Request]]:
    """An HTTP sink whose service answers `response` to every request."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response

    sink = HttpSink("http://service", token="t" * 20)
    sink._client._http._transport = httpx.MockTransport(handle)
    return sink, seen


@pytest.mark.parametrize(
    ("response", "error", "retry_after"),
    [
        (httpx.Response(503, headers={"Retry-After": "4"}, json={"detail": "x"}),
         SinkUnavailableError, 4.0),
        (httpx.Response(429, json={"detail": "x"}), SinkUnavailableError, None),
        (httpx.Response(500, json={"detail": "x"}), SinkUnavailableError, None),
        (httpx.Response(401, json={"detail": "x"}), SinkRefusedError, None),
        (httpx.Response(404, json={"detail": "x"}), SinkRefusedError, None),
    ],
)  # fmt: skip
def test_failures_are_retried_by_the_ingester_or_stop_it(
    response: httpx.Response, error: type[Exception], retry_after: float | None
) -> None:
    """One request each (the client does not retry inside the sink); 429 and 5xx mean wait
    and resend, 401 and 404 mean stop."""
    sink, seen = sink_answering(response)
    with pytest.raises(error) as raised:
        sink.submit(TRANSACTIONS)
    assert 1 == len(seen)
    if isinstance(raised.value, SinkUnavailableError):
        assert retry_after == raised.value.retry_after


def test_items_a_422_names_are_set_aside_by_position() -> None:
    """A 422 locating the second transaction: ItemsRefusedError {1: field: why}."""
    detail: list[dict[str, Any]] = [
        {"loc": ["body", "transactions", 1, "unix_time"], "msg": "ahead", "type": "value_error"}
    ]
    sink, _ = sink_answering(httpx.Response(422, json={"detail": detail}))
    with pytest.raises(ItemsRefusedError) as raised:
        sink.submit(TRANSACTIONS)
    assert {1: "unix_time: ahead"} == raised.value.refused


def test_an_unreachable_service_is_unavailable_not_refused() -> None:
    """Nothing listening: SinkUnavailableError, so the ingester keeps the batch and waits."""
    sink = HttpSink(f"http://127.0.0.1:{free_port()}", token=None)
    with pytest.raises(SinkUnavailableError):
        sink.submit(TRANSACTIONS)
    sink.close()


def test_a_profile_s_transactions_go_out_in_its_own_columns() -> None:
    """With an fdh schema the sink posts fdh fields, as the fdh champion's service reads them."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={"results": [{"trans_num": "f1", "duplicate": False, "fraud_probability": 0.1,
                               "decision": "approve", "model": {"name": "m", "version": "1"},
                               "reasons": [], "latency_ms": 1.0, "scoring_latency_ms": 1.0}]},
        )  # fmt: skip

    schema = transaction_schema(FDH)
    sink = HttpSink("http://service", token="t" * 20, schema=schema)
    sink._client._http._transport = httpx.MockTransport(handle)
    request = {"TRANSACTION_ID": "f1", "TX_DATETIME": "2024-02-01T10:00:00",
               "CUSTOMER_ID": 12345, "TERMINAL_ID": 7, "TX_AMOUNT": 9.5}  # fmt: skip
    stored = sink.submit([schema.canonical(request)]).result()
    assert ["f1"] == [s.trans_num for s in stored]
    assert {
        "TRANSACTION_ID": "f1",
        "TX_DATETIME": "2024-02-01T10:00:00",
        "CUSTOMER_ID": "12345",
        "TERMINAL_ID": "7",
        "TX_AMOUNT": 9.5,
    } == json.loads(seen[0].content)["transactions"][0]
