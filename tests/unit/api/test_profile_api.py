"""The HTTP service with a champion of the fdh profile: its schema documented and enforced."""

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from api_bodies import ADMIN_TOKEN, SCORING_TOKEN
from served_app import started_app

from embedded_service import sqlite_service
from fraudops.config import Settings
from fraudops.data.profile_schema import example_records
from fraudops.data.profiles import FDH, profile_from_toml
from fraudops.registry.memory import InMemoryRegistry
from profile_frames import USER_PROFILE_TOML, fdh_raw, loaded, simulated, tiny_bundle, user_raw


def fdh_body(number: int, **change: Any) -> dict[str, Any]:
    """One fdh request."""
    return {
        "TRANSACTION_ID": f"f{number}",
        "TX_DATETIME": f"2024-02-01T10:{number:02d}:00",
        "CUSTOMER_ID": 100 + number % 3,
        "TERMINAL_ID": 7,
        "TX_AMOUNT": 12.5 + number,
    } | change


@pytest.fixture(scope="module")
def fdh_frame() -> pd.DataFrame:
    """A few days of simulated fdh purchases, loaded."""
    return loaded(fdh_raw(simulated(days=6, cards=60, seed=3)), FDH)


@pytest.fixture
async def fdh_client(
    settings: Settings, fdh_frame: pd.DataFrame, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The started app whose champion was trained on fdh."""
    registry = InMemoryRegistry()
    bundle = tiny_bundle(fdh_frame, FDH, trained_until=datetime(2024, 1, 7))
    registry.log_training(bundle, input_example=None, dataset_fingerprint="fdh")  # type: ignore[arg-type]
    async with started_app(settings, sqlite_service(settings, registry, tmp_path)) as (_, http):
        yield http


@pytest.mark.anyio
async def test_openapi_documents_the_fdh_transaction(fdh_client: httpx.AsyncClient) -> None:
    """Both score routes take the fdh model; the Sparkov one is gone from the document."""
    document = (await fdh_client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "CanonicalTransaction" not in schemas
    model = schemas["FdhTransaction"]
    assert ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"] == model[
        "required"
    ]
    body = document["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    assert "#/components/schemas/FdhTransaction" == body["schema"]["$ref"]
    assert "FdhTransaction" in str(document["paths"]["/v1/score/batch"])


@pytest.mark.anyio
async def test_every_batch_shape_reads_fdh_fields(fdh_client: httpx.AsyncClient) -> None:
    """Objects, arrays and split documents of fdh transactions are all scored."""
    wrapped = await fdh_client.post(
        "/v1/score/batch", json={"transactions": [fdh_body(1), fdh_body(2)]}
    )
    listed = await fdh_client.post("/v1/score/batch", json=[fdh_body(3)])
    columns = list(fdh_body(4))
    split = await fdh_client.post(
        "/v1/score/batch",
        json={"columns": columns, "data": [list(fdh_body(4).values())]},
    )
    assert [200, 200, 200] == [r.status_code for r in (wrapped, listed, split)]
    assert ["f1", "f2", "f3", "f4"] == [
        result["trans_num"]
        for response in (wrapped, listed, split)
        for result in response.json()["results"]
    ]


@pytest.mark.anyio
async def test_a_bad_fdh_field_is_a_422_at_its_place(fdh_client: httpx.AsyncClient) -> None:
    """The field, its index in the batch and the problem; other members are refused too."""
    bad = await fdh_client.post(
        "/v1/score/batch",
        json={"transactions": [fdh_body(1), fdh_body(2, TX_AMOUNT="lots")]},
    )
    extra = await fdh_client.post(
        "/v1/score/batch", json={"transactions": [fdh_body(1)], "priority": 1}
    )
    assert (422, 422) == (bad.status_code, extra.status_code)
    assert [["body", "transactions", 1, "TX_AMOUNT"]] == [p["loc"] for p in bad.json()["detail"]]
    assert "valid number" in bad.json()["detail"][0]["msg"]
    assert [["body", "priority"]] == [p["loc"] for p in extra.json()["detail"]]


@pytest.mark.anyio
async def test_service_problems_name_the_profile_s_columns(fdh_client: httpx.AsyncClient) -> None:
    """A time far ahead is located at TX_DATETIME; a reused id names TX_AMOUNT as differing."""
    ahead = await fdh_client.post("/v1/score", json=fdh_body(1, TX_DATETIME="2999-01-01T00:00:00"))
    assert 422 == ahead.status_code
    assert [["body", "TX_DATETIME"]] == [p["loc"] for p in ahead.json()["detail"]]
    assert 200 == (await fdh_client.post("/v1/score", json=fdh_body(2))).status_code
    again = await fdh_client.post("/v1/score", json=fdh_body(2, TX_AMOUNT=99.0))
    assert 409 == again.status_code
    problem = again.json()["detail"][0]
    assert ("TRANSACTION_ID", True) == (
        problem["loc"][-1],
        "fields differ: TX_AMOUNT" in problem["msg"],
    )


@pytest.mark.anyio
async def test_a_user_profile_champion_scores_and_masks_its_personal_fields(
    settings: Settings, tmp_path: Path
) -> None:
    """A TOML profile's card, birth date and home coordinates are masked when read back;
    an admin token reads them (as the keyed card id), and its other columns are kept."""
    path = tmp_path / "acquirer.toml"
    path.write_text(USER_PROFILE_TOML, encoding="utf-8")
    profile = profile_from_toml(path)
    frame = loaded(user_raw(simulated(days=5, cards=40, seed=4)), profile)
    registry = InMemoryRegistry()
    bundle = tiny_bundle(frame, profile, trained_until=datetime(2024, 1, 6))
    registry.log_training(bundle, input_example=None, dataset_fingerprint="user")  # type: ignore[arg-type]
    service = sqlite_service(settings, registry, tmp_path)
    body = example_records(profile)[0] | {"channel": "F", "model_score": 5000.0}
    async with started_app(settings, service) as (_, http):
        scoring = {"Authorization": f"Bearer {SCORING_TOKEN}"}
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        scored = await http.post("/v1/score", json=body, headers=scoring)
        assert 200 == scored.status_code, scored.text
        masked = (await http.get("/v1/transactions/canary-1", headers=scoring)).json()
        shown = (await http.get("/v1/transactions/canary-1", headers=admin)).json()
    record = masked["record"]
    assert ("masked", "0001") == (masked["personal_data"], record["card_last4"])
    assert not {"cc_num", "dob", "lat", "long"} & set(record)
    assert ("canary-mid-1", "canary-mcc-1", 5000.0) == (
        record["merchant"],
        record["category"],
        record["extra_fields"]["model_score"],
    )
    assert "shown" == shown["personal_data"]
    assert ("1980-05-17", 40.71) == (shown["record"]["dob"], shown["record"]["lat"])
    assert shown["record"]["cc_num"].startswith("h1:")
