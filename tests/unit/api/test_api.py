"""The scoring API on real parts: trained XGBoost, SQLite warehouse, in-process state."""

import asyncio
import math
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from api_bodies import ADMIN_TOKEN, SCORING_TOKEN, transaction_json

from fraudops.api.app import create_app
from fraudops.api.auth import InsecureSettingsError
from fraudops.api.schemas import BatchResponse, ScoreResponse
from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.features.batch import batch_features
from fraudops.features.online import datetime_ms
from fraudops.registry.memory import InMemoryRegistry
from fraudops.scoring.service import ScoringService
from fraudops.storage import MonitorRun
from fraudops.training.bundle import ModelBundle

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_score_returns_a_stored_verdict_with_reasons(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], served_bundle: ModelBundle
) -> None:
    """One transaction gets a probability, the decision its thresholds give, and reasons."""
    response = await client.post("/v1/score", json=bodies[0])
    assert 200 == response.status_code
    result = response.json()
    assert result == ScoreResponse.model_validate(result).model_dump(mode="json")
    assert bodies[0]["trans_num"] == result["trans_num"]
    assert 0.0 <= result["fraud_probability"] <= 1.0
    probability = result["fraud_probability"]
    expected = (
        "decline"
        if probability >= served_bundle.threshold
        else ("review" if probability >= served_bundle.threshold / 2 else "approve")
    )
    assert expected == result["decision"]
    assert {"name": "fraud-detector", "version": "1"} == result["model"]
    assert result["latency_ms"] > 0
    assert result["duplicate"] is False
    for reason in result["reasons"]:
        assert reason["contribution"] > 0
        assert reason["text"]


async def test_sending_a_transaction_again_returns_the_stored_result(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], service: ScoringService
) -> None:
    """The same trans_num twice: the stored verdict comes back and nothing new is written."""
    first = (await client.post("/v1/score", json=bodies[0])).json()
    again = await client.post("/v1/score", json=bodies[0])
    second = again.json()
    assert 200 == again.status_code
    assert second["duplicate"] is True
    assert first["fraud_probability"] == second["fraud_probability"]
    assert first["decision"] == second["decision"]
    stored = service.get_transaction(bodies[0]["trans_num"])
    assert stored is not None
    assert () == stored.challengers
    assert service.settle()  # answered once journaled: the warehouse has it once drained
    count = service.warehouse.engine.connect().exec_driver_sql("SELECT count(*) FROM scores")
    assert 1 == count.scalar()


async def test_online_features_equal_the_batch_features_of_the_same_history(
    client: httpx.AsyncClient,
    bodies: list[dict[str, Any]],
    service: ScoringService,
    served_bundle: ModelBundle,
    sample_frame: pd.DataFrame,
) -> None:
    """Scored over HTTP one by one, every stored feature vector equals the batch engine's."""
    for body in bodies:
        assert 200 == (await client.post("/v1/score", json=body)).status_code
    sent = {body["trans_num"] for body in bodies}
    history = sample_frame[sample_frame["trans_num"].isin(sent)].reset_index(drop=True)
    # No labels reached the service, so the batch reference must not see any either.
    history["is_fraud"] = 0
    expected = batch_features(history, served_bundle.spec)
    for row, trans_num in enumerate(history["trans_num"]):
        stored = service.get_transaction(trans_num)
        assert stored is not None and stored.champion is not None
        actual = [stored.champion.features[name] for name in served_bundle.feature_names]
        np.testing.assert_array_equal(expected[row], np.array(actual))


async def test_feed_record_label_is_stored_and_never_an_input(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], service: ScoringService
) -> None:
    """A live-feed record (current_time, is_fraud): the label is stored, the score ignores it."""
    feed = []
    for number, label in enumerate((1, 0)):
        record = {k: v for k, v in bodies[0].items() if k != "trans_date_trans_time"}
        record |= {
            "trans_num": f"feed-{number}",
            "cc_num": 1000 + number,
            "merchant": f"fraud_Feed Merchant {number}",
            "current_time": 1_700_000_000_000,
            "is_fraud": label,
        }
        feed.append((await client.post("/v1/score", json=record)).json())
    assert feed[0]["fraud_probability"] == feed[1]["fraud_probability"]
    stored = service.get_transaction("feed-0")
    assert stored is not None and stored.label is not None
    assert stored.label.is_fraud is True
    assert "feed" == stored.label.source
    assert "is_fraud" not in (stored.champion.features if stored.champion else {})


async def test_batch_scores_in_order_and_refuses_more_than_the_limit(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """A batch answers per transaction in order; over the limit it is a 413 naming the limit."""
    response = await client.post("/v1/score/batch", json={"transactions": bodies[:5]})
    assert 200 == response.status_code
    assert response.json() == BatchResponse.model_validate(response.json()).model_dump(mode="json")
    assert [b["trans_num"] for b in bodies[:5]] == [
        r["trans_num"] for r in response.json()["results"]
    ]
    too_many = await client.post("/v1/score/batch", json={"transactions": bodies[:51]})
    assert 413 == too_many.status_code
    assert "limit of 50" in too_many.json()["detail"]


async def test_labels_one_or_many_idempotent_and_unknown_kept(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """Labels are stored once, repeats change nothing, unknown trans_nums are reported."""
    await client.post("/v1/score", json=bodies[0])
    one = await client.post(
        "/v1/labels",
        json={
            "trans_num": bodies[0]["trans_num"],
            "is_fraud": True,
            "label_time": "2020-02-01T10:00:00Z",
            "source": "chargeback",
        },
    )
    assert {"stored": 1, "unchanged": 0, "updated": 0, "unknown_trans_nums": []} == one.json()
    many = await client.post(
        "/v1/labels",
        json=[
            {"trans_num": bodies[0]["trans_num"], "is_fraud": True},
            {"trans_num": "not-seen-yet", "is_fraud": False},
        ],
    )
    assert {
        "stored": 1,
        "unchanged": 1,
        "updated": 0,
        "unknown_trans_nums": ["not-seen-yet"],
    } == many.json()
    stored = (await client.get(f"/v1/transactions/{bodies[0]['trans_num']}")).json()
    assert {
        "is_fraud": True,
        "label_time": "2020-02-01T10:00:00",
        "source": "chargeback",
        "analyst": None,
    } == stored["label"]


async def test_transaction_lookup(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> None:
    """A stored transaction comes back with its record and score; an unknown one is a 404."""
    scored = (await client.post("/v1/score", json=bodies[1])).json()
    stored = (await client.get(f"/v1/transactions/{bodies[1]['trans_num']}")).json()
    assert bodies[1]["merchant"] == stored["record"]["merchant"]
    assert scored["fraud_probability"] == stored["champion"]["fraud_probability"]
    assert "card_count_1d" in stored["champion"]["features"]
    missing = await client.get("/v1/transactions/nope")
    assert 404 == missing.status_code
    assert "nope" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"amt": -5}, "amt", "greater than or equal to 0"),
        ({"amt": "lots"}, "amt", "valid number"),
        ({"lat": 91.0}, "lat", "less than or equal to 90"),
        ({"merch_long": -181}, "merch_long", "greater than or equal to -180"),
        ({"trans_date_trans_time": "2020-13-45 99:00"}, "trans_date_trans_time", "datetime"),
        ({"unix_time": 10**15}, "unix_time", "less than or equal to"),
        ({"merchant": "a\x00b"}, "merchant", "NUL"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
        ({"trans_num": ""}, "trans_num", "at least 1 character"),
        ({"cc_num": [1, 2]}, "cc_num", "valid"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
    bodies: list[dict[str, Any]],
    change: dict[str, Any],
    field: str,
    words: str,
) -> None:
    """Each bad field gets a 422 whose detail names it and says what is wrong."""
    response = await client.post("/v1/score", json=bodies[0] | change)
    assert 422 == response.status_code
    problems = response.json()["detail"]
    assert any(field in map(str, p["loc"]) and words in p["msg"] for p in problems), problems


async def test_malformed_bodies_are_client_errors(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """Broken JSON, NaN, no timestamp and an oversized body are 4xx, never a 500."""
    headers = {"Content-Type": "application/json"}
    broken = await client.post("/v1/score", content=b'{"trans_num": ', headers=headers)
    assert 422 == broken.status_code
    nan = bodies[0] | {"amt": "__NAN__"}
    text = httpx.Request("POST", "/", json=nan).content.replace(b'"__NAN__"', b"NaN")
    assert 422 == (await client.post("/v1/score", content=text, headers=headers)).status_code
    timeless = {k: v for k, v in bodies[0].items() if k != "trans_date_trans_time"}
    missing = await client.post("/v1/score", json=timeless)
    assert 422 == missing.status_code
    assert "one of trans_date_trans_time, unix_time or current_time" in missing.text
    huge = await client.post("/v1/score", content=b"[" + b"1," * 400_000 + b"1]", headers=headers)
    assert 413 == huge.status_code


async def test_lean_score_routes_are_documented_like_any_other(client: httpx.AsyncClient) -> None:
    """/v1/score and /v1/score/batch skip FastAPI's per-request machinery, not its docs."""
    document = (await client.get("/openapi.json")).json()
    for path, answer in (("/v1/score", "ScoreResponse"), ("/v1/score/batch", "BatchResponse")):
        operation = document["paths"][path]["post"]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["$ref"].endswith(f"/{answer}")
        assert {"401", "422", "503"} <= set(operation["responses"])
        assert operation["security"] == [{"HTTPBearer": []}]
    one = document["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    assert "#/components/schemas/CanonicalTransaction" == one["schema"]["$ref"]
    many = document["paths"]["/v1/score/batch"]["post"]["requestBody"]["content"]
    shapes = many["application/json"]["schema"]["anyOf"]
    assert [
        {"$ref": "#/components/schemas/BatchRequest"},
        {
            "type": "array",
            "items": {"$ref": "#/components/schemas/CanonicalTransaction"},
            "minItems": 1,
        },
        {"$ref": "#/components/schemas/SplitDocument"},
        {"type": "string"},  # the live feed's body as it came: a JSON string
    ] == shapes


async def test_unknown_category_is_scored_and_counted(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """A category never seen in training is scored (one-hot all zeros) and counted."""
    response = await client.post("/v1/score", json=bodies[0] | {"category": "crypto_atm"})
    assert 200 == response.status_code
    metrics = (await client.get("/metrics")).text
    assert "fraudops_unknown_category_total 1.0" in metrics


async def test_tokens_guard_scoring_and_admin(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """No or a wrong token is a 401, a scoring token cannot reload (403), admin can score."""
    anonymous = await client.post("/v1/score", json=bodies[0], headers={"Authorization": ""})
    assert 401 == anonymous.status_code
    assert "Bearer" == anonymous.headers["www-authenticate"]
    wrong = await client.post(
        "/v1/score", json=bodies[0], headers={"Authorization": "Bearer not-a-real-token-at-all"}
    )
    assert 401 == wrong.status_code
    assert 403 == (await client.post("/v1/models/reload")).status_code
    assert 200 == (await client.post("/v1/score", json=bodies[0], headers=ADMIN)).status_code
    open_paths = [
        await client.get(path, headers={"Authorization": ""})
        for path in ("/healthz", "/readyz", "/metrics")
    ]
    assert [200, 200, 200] == [r.status_code for r in open_paths]


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ({}, "no API tokens"),
        ({"api_tokens": "changeme"}, "placeholder or short"),
        ({"api_tokens": SCORING_TOKEN, "admin_tokens": "short"}, "FRAUDOPS_ADMIN_TOKENS"),
    ],
)
def test_the_service_refuses_to_start_without_real_tokens(
    tmp_path: Path, tokens: dict[str, str], message: str
) -> None:
    """Missing, placeholder or short tokens stop create_app unless in development mode."""
    settings = Settings(home=tmp_path, _env_file=None, **tokens)  # type: ignore[call-arg]
    with pytest.raises(InsecureSettingsError, match=message):
        create_app(settings)
    assert create_app(settings, dev=True) is not None


async def test_reload_swaps_in_a_challenger_scored_in_shadow(
    client: httpx.AsyncClient,
    bodies: list[dict[str, Any]],
    registry: InMemoryRegistry,
    other_bundle: ModelBundle,
    sample_frame: pd.DataFrame,
    service: ScoringService,
) -> None:
    """A newly registered challenger is loaded on reload and its shadow scores are stored."""
    registry.log_training(
        other_bundle, input_example=sample_frame.head(3), dataset_fingerprint="sample"
    )
    reload = await client.post("/v1/models/reload", headers=ADMIN)
    assert {
        "outcome": "swapped",
        "version": "2",
        "previous": None,
        "detail": None,
    } == reload.json()["challenger"]
    assert "unchanged" == reload.json()["champion"]["outcome"]
    models = (await client.get("/v1/models")).json()
    assert ("1", "2") == (models["champion"]["version"], models["challenger"]["version"])
    scored = (await client.post("/v1/score", json=bodies[2])).json()
    assert "1" == scored["model"]["version"]
    for _ in range(100):
        stored = service.get_transaction(bodies[2]["trans_num"])
        if stored is not None and stored.challengers:
            break
        await asyncio.sleep(0.02)
    assert stored is not None
    assert ["2"] == [c.model_version for c in stored.challengers]
    expected = other_bundle.score_features(
        np.array([[stored.champion.features[n] for n in other_bundle.feature_names]])  # type: ignore[union-attr]
    )[0]
    assert math.isclose(expected, stored.challengers[0].fraud_probability, rel_tol=1e-6)


async def test_a_model_failing_its_canary_is_not_swapped_in(
    client: httpx.AsyncClient,
    registry: InMemoryRegistry,
    served_bundle: ModelBundle,
    sample_frame: pd.DataFrame,
) -> None:
    """A champion that scores NaN is rejected on reload and the old one keeps serving."""

    class Broken:
        def predict_proba(self, features: np.ndarray) -> np.ndarray:
            return np.full((len(features), 2), np.nan)

    broken = replace(served_bundle, estimator=Broken(), model_type="broken")
    version = registry.log_training(
        broken, input_example=sample_frame.head(3), dataset_fingerprint="sample"
    ).version
    registry.set_alias(version, "champion")
    reload = (await client.post("/v1/models/reload", headers=ADMIN)).json()
    assert "rejected" == reload["champion"]["outcome"]
    assert "1" == reload["champion"]["version"]
    assert "canary" in reload["champion"]["detail"] or "probabilit" in reload["champion"]["detail"]
    assert "1" == (await client.get("/v1/models")).json()["champion"]["version"]


async def test_without_a_champion_the_service_is_not_ready(
    settings: Settings, tmp_path: Path, bodies: list[dict[str, Any]]
) -> None:
    """No registered champion: /readyz and /v1/score answer 503 with the reason."""
    from fraudops.features.state import InMemoryStateStore  # noqa: PLC0415
    from fraudops.storage.warehouse import Warehouse  # noqa: PLC0415

    service = ScoringService(
        settings=settings,
        warehouse=Warehouse(f"sqlite:///{tmp_path / 'empty.db'}"),
        registry=InMemoryRegistry(),
        store=InMemoryStateStore(),
    )
    app = create_app(settings, service=service)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.2)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as http:
            ready = await http.get("/readyz")
            assert 503 == ready.status_code
            assert "no champion" in ready.json()["reason"]
            score = await http.post(
                "/v1/score", json=bodies[0], headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            assert 503 == score.status_code
            assert "no champion" in score.json()["detail"]


async def test_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """Requests are counted under their route template with the status; decisions too."""
    await client.post("/v1/score", json=bodies[0])
    await client.get("/v1/transactions/unknown-one")
    text = (await client.get("/metrics")).text
    assert 'fraudops_http_requests_total{method="POST",route="/v1/score",status="200"} 1.0' in text
    assert (
        'fraudops_http_requests_total{method="GET",route="/v1/transactions/{trans_num:path}",'
        'status="404"} 1.0' in text
    )
    assert 'fraudops_model_info{name="fraud-detector",role="champion",version="1"} 1.0' in text
    assert "fraudops_decisions_total" in text
    assert "fraudops_feature_state_seconds_count 1.0" in text


def test_sample_loads_for_the_api_fixtures(sample_path: Path) -> None:
    """The request bodies built from the sample validate as canonical transactions."""
    frame = load_transactions(sample_path, SPARKOV).frame
    from fraudops.data.schema import CanonicalTransaction  # noqa: PLC0415

    assert "2019-01-15T22:24:12" == transaction_json(frame, 0)["trans_date_trans_time"]
    assert CanonicalTransaction.model_validate(transaction_json(frame, 0)).event_time_ms > 0


async def test_a_label_reaches_the_online_merchant_state(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], service: ScoringService
) -> None:
    """A fraud label of a stored transaction marks it in its merchant's online state."""
    await client.post("/v1/score", json=bodies[0])
    merchant = service.store.get_merchant(bodies[0]["merchant"])
    assert merchant is not None
    assert [0] == list(merchant.labels)
    await client.post("/v1/labels", json={"trans_num": bodies[0]["trans_num"], "is_fraud": True})
    merchant = service.store.get_merchant(bodies[0]["merchant"])
    assert merchant is not None
    assert [1] == list(merchant.labels)


async def test_a_label_of_a_transaction_still_journaled_does_not_wait_for_the_warehouse(
    client: httpx.AsyncClient,
    bodies: list[dict[str, Any]],
    service: ScoringService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A label of a transaction journaled but not in the warehouse yet counts it as known and
    reaches the online state at once, while the warehouse has still not stored it."""
    held = threading.Event()
    store = service.warehouse.store_scored_batch

    def slow_store(*args: Any, **kwargs: Any) -> Any:
        held.wait(5)
        return store(*args, **kwargs)

    monkeypatch.setattr(service.warehouse, "store_scored_batch", slow_store)
    trans_num = bodies[0]["trans_num"]
    try:
        await client.post("/v1/score", json=bodies[0])
        labelled = await client.post("/v1/labels", json={"trans_num": trans_num, "is_fraud": True})
        in_warehouse = service.warehouse.get_transaction(trans_num)
        read_back = (await client.get(f"/v1/transactions/{trans_num}")).json()
    finally:
        held.set()
    assert {"stored": 1, "unchanged": 0, "updated": 0, "unknown_trans_nums": []} == labelled.json()
    assert None is in_warehouse
    # Read back at once, the transaction (from the journal) carries its label already.
    assert read_back["label"] is not None and read_back["label"]["is_fraud"] is True
    merchant = service.store.get_merchant(bodies[0]["merchant"])
    assert merchant is not None
    assert [1] == list(merchant.labels)
    assert service.settle()
    stored = service.warehouse.get_transaction(trans_num)
    assert stored is not None and stored.label is not None and stored.label.is_fraud


async def test_a_label_reaches_the_online_merchant_and_card_state_with_its_time(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], service: ScoringService
) -> None:
    """The online merchant and card states count a posted fraud from its label_time, not from
    when it came."""
    await client.post("/v1/score", json=bodies[0])
    await client.post(
        "/v1/labels",
        json={
            "trans_num": bodies[0]["trans_num"],
            "is_fraud": True,
            "label_time": "2019-03-01T12:00:00Z",
        },
    )
    merchant = service.store.get_merchant(bodies[0]["merchant"])
    card = service.store.get_card(service.personal.card_id(bodies[0]["cc_num"]))
    assert merchant is not None
    assert card is not None
    assert [datetime_ms("2019-03-01T12:00:00")] == list(merchant.fraud_known)
    assert [datetime_ms("2019-03-01T12:00:00")] == list(card.fraud_known)


async def test_watching_the_aliases_swaps_without_a_reload_call(
    settings: Settings,
    registry: InMemoryRegistry,
    other_bundle: ModelBundle,
    sample_frame: pd.DataFrame,
    tmp_path: Path,
) -> None:
    """With model_watch_seconds set, a new challenger is picked up on its own."""
    from fraudops.features.state import InMemoryStateStore  # noqa: PLC0415
    from fraudops.storage.warehouse import Warehouse  # noqa: PLC0415

    watching = ScoringService(
        settings=settings.model_copy(update={"model_watch_seconds": 0.05}),
        warehouse=Warehouse(f"sqlite:///{tmp_path / 'watch.db'}"),
        registry=registry,
        store=InMemoryStateStore(),
    )
    watching.start()
    try:
        assert watching.models.challenger is None
        registry.log_training(
            other_bundle, input_example=sample_frame.head(3), dataset_fingerprint="sample"
        )
        for _ in range(200):
            if watching.models.challenger is not None:
                break
            await asyncio.sleep(0.02)
        assert watching.models.challenger is not None
        assert 2 == watching.models.challenger.version
    finally:
        watching.stop()


async def test_metrics_carry_the_latest_monitoring_run(
    client: httpx.AsyncClient, service: ScoringService
) -> None:
    """A monitoring run stored by anyone (loop, CLI, Airflow) shows on the service's /metrics."""
    service.warehouse.store_monitor_run(
        MonitorRun(
            as_of=datetime(2024, 3, 1),
            model_name="fraud-detector",
            model_version="1",
            retrain=True,
            reasons=["average_precision_below_floor"],
            result={
                "retrain": True,
                "performance": {
                    "average_precision": {"value": 0.41, "low": 0.3, "high": 0.52},
                },
            },
        )
    )
    text = (await client.get("/metrics")).text
    assert "fraudops_monitor_retrain 1.0" in text
    assert 'fraudops_monitor_performance{bound="high",metric="average_precision"} 0.52' in text
