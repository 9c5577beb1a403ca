"""Who may use the console: login, the session cookie, logout, expiry and CSRF."""

import time

import pytest
from console_client import ADMIN_TOKEN, ANALYST_TOKEN, SESSION_SECRET, csrf_of, log_in, page_csrf
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pydantic import SecretStr

from fraudops.api.auth import InsecureSettingsError
from fraudops.config import Settings
from fraudops.console.app import create_app
from fraudops.console.auth import SESSION_COOKIE, SESSION_SALT, ConsoleTokens, Role, Sessions
from fraudops.registry.memory import InMemoryRegistry
from fraudops.storage import Warehouse


def test_the_login_page_asks_for_a_token(client: TestClient) -> None:
    """The form has a field labelled Token and a CSRF token."""
    html = client.get("/login").text
    assert '<label for="token">Token</label>' in html
    assert csrf_of(html)


def test_an_analyst_token_opens_a_session_with_safe_cookie_flags(client: TestClient) -> None:
    """303 to the queue; the cookie is HttpOnly, SameSite=Strict, expires, not Secure on HTTP."""
    response = log_in(client, ANALYST_TOKEN)
    assert 303 == response.status_code
    assert "/queue" == response.headers["location"]
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    ).lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "max-age=28800" in cookie
    assert "secure" not in cookie
    assert "alice (analyst)" in client.get("/queue").text


def test_over_https_the_session_cookie_is_secure(settings: Settings, warehouse: Warehouse) -> None:
    """A console reached over HTTPS marks its cookie Secure."""
    app = create_app(settings, warehouse=warehouse, registry=InMemoryRegistry())
    with TestClient(app, base_url="https://console.example") as client:
        response = log_in(client, ADMIN_TOKEN)
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    assert "secure" in cookie.lower()


def test_a_wrong_token_is_refused_and_audited(client: TestClient, warehouse: Warehouse) -> None:
    """401 with the login page again; no session; a refused login on the audit trail."""
    response = log_in(client, ANALYST_TOKEN[:-1] + "X")
    assert 401 == response.status_code
    assert "opens nothing" in response.text
    assert SESSION_COOKIE not in client.cookies
    event = warehouse.events(limit=1)[0]
    assert ("login", "refused", "console:unknown") == (event.kind, event.verdict, event.actor)


def test_a_login_is_audited_with_its_actor(analyst: TestClient, warehouse: Warehouse) -> None:
    """The analyst's login is on the audit trail under their name."""
    event = warehouse.events(limit=1)[0]
    assert ("login", "ok", "console:alice") == (event.kind, event.verdict, event.actor)
    assert "analyst" == event.detail["role"]


def test_a_login_without_its_csrf_token_is_refused(client: TestClient) -> None:
    """403: the login form's token must come back."""
    client.get("/login")
    response = client.post("/login", data={"token": ANALYST_TOKEN}, follow_redirects=False)
    assert 403 == response.status_code


def test_pages_send_strangers_to_the_login(client: TestClient) -> None:
    """Every page redirects to /login without a session; a fragment or a plot answers 401."""
    for path in ("/queue", "/cases/x", "/monitoring", "/models", "/reports/daily"):
        response = client.get(path, follow_redirects=False)
        assert (303, "/login") == (response.status_code, response.headers["location"]), path
    assert 401 == client.get("/queue/rows", headers={"HX-Request": "true"}).status_code
    assert 401 == client.get("/plots/alerts.svg").status_code


def test_logout_ends_the_session_and_is_audited(analyst: TestClient, warehouse: Warehouse) -> None:
    """After logging out the queue redirects to the login again."""
    response = analyst.post(
        "/logout", data={"csrf_token": page_csrf(analyst)}, follow_redirects=False
    )
    assert 303 == response.status_code
    assert 303 == analyst.get("/queue", follow_redirects=False).status_code
    event = warehouse.events(limit=1)[0]
    assert ("logout", "console:alice") == (event.kind, event.actor)


def test_a_post_without_the_csrf_token_is_refused(analyst: TestClient) -> None:
    """403 on a form without (or with another) CSRF token, and nothing happens."""
    assert 403 == analyst.post("/logout", data={}).status_code
    assert 403 == analyst.post("/logout", data={"csrf_token": "forged"}).status_code
    assert 200 == analyst.get("/queue").status_code  # still logged in


def test_an_expired_session_is_no_session(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cookie signed longer ago than FRAUDOPS_CONSOLE_SESSION_HOURS (8) opens nothing."""
    serializer = URLSafeTimedSerializer(SESSION_SECRET, salt=SESSION_SALT)
    document = {"n": "alice", "r": 1, "c": "x"}
    fresh = serializer.dumps(document)
    nine_hours_ago = int(time.time()) - 9 * 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _signer: nine_hours_ago)
    stale = serializer.dumps(document)
    monkeypatch.undo()
    client.cookies.set(SESSION_COOKIE, fresh)
    assert 200 == client.get("/queue", follow_redirects=False).status_code
    client.cookies.set(SESSION_COOKIE, stale)
    assert 303 == client.get("/queue", follow_redirects=False).status_code


def test_a_forged_cookie_is_no_session(client: TestClient) -> None:
    """A cookie signed with another key opens nothing."""
    forged = URLSafeTimedSerializer("another key", salt=SESSION_SALT).dumps(
        {"n": "mallory", "r": 2, "c": "x"}
    )
    client.cookies.set(SESSION_COOKIE, forged)
    assert 303 == client.get("/models", follow_redirects=False).status_code


def test_tokens_name_analysts_and_admins(settings: Settings) -> None:
    """`name=token` names an analyst; admin tokens are named by their position."""
    tokens = ConsoleTokens.from_settings(settings)
    assert ("alice", Role.ANALYST) == tokens.match(ANALYST_TOKEN)
    assert ("admin-1", Role.ADMIN) == tokens.match(ADMIN_TOKEN)
    assert tokens.match("") is None


@pytest.mark.parametrize(
    ("analysts", "admins", "problem"),
    [
        ("", "", "no console tokens"),
        ("bob=passwordpassword", "", "placeholder|too easy"),
        ("bob=short", "", "placeholder or shorter"),
        (f"bob={ADMIN_TOKEN}", ADMIN_TOKEN, "both"),
        (f"bob={ANALYST_TOKEN},bob={ADMIN_TOKEN}", "", "same name"),
        (f"<b>={ANALYST_TOKEN}", "", "a name is"),
    ],
)
def test_weak_or_missing_tokens_stop_the_console(
    settings: Settings, analysts: str, admins: str, problem: str
) -> None:
    """The console refuses to start rather than run open or on guessable tokens."""
    bad = settings.model_copy(
        update={"analyst_tokens": SecretStr(analysts) if analysts else None, "admin_tokens": admins}
    )
    with pytest.raises(InsecureSettingsError, match=problem):
        ConsoleTokens.from_settings(bad)


@pytest.mark.parametrize(
    ("secret", "problem"), [("changeme", "placeholder"), ("a" * 40, "too easy")]
)
def test_a_guessable_cookie_signing_secret_stops_the_console(
    settings: Settings, secret: str, problem: str
) -> None:
    """Whoever guesses FRAUDOPS_CONSOLE_SECRET can sign an admin's session: refused at start."""
    weak = settings.model_copy(update={"console_secret": SecretStr(secret)})
    with pytest.raises(InsecureSettingsError, match=f"FRAUDOPS_CONSOLE_SECRET.*{problem}"):
        Sessions(weak)
