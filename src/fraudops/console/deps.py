"""What the console's routes share: its state, the logged-in user, forms, pages, plots."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fastapi import HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment

from fraudops.config import Settings
from fraudops.console.auth import SESSION_COOKIE, ConsoleTokens, Role, Sessions, User, same_token
from fraudops.registry.base import ModelRegistry
from fraudops.storage import LifecycleEvent, Warehouse

# Forms are small: a comment, a reason, a token.
MAX_FORM_BYTES = 16_384


@dataclass
class ConsoleState:
    """What every route reads: settings, the warehouse, the registry, sessions, templates."""

    settings: Settings
    warehouse: Warehouse
    tokens: ConsoleTokens
    sessions: Sessions
    templates: Environment
    registry_factory: Callable[[Settings], ModelRegistry]
    _registry: ModelRegistry | None = field(default=None, init=False)

    @property
    def registry(self) -> ModelRegistry:
        """The model registry, opened on first use (MLflow is slow to import)."""
        if self._registry is None:
            self._registry = self.registry_factory(self.settings)
        return self._registry

    def audit(self, user: User | str, *, kind: str, verdict: str, **detail: Any) -> None:
        """Put a person's action on the audit trail."""
        actor = user.actor if isinstance(user, User) else user
        self.warehouse.record_event(
            LifecycleEvent(
                kind=kind, trigger="console", actor=actor, verdict=verdict, detail=detail
            )
        )


class LoginRequiredError(Exception):
    """A page was asked for without a valid session."""


def console(request: Request) -> ConsoleState:
    """The console's state."""
    state: ConsoleState = request.app.state.console
    return state


def current_user(request: Request) -> User:
    """The logged-in user; a page without a session sends the browser to /login."""
    user = console(request).sessions.read(request.cookies.get(SESSION_COOKIE))
    if user is None:
        wants_page = "hx-request" not in request.headers and not request.url.path.endswith(".svg")
        if request.method == "GET" and wants_page:
            raise LoginRequiredError
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="log in first")
    return user


def require_admin(user: User) -> None:
    """403 unless the user is an administrator."""
    if user.role < Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only administrators may do this")


async def read_form(request: Request, *, csrf: str | None) -> dict[str, str]:
    """A URL-encoded form's fields (first value of each); with `csrf`, its CSRF token
    must match (403 otherwise)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail="the form is too large")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind != "application/x-www-form-urlencoded":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail="send a form")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="unreadable form") from error
    form = {name: values[0] for name, values in fields.items()}
    if csrf is not None and not same_token(form.get("csrf_token"), csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing or wrong CSRF token")
    return form


def page(request: Request, template: str, *, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A template rendered with the user (if any) and the values the route gathered."""
    state = console(request)
    user = state.sessions.read(request.cookies.get(SESSION_COOKIE))
    html = state.templates.get_template(template).render(user=user, path=request.url.path, **values)
    return HTMLResponse(html, status_code=status_code)


def svg(document: bytes) -> Response:
    """A plot as an SVG response."""
    return Response(document, media_type="image/svg+xml")
