"""Logging in and out: a token for a signed session cookie, both audited."""

import secrets

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response

from fraudops.console.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, same_token
from fraudops.console.deps import console, current_user, page, read_form

router = APIRouter()


@router.get("/")
def home() -> Response:
    """The queue is the console's front page."""
    return RedirectResponse("/queue", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/login")
def login_form(request: Request) -> Response:
    """The login page; its form carries a CSRF token also set as a short-lived cookie."""
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", csrf_token=token, problem=None)
    _set_cookie(request, response, name=LOGIN_CSRF_COOKIE, value=token, max_age=3600, path="/login")
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    """A valid token opens a session; a wrong one is refused (401) and audited."""
    state = console(request)
    form = await read_form(request, csrf=None)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if expected is None or not same_token(form.get("csrf_token"), expected):
        return page(
            request, "error.html", status_code=403, status=403,
            detail="missing or wrong CSRF token: reload the login page",
        )  # fmt: skip
    found = state.tokens.match(form.get("token", ""))
    if found is None:
        state.audit("console:unknown", kind="login", verdict="refused", client=_client(request))
        token = secrets.token_urlsafe(32)
        response = page(
            request, "login.html", status_code=401, csrf_token=token,
            problem="That token opens nothing here.",
        )  # fmt: skip
        _set_cookie(
            request, response, name=LOGIN_CSRF_COOKIE, value=token, max_age=3600, path="/login"
        )
        return response
    name, role = found
    cookie, user = state.sessions.issue(name, role)
    state.audit(user, kind="login", verdict="ok", role=role.name.lower(), client=_client(request))
    opened = RedirectResponse("/queue", status_code=status.HTTP_303_SEE_OTHER)
    _set_cookie(request, opened, name=SESSION_COOKIE, value=cookie, max_age=state.sessions.max_age)
    opened.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return opened


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (the cookie is dropped) and audit it."""
    user = current_user(request)
    await read_form(request, csrf=user.csrf)
    console(request).audit(user, kind="logout", verdict="ok")
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=_https(request), httponly=True)
    return response


def _set_cookie(
    request: Request, response: Response, *, name: str, value: str, max_age: int, path: str = "/"
) -> None:
    """An HttpOnly, SameSite=Strict cookie, Secure when the console is reached over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=_https(request),
    )


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def _client(request: Request) -> str | None:
    return None if request.client is None else request.client.host
