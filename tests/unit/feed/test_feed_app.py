"""The feed's HTTP contract, decoded exactly as clients of the public payments API do."""

import asyncio
import io
import json
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI
from feed_frames import build_sparkov_frame, ms

from fraudops.data.schema import FEED_COLUMNS
from fraudops.feed import (
    ManualClock,
    RateLimit,
    SlidingWindowRateLimiter,
    TransactionFeed,
    create_feed_app,
)

MINUTES = [f"2024-03-01 10:{m:02d}:00" for m in range(6)]


class FeedClient:
    """Calls the app in-process through httpx's ASGI transport.

    starlette's TestClient warns that it wants httpx2 instead of httpx, and warnings are errors.
    """

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """One GET request, as from a client at 127.0.0.1."""

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://feed") as client:
                return await client.get(url, params=params)

        return asyncio.run(call())


def client_for(feed: TransactionFeed, **options: Any) -> FeedClient:
    """A client of the feed app built with the given options."""
    return FeedClient(create_feed_app(feed, **options))


def decoded(response: httpx.Response) -> pd.DataFrame:
    """What a client of the public API does with a response."""
    return pd.read_json(io.StringIO(response.json()), orient="split")


def test_one_transaction_decodes_as_the_public_feed_does() -> None:
    """The body is a JSON string holding a split document of one row in FEED_COLUMNS order."""
    client = client_for(TransactionFeed.from_frame(build_sparkov_frame(MINUTES)))
    response = client.get("/current-transactions")
    assert 200 == response.status_code
    assert isinstance(response.json(), str)
    document = json.loads(response.json())
    assert list(FEED_COLUMNS) == document["columns"]
    assert 1 == len(document["data"])
    row = dict(zip(document["columns"], document["data"][0], strict=True))
    assert ms(MINUTES[0]) == row["current_time"]
    assert 4377338765909719 == row["cc_num"]
    assert (0, "t0", 10.5) == (row["is_fraud"], row["trans_num"], row["amt"])
    frame = decoded(response)
    assert list(FEED_COLUMNS) == frame.columns.tolist()
    assert 4377338765909719 == frame.loc[0, "cc_num"]
    assert pd.Timestamp(MINUTES[0]) == frame.loc[0, "current_time"]
    assert 0 == frame.loc[0, "is_fraud"]


def test_n_returns_that_many_rows_and_never_repeats_a_transaction() -> None:
    """?n=K gives K rows; consecutive calls continue where the last stopped."""
    client = client_for(TransactionFeed.from_frame(build_sparkov_frame(MINUTES)))
    first = decoded(client.get("/current-transactions", params={"n": 3}))
    second = decoded(client.get("/current-transactions", params={"n": 2}))
    assert ["t0", "t1", "t2"] == first["trans_num"].tolist()
    assert ["t3", "t4"] == second["trans_num"].tolist()
    assert list(FEED_COLUMNS) == second.columns.tolist()


@pytest.mark.parametrize("n", ["0", "-1", "1001", "abc", "2.5"])
def test_invalid_n_is_422_naming_the_parameter(n: str) -> None:
    """n outside 1..1000 or not an integer is refused with a message about n."""
    client = client_for(TransactionFeed.from_frame(build_sparkov_frame(MINUTES)))
    response = client.get("/current-transactions", params={"n": n})
    assert 422 == response.status_code
    [problem] = response.json()["detail"]
    assert ["query", "n"] == problem["loc"]
    assert problem["msg"]


def test_sixth_request_in_a_minute_gets_429_until_the_window_passes() -> None:
    """At 5/minute the sixth call is 429 with Retry-After; a minute later calls pass again."""
    clock = ManualClock()
    limiter = SlidingWindowRateLimiter(RateLimit(requests=5, period_s=60.0), clock=clock)
    client = client_for(
        TransactionFeed.from_frame(build_sparkov_frame(MINUTES * 2)), rate_limiter=limiter
    )
    assert [200] * 5 == [client.get("/current-transactions").status_code for _ in range(5)]
    clock.advance(10.0)
    refused = client.get("/current-transactions")
    assert 429 == refused.status_code
    assert "50" == refused.headers["Retry-After"]
    assert "rate limit of 5 per 60 s exceeded" in refused.json()["detail"]
    assert 429 == client.get("/labels").status_code
    assert 200 == client.get("/healthz").status_code
    clock.advance(50.0)
    assert 200 == client.get("/current-transactions").status_code


def test_exhausted_feed_answers_410_with_a_message() -> None:
    """Once every row is served the feed answers 410 Gone, saying how to replay."""
    client = client_for(TransactionFeed.from_frame(build_sparkov_frame(MINUTES[:2])))
    assert 200 == client.get("/current-transactions", params={"n": 2}).status_code
    gone = client.get("/current-transactions")
    assert 410 == gone.status_code
    assert "served all 2 transactions" in gone.json()["detail"]
    assert "--loop" in gone.json()["detail"]


def test_looping_feed_keeps_serving() -> None:
    """With loop the feed starts again instead of answering 410."""
    client = client_for(TransactionFeed.from_frame(build_sparkov_frame(MINUTES[:2]), loop=True))
    ids = [decoded(client.get("/current-transactions"))["trans_num"].iloc[0] for _ in range(5)]
    assert ["t0", "t1", "t0-1", "t1-1", "t0-2"] == ids


def test_speed_request_waits_for_the_next_row_then_serves_it() -> None:
    """Under speed a request with nothing due waits (on the fake clock) until the row is due."""
    clock = ManualClock()
    feed = TransactionFeed.from_frame(build_sparkov_frame(MINUTES), speed=60.0, clock=clock)
    client = client_for(feed, max_wait_s=5.0, sleep=clock.sleep)
    assert ["t0"] == decoded(client.get("/current-transactions", params={"n": 5}))[
        "trans_num"
    ].tolist()
    second = decoded(client.get("/current-transactions"))
    assert (["t1"], 1.0) == (second["trans_num"].tolist(), clock())


def test_speed_request_gets_204_when_nothing_is_due_within_the_wait() -> None:
    """If the next row is further away than the maximum wait the answer is 204 No Content."""
    clock = ManualClock()
    frame = build_sparkov_frame(["2024-03-01 10:00:00", "2024-03-01 11:00:00"])
    feed = TransactionFeed.from_frame(frame, speed=60.0, clock=clock)
    client = client_for(feed, max_wait_s=5.0, sleep=clock.sleep)
    client.get("/current-transactions")
    nothing = client.get("/current-transactions")
    assert (204, b"", 5.0) == (nothing.status_code, nothing.content, clock())
    no_wait = client_for(
        TransactionFeed.from_frame(frame, speed=60.0, clock=clock),
        max_wait_s=0.0,
        sleep=clock.sleep,
    )
    no_wait.get("/current-transactions")
    assert 204 == no_wait.get("/current-transactions").status_code
    assert 5.0 == clock()


def test_delayed_labels_are_withheld_from_the_stream_and_served_after_the_delay() -> None:
    """is_fraud is null in the stream; /labels lists a label only once its delay has passed."""
    client = client_for(TransactionFeed.from_frame(build_sparkov_frame(MINUTES), label_delay_s=120))
    stream = decoded(client.get("/current-transactions", params={"n": 2}))
    assert stream["is_fraud"].isna().all()
    before = client.get("/labels").json()
    assert ([], ms(MINUTES[1])) == (before["labels"], before["until"])
    client.get("/current-transactions", params={"n": 2})
    after = client.get("/labels", params={"since": before["until"]}).json()
    assert [
        {
            "trans_num": "t0",
            "is_fraud": 0,
            "event_time": ms(MINUTES[0]),
            "label_time": ms(MINUTES[2]),
        },
        {
            "trans_num": "t1",
            "is_fraud": 1,
            "event_time": ms(MINUTES[1]),
            "label_time": ms(MINUTES[3]),
        },
    ] == after["labels"]
    assert ms(MINUTES[3]) == after["until"]
    assert [] == client.get("/labels", params={"since": after["until"]}).json()["labels"]


def test_labels_endpoint_is_404_when_labels_are_in_the_stream() -> None:
    """Without delayed-label mode /labels says the mode is off."""
    client = client_for(TransactionFeed.from_frame(build_sparkov_frame(MINUTES)))
    response = client.get("/labels")
    assert 404 == response.status_code
    assert "delayed-label mode is off" in response.json()["detail"]


def test_healthz_counts_served_and_remaining_rows() -> None:
    """Health reports status ok with served and remaining counts."""
    client = client_for(TransactionFeed.from_frame(build_sparkov_frame(MINUTES)))
    client.get("/current-transactions", params={"n": 4})
    assert {"status": "ok", "served": 4, "remaining": 2} == client.get("/healthz").json()
