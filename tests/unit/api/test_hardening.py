"""Hostile and careless clients: nothing they send corrupts the state, replays a verdict,
reveals personal data, or gets a 500."""

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_bodies import ADMIN_TOKEN, SCORING_TOKEN

from fraudops.api.app import create_app
from fraudops.api.auth import InsecureSettingsError
from fraudops.config import Settings
from fraudops.features.state import InMemoryStateStore
from fraudops.registry.memory import InMemoryRegistry
from fraudops.scoring.service import ScoringService
from fraudops.storage.warehouse import Warehouse

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
YEAR_9999 = 253_402_300_799


def card_state(service: ScoringService, cc_num: str) -> Any:
    """The in-process state of a card, keyed as the service keys it."""
    store = service.store
    assert isinstance(store, InMemoryStateStore)
    return store.cards.get(service.personal.card_id(cc_num))


# --- 1. an event time far ahead ------------------------------------------------------------


async def test_a_transaction_dated_far_ahead_is_refused_naming_its_field(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], service: ScoringService
) -> None:
    """Year 9999 is a 422 on the field that carried the time, and nothing is stored."""
    poison = {k: v for k, v in bodies[0].items() if k != "trans_date_trans_time"}
    poison |= {"trans_num": "poison", "unix_time": YEAR_9999}
    response = await client.post("/v1/score", json=poison)
    assert 422 == response.status_code
    problem = response.json()["detail"][0]
    assert ["body", "unix_time"] == problem["loc"]
    assert "ahead of the service's clock" in problem["msg"]
    assert service.get_transaction("poison") is None
    assert card_state(service, poison["cc_num"]) is None


async def test_a_batch_with_one_date_far_ahead_changes_nothing(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], service: ScoringService
) -> None:
    """The 422 names the item; the batch's other transactions are neither stored nor counted."""
    poison = {**bodies[1], "trans_date_trans_time": "9999-12-31T00:00:00"}
    response = await client.post("/v1/score/batch", json={"transactions": [bodies[0], poison]})
    assert 422 == response.status_code
    assert ["body", "transactions", 1, "trans_date_trans_time"] == response.json()["detail"][0][
        "loc"
    ]
    assert service.get_transaction(bodies[0]["trans_num"]) is None
    assert card_state(service, bodies[0]["cc_num"]) is None


async def test_past_and_late_transactions_are_accepted_and_late_ones_counted(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """Replays of history are scored; one far older than what was seen counts as late."""
    for body in bodies[:150]:
        assert 200 == (await client.post("/v1/score", json=body)).status_code
    late = {**bodies[150], "trans_num": "late-one", "trans_date_trans_time": "2015-01-01T10:00:00"}
    assert 200 == (await client.post("/v1/score", json=late)).status_code
    metrics = (await client.get("/metrics")).text
    assert "fraudops_late_transactions_total 1.0" in metrics


# --- 2. a reused trans_num -----------------------------------------------------------------


async def test_a_reused_trans_num_with_other_content_is_a_409_that_changes_nothing(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], service: ScoringService
) -> None:
    """Another amount, card and time under a stored trans_num: 409 naming the fields; the
    other card gets no history and the stored transaction stays as it was."""
    first = {**bodies[0], "trans_num": "r1", "amt": 10.0}
    assert 200 == (await client.post("/v1/score", json=first)).status_code
    other_card = "4000111122223333"
    second = {
        **bodies[0],
        "trans_num": "r1",
        "amt": 99999.0,
        "cc_num": other_card,
        "trans_date_trans_time": "2019-06-01T12:00:00",
    }
    response = await client.post("/v1/score", json=second)
    assert 409 == response.status_code
    problem = response.json()["detail"][0]
    assert ["body", "trans_num"] == problem["loc"]
    assert "amt" in problem["msg"] and "cc_num" in problem["msg"]
    assert "trans_date_trans_time" in problem["msg"]
    assert card_state(service, other_card) is None
    stored = service.get_transaction("r1")
    assert stored is not None
    assert 10.0 == stored.record["amt"]


async def test_a_repeat_with_identical_content_is_a_duplicate_that_writes_no_label(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], service: ScoringService
) -> None:
    """The same transaction again, now carrying is_fraud: the stored verdict, no label."""
    body = {**bodies[0], "is_fraud": 0}
    first = (await client.post("/v1/score", json=body)).json()
    again = await client.post("/v1/score", json={**body, "is_fraud": 1})
    assert 200 == again.status_code
    assert again.json()["duplicate"] is True
    assert first["fraud_probability"] == again.json()["fraud_probability"]
    stored = service.get_transaction(body["trans_num"])
    assert stored is not None and stored.label is not None
    assert stored.label.is_fraud is False
    card = card_state(service, body["cc_num"])
    assert 1 == len(card.times)


async def test_a_batch_reusing_a_trans_num_with_other_content_is_refused_whole(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], service: ScoringService
) -> None:
    """Two different transactions under one trans_num in one batch: 409, nothing stored."""
    twin = {**bodies[1], "trans_num": bodies[0]["trans_num"]}
    response = await client.post("/v1/score/batch", json={"transactions": [bodies[0], twin]})
    assert 409 == response.status_code
    assert ["body", "transactions", 1, "trans_num"] == response.json()["detail"][0]["loc"]
    assert service.get_transaction(bodies[0]["trans_num"]) is None


async def test_a_batch_repeating_a_transaction_stores_it_once(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], service: ScoringService
) -> None:
    """The same transaction twice in a batch: stored once, the second a duplicate."""
    response = await client.post("/v1/score/batch", json={"transactions": [bodies[0]] * 2})
    assert 200 == response.status_code
    assert [False, True] == [r["duplicate"] for r in response.json()["results"]]
    assert 1 == len(card_state(service, bodies[0]["cc_num"]).times)


# --- 3. one client stalling the service ----------------------------------------------------


async def test_an_oversized_batch_is_refused_before_any_item_is_validated(
    client: httpx.AsyncClient,
) -> None:
    """100,000 invalid items: 413 at once, no 422 listing 400,000 problems."""
    body = {"transactions": [{}] * 100_000}
    began = time.perf_counter()
    response = await client.post("/v1/score/batch", json=body)
    assert 413 == response.status_code
    assert "100000 items is more than the limit of 50" in response.json()["detail"]
    assert time.perf_counter() - began < 5.0  # generous: validation took 9 s


async def test_a_422_lists_the_first_twenty_problems_and_counts_them(
    client: httpx.AsyncClient,
) -> None:
    """50 invalid items (the limit): 20 problems shown, the total given."""
    response = await client.post("/v1/score/batch", json={"transactions": [{"amt": -1}] * 50})
    assert 422 == response.status_code
    document = response.json()
    assert 20 == len(document["detail"])
    assert document["problems"] > 50


@pytest.mark.parametrize("path", ["/v1/labels", "/v1/retrain", "/v1/score", "/v1/models/reload"])
async def test_requests_without_a_token_are_refused_before_their_body_is_read(
    client: httpx.AsyncClient, path: str
) -> None:
    """A body that cannot even be parsed, without a token: 401, not 422."""
    response = await client.post(path, content=b"{not json" * 1000, headers={"Authorization": ""})
    assert 401 == response.status_code


async def test_a_scoring_token_on_an_admin_route_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient,
) -> None:
    """Admin routes answer 403 to a scoring token whatever the body."""
    response = await client.post("/v1/retrain", content=b"{not json")
    assert 403 == response.status_code


async def _status_and_body_reads(app: Any, path: str, token: str | None) -> tuple[int, int]:
    """POST 32 kB in 8 chunks straight to the ASGI app: its status and how many chunks it read."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"32768")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("s", 80),
    }  # fmt: skip
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads > 8:
            await asyncio.sleep(3600)  # a client that never ends its body
        return {"type": "http.request", "body": b"x" * 4_096, "more_body": reads < 8}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    return int(sent[0]["status"]), reads


@pytest.mark.parametrize("path", ["/v1/labels", "/v1/retrain", "/v1/score", "/v1/models/reload"])
async def test_no_body_chunk_is_read_before_the_token_is_checked(
    settings: Settings, service: ScoringService, path: str
) -> None:
    """Without a token, or with a scoring token on an admin route, the answer comes before the
    server reads a single chunk of the body."""
    app = create_app(settings, service=service)
    async with app.router.lifespan_context(app):
        assert (401, 0) == await _status_and_body_reads(app, path, None)
        if path in {"/v1/retrain", "/v1/models/reload"}:
            assert (403, 0) == await _status_and_body_reads(app, path, SCORING_TOKEN)


async def test_health_answers_while_a_batch_is_scored(
    client: httpx.AsyncClient,
    bodies: list[dict[str, Any]],
    service: ScoringService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Scoring a batch (here slowed to a second, as a remote store would) keeps the event
    loop free: /healthz answers meanwhile."""
    score_many = service.score_many

    def slow(transactions: Any) -> Any:
        time.sleep(1.0)
        return score_many(transactions)

    monkeypatch.setattr(service, "score_many", slow)
    batch = asyncio.create_task(client.post("/v1/score/batch", json={"transactions": bodies[:10]}))
    await asyncio.sleep(0.1)
    began = time.perf_counter()
    health = await client.get("/healthz")
    waited = time.perf_counter() - began
    assert 200 == health.status_code
    assert not batch.done()
    assert waited < 0.5
    assert 200 == (await batch).status_code


# --- 4. development mode -------------------------------------------------------------------


def test_no_setting_switches_authentication_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FRAUDOPS_DEV in the environment or in a .env file does not turn tokens off."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("FRAUDOPS_DEV=true\n")
    monkeypatch.setenv("FRAUDOPS_DEV", "1")
    monkeypatch.delenv("FRAUDOPS_API_TOKENS", raising=False)
    monkeypatch.delenv("FRAUDOPS_ADMIN_TOKENS", raising=False)
    with pytest.raises(InsecureSettingsError, match="no API tokens"):
        create_app(Settings(home=tmp_path))


async def test_development_mode_says_so_on_healthz(
    settings: Settings, service: ScoringService
) -> None:
    """With dev=True (the --dev flag) /healthz says authentication is off."""
    app = create_app(settings, service=service, dev=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as http:
            health = (await http.get("/healthz")).json()
    assert {"status": "ok", "mode": "development", "authentication": "off"} == health


# --- 5. personal data ----------------------------------------------------------------------


async def test_a_scoring_token_reads_a_transaction_with_personal_data_masked(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """The card as its last four digits; no number, names, street or birth date."""
    body = bodies[0]
    await client.post("/v1/score", json=body)
    stored = (await client.get(f"/v1/transactions/{body['trans_num']}")).json()
    record = stored["record"]
    assert "masked" == stored["personal_data"]
    assert body["cc_num"][-4:] == record["card_last4"]
    for field in ("cc_num", "first", "last", "street", "dob", "zip", "lat", "long", "job"):
        assert field not in record, field
    assert stored["raw_record"] is None
    assert body["merchant"] == record["merchant"]


async def test_an_admin_reads_the_personal_fields_that_are_stored(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """Birth date and home are shown; names and the card number are not stored to show."""
    body = bodies[0]
    await client.post("/v1/score", json=body)
    stored = (await client.get(f"/v1/transactions/{body['trans_num']}", headers=ADMIN)).json()
    assert "shown" == stored["personal_data"]
    assert body["dob"] == stored["record"]["dob"]
    assert stored["record"]["cc_num"].startswith("h1:")
    assert "first" not in stored["record"]
    assert stored["raw_record"] is None


async def test_with_a_raw_record_key_readers_of_personal_data_see_the_raw_record(
    tmp_path: Path, registry: InMemoryRegistry, bodies: list[dict[str, Any]]
) -> None:
    """A FRAUDOPS_PII_TOKENS token gets the whole record back; a scoring token does not."""
    from cryptography.fernet import Fernet  # noqa: PLC0415

    pii_token = "pii-" + secrets.token_urlsafe(32)
    settings = Settings(
        home=tmp_path / "home",
        api_tokens=SCORING_TOKEN,
        pii_tokens=pii_token,
        raw_record_key=Fernet.generate_key().decode(),
        _env_file=None,  # type: ignore[call-arg]
    )
    service = ScoringService(
        settings=settings,
        warehouse=Warehouse.from_settings(settings),
        registry=registry,
        store=InMemoryStateStore(),
    )
    app = create_app(settings, service=service)
    async with app.router.lifespan_context(app):
        while service.readiness() is not None:
            await asyncio.sleep(0.02)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as http:
            body = bodies[0]
            scoring = {"Authorization": f"Bearer {SCORING_TOKEN}"}
            await http.post("/v1/score", json=body, headers=scoring)
            path = f"/v1/transactions/{body['trans_num']}"
            as_pii = (await http.get(path, headers={"Authorization": f"Bearer {pii_token}"})).json()
            as_scoring = (await http.get(path, headers=scoring)).json()
    assert body["first"] == as_pii["raw_record"]["first"]
    assert body["cc_num"] == as_pii["raw_record"]["cc_num"]
    assert as_scoring["raw_record"] is None


async def test_the_warehouse_file_holds_no_card_number_or_name(
    client: httpx.AsyncClient,
    service: ScoringService,
    bodies: list[dict[str, Any]],
    settings: Settings,
    tmp_path: Path,
) -> None:
    """Neither the card number nor the cardholder's name is anywhere in the database file."""
    body = bodies[0]
    await client.post("/v1/score", json=body)
    assert await asyncio.to_thread(service.settle)  # drained from the journal: in the file
    data = b"".join(path.read_bytes() for path in tmp_path.glob("warehouse.db*"))
    assert body["trans_num"].encode() in data
    assert body["cc_num"].encode() not in data
    assert body["street"].encode() not in data
    assert (tmp_path / "warehouse.db").stat().st_mode & 0o077 == 0


# --- 6. weak tokens ------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["aaaaaaaaaaaaaaaa", "passwordpassword", "0000000000000000"])
def test_guessable_tokens_are_refused(tmp_path: Path, token: str) -> None:
    """Long enough but guessable: refused, with a hint to generate a real one."""
    settings = Settings(home=tmp_path, api_tokens=token, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(InsecureSettingsError, match=r"placeholder or short|too easy to guess"):
        create_app(settings)


def test_a_token_in_two_lists_is_refused(tmp_path: Path) -> None:
    """One token for scoring and administration would make every scoring client an admin."""
    token = secrets.token_urlsafe(32)
    settings = Settings(
        home=tmp_path,
        api_tokens=f"{SCORING_TOKEN},{token}",
        admin_tokens=token,
        _env_file=None,  # type: ignore[call-arg]
    )
    with pytest.raises(InsecureSettingsError, match="also in FRAUDOPS_API_TOKENS"):
        create_app(settings)


# --- 7. no 500s ----------------------------------------------------------------------------


async def test_a_label_time_that_overflows_in_utc_is_a_422(client: httpx.AsyncClient) -> None:
    """9999-12-31T23:59:59-05:00 cannot become UTC: 422 on label_time."""
    label = {"trans_num": "t", "is_fraud": True, "label_time": "9999-12-31T23:59:59-05:00"}
    response = await client.post("/v1/labels", json=label)
    assert 422 == response.status_code
    loc = response.json()["detail"][0]["loc"]
    assert ("body", "label_time") == (loc[0], loc[-1])


async def test_a_nul_in_a_trans_num_path_is_a_422(client: httpx.AsyncClient) -> None:
    """GET /v1/transactions/%00 is refused, not looked up."""
    response = await client.get("/v1/transactions/%00")
    assert 422 == response.status_code


# --- 9. loose checks -----------------------------------------------------------------------


async def test_a_trans_num_with_a_slash_can_be_read_back(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]]
) -> None:
    """Stored under 'a/b', read back at /v1/transactions/a/b."""
    await client.post("/v1/score", json={**bodies[0], "trans_num": "a/b"})
    response = await client.get("/v1/transactions/a/b")
    assert 200 == response.status_code
    assert "a/b" == response.json()["trans_num"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dob": "2030-01-01"}, "body"),
        ({"cc_num": True}, "cc_num"),
        ({"cc_num": "4000 1234 abcd"}, "cc_num"),
        ({"trans_num": "tab\there"}, "trans_num"),
    ],
)
async def test_transactions_are_checked_as_files_are(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], change: dict[str, Any], field: str
) -> None:
    """A birth date after the transaction, a boolean or letters for a card number, control
    characters in an id: 422 naming the field."""
    response = await client.post("/v1/score", json={**bodies[0], **change})
    assert 422 == response.status_code
    assert field == response.json()["detail"][0]["loc"][1 if field != "body" else 0]


@pytest.mark.parametrize("label_time", ["0001-01-01T00:00:00", "2099-01-01T00:00:00"])
async def test_label_times_outside_1970_to_now_are_refused(
    client: httpx.AsyncClient, label_time: str
) -> None:
    """Year 1 and 2099 are no times a label became known."""
    label = {"trans_num": "t", "is_fraud": False, "label_time": label_time}
    response = await client.post("/v1/labels", json=label)
    assert 422 == response.status_code
    assert "label_time" == response.json()["detail"][0]["loc"][-1]
