"""Existing clients' bodies: bare arrays, the live feed's split document, its times as pandas
writes them back, dates split into fields; each scores as it is, or a 422 says what to send."""

import io
import json
import warnings
from typing import Any

import httpx
import pandas as pd
import pytest

from fraudops.feed.state import TransactionFeed

pytestmark = pytest.mark.anyio


def feed_body(sample_frame: pd.DataFrame, rows: int) -> str:
    """What the live feed answers for `?n=rows`: a JSON string holding a split document."""
    document = TransactionFeed.from_frame(sample_frame).next_batch(rows).document
    assert document is not None
    return json.dumps(document)


async def test_a_bare_array_scores_like_the_transactions_object(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """[{...}, {...}] answers what {"transactions": [...]} would: one result each, in order."""
    response = await client.post("/v1/score/batch", json=bodies[:3])
    assert 200 == response.status_code
    assert [b["trans_num"] for b in bodies[:3]] == [
        r["trans_num"] for r in response.json()["results"]
    ]
    again = await client.post("/v1/score/batch", json={"transactions": bodies[:3]})
    assert [True] * 3 == [r["duplicate"] for r in again.json()["results"]]


async def test_the_feeds_split_document_scores_as_it_comes(
    client: httpx.AsyncClient, sample_frame: pd.DataFrame
) -> None:
    """The feed's body decoded once ({"columns", "index", "data"}) or forwarded as it came
    (the JSON string) scores each row; is_fraud is stored as a label, not an input."""
    body = feed_body(sample_frame, 4)
    document = json.loads(json.loads(body))
    decoded = await client.post("/v1/score/batch", json=document)
    assert 200 == decoded.status_code
    trans_nums = [row[document["columns"].index("trans_num")] for row in document["data"]]
    assert trans_nums == [r["trans_num"] for r in decoded.json()["results"]]
    forwarded = await client.post(
        "/v1/score/batch", content=body, headers={"Content-Type": "application/json"}
    )
    assert 200 == forwarded.status_code
    assert [True] * 4 == [r["duplicate"] for r in forwarded.json()["results"]]
    stored = (await client.get(f"/v1/transactions/{trans_nums[0]}")).json()
    assert "feed" == stored["label"]["source"]


@pytest.mark.parametrize("date_format", [None, "iso"])
async def test_a_frame_read_from_the_feed_and_written_as_records_scores_as_it_is(
    client: httpx.AsyncClient, sample_frame: pd.DataFrame, date_format: str | None
) -> None:
    """pd.read_json(..., orient="split") then to_json(orient="records"): current_time comes
    back as epoch ms (pandas' default today) or ISO text (its future default, "iso")."""
    frame = pd.read_json(io.StringIO(json.loads(feed_body(sample_frame, 3))), orient="split")
    if date_format is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas announces its default moves to "iso"
            records = frame.to_json(orient="records")
    else:
        records = frame.to_json(orient="records", date_format=date_format)
    response = await client.post(
        "/v1/score/batch", content=records, headers={"Content-Type": "application/json"}
    )
    assert 200 == response.status_code, response.text
    assert list(frame["trans_num"]) == [r["trans_num"] for r in response.json()["results"]]
    stored = (await client.get(f"/v1/transactions/{frame['trans_num'][0]}")).json()
    expected = frame["current_time"][0].to_pydatetime().isoformat()
    assert expected == stored["event_time"]


@pytest.mark.parametrize(
    "current_time",
    ["2019-01-01T00:00:18", "2019-01-01T00:00:18.000", "2019-01-01T01:00:18+01:00",
     "2019-01-01T00:00:18Z", 1_546_300_818_000],
)  # fmt: skip
async def test_current_time_is_epoch_ms_or_an_iso_date_time(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], current_time: Any
) -> None:
    """Every spelling of the same instant stores the same event time (naive text is UTC)."""
    body = {k: v for k, v in bodies[0].items() if k != "trans_date_trans_time"}
    response = await client.post("/v1/score", json=body | {"current_time": current_time})
    assert 200 == response.status_code, response.text
    stored = (await client.get(f"/v1/transactions/{body['trans_num']}")).json()
    assert "2019-01-01T00:00:18" == stored["event_time"]
    assert 1_546_300_818_000 == stored["record"]["current_time"]


async def test_date_and_time_of_day_in_two_fields_score_as_one_timestamp(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """trans_date + trans_time is the same transaction as trans_date_trans_time (a duplicate)."""
    first = await client.post("/v1/score", json=bodies[0])
    when = bodies[0]["trans_date_trans_time"]
    split = {k: v for k, v in bodies[0].items() if k != "trans_date_trans_time"}
    split |= {"trans_date": when[:10], "trans_time": when[11:19]}
    again = await client.post("/v1/score", json=split)
    assert 200 == again.status_code, again.text
    assert first.json()["fraud_probability"] == again.json()["fraud_probability"]
    assert again.json()["duplicate"] is True


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"current_time": "yesterday"}, "current_time", "epoch milliseconds or an ISO 8601"),
        ({"current_time": "1969-12-31T23:59:59"}, "current_time", "on or after 1970-01-01"),
        ({"trans_date": "2019-01-01"}, "body", "trans_date and trans_time go together"),
        ({"trans_date": "2019-13-01", "trans_time": "00:00:18"}, "body", "YYYY-MM-DD"),
    ],
)
async def test_bad_times_are_a_422_naming_the_field(
    client: httpx.AsyncClient,
    bodies: list[dict[str, Any]],
    change: dict[str, Any],
    field: str,
    words: str,
) -> None:
    """An unreadable or pre-1970 current_time, half or a wrong date part: 422 saying so."""
    body = {k: v for k, v in bodies[0].items() if k != "trans_date_trans_time"} | change
    response = await client.post("/v1/score", json=body)
    assert 422 == response.status_code
    problem = response.json()["detail"][0]
    assert field == problem["loc"][-1]
    assert words in problem["msg"]


@pytest.mark.parametrize(
    ("body", "got"),
    [
        ({"rows": []}, "an object without transactions or data"),
        (42, "a JSON int"),
        ("not a document", "a JSON string that does not hold a split document"),
    ],
)
async def test_a_batch_of_the_wrong_shape_says_which_shapes_are_accepted(
    client: httpx.AsyncClient, body: Any, got: str
) -> None:
    """An object, number or string of the wrong shape: 422 listing the accepted shapes."""
    response = await client.post("/v1/score/batch", json=body)
    assert 422 == response.status_code
    [problem] = response.json()["detail"]
    assert ["body"] == problem["loc"]
    assert '{"transactions": [{...}, ...]}; a JSON array of transactions' in problem["msg"]
    assert f"got {got}" in problem["msg"]


async def test_one_transaction_posted_as_a_batch_or_a_list_posted_to_score_says_where_to_go(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """Each endpoint names the other when it gets the other's body."""
    single = await client.post("/v1/score/batch", json=bodies[0])
    assert "got one transaction (POST it to /v1/score)" in single.json()["detail"][0]["msg"]
    listed = await client.post("/v1/score", json=bodies[:2])
    assert 422 == listed.status_code
    assert "go to POST /v1/score/batch" in listed.json()["detail"][0]["msg"]


async def test_problems_are_located_where_each_shape_put_them(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """A bad amount in the second item: body.1.amt, body.data.1.amt; a short row: body.data.1."""
    bad = [bodies[0], bodies[1] | {"amt": -5}]
    array = await client.post("/v1/score/batch", json=bad)
    assert ["body", 1, "amt"] == array.json()["detail"][0]["loc"]
    columns = list(bodies[0])
    split = {"columns": columns, "data": [[item[c] for c in columns] for item in bad]}
    answer = await client.post("/v1/score/batch", json=split)
    assert ["body", "data", 1, "amt"] == answer.json()["detail"][0]["loc"]
    short = {"columns": columns, "data": [split["data"][0], split["data"][0][:3]]}
    uneven = (await client.post("/v1/score/batch", json=short)).json()["detail"][0]
    assert ["body", "data", 1] == uneven["loc"]
    assert f"has 3 values for {len(columns)} columns" == uneven["msg"]


async def test_a_date_far_ahead_is_refused_where_the_shape_put_it(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """The service's own refusals (after validation) are located as sent too."""
    ahead = bodies[1] | {"trans_date_trans_time": "2999-01-01T00:00:00"}
    response = await client.post("/v1/score/batch", json=[bodies[0], ahead])
    assert 422 == response.status_code
    assert ["body", 1, "trans_date_trans_time"] == response.json()["detail"][0]["loc"]


@pytest.mark.parametrize("shape", ["array", "split", "feed"])
async def test_the_batch_limit_holds_for_every_shape(
    client: httpx.AsyncClient, sample_frame: pd.DataFrame, shape: str
) -> None:
    """51 items (the limit is 50) in any shape: 413 before any item is validated."""
    items: Any = {
        "array": [{}] * 51,
        "split": {"columns": ["trans_num"], "data": [["x"]] * 51},
        "feed": json.loads(feed_body(sample_frame, 51)),
    }[shape]
    response = await client.post("/v1/score/batch", json=items)
    assert 413 == response.status_code
    assert "51 items is more than the limit of 50" in response.json()["detail"]
