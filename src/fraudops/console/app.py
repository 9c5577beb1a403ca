"""The console's app factory, its shared state, the security headers and the page helpers.

`create_app(settings)` refuses to start without console tokens; the routes live in
`session` (login, logout), `cases` (queue, cases, labels), `monitoring` (monitoring, daily
report, plots) and `models` (models, promote, rollback). Pages are Jinja2 templates with
autoescaping on; every script and style file is served from the package's `static/`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import structlog
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudops import __version__
from fraudops.config import Settings, get_settings
from fraudops.console.auth import SESSION_COOKIE, ConsoleTokens, Role, Sessions, User, same_token
from fraudops.logs import configure_logging
from fraudops.registry.base import ModelRegistry
from fraudops.storage import LifecycleEvent, Warehouse

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
# Forms are small: a comment, a reason, a token.
MAX_FORM_BYTES = 16_384
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Plots are SVG images drawn by matplotlib, whose <style> element sets line joins.
PLOT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


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


def create_app(
    settings: Settings | None = None,
    *,
    warehouse: Warehouse | None = None,
    registry: ModelRegistry | None = None,
) -> FastAPI:
    """The console app; `warehouse` and `registry` replace those the settings name (tests)."""
    from fraudops.console import cases, models, monitoring, session  # noqa: PLC0415 - cycle

    settings = settings if settings is not None else get_settings()
    tokens = ConsoleTokens.from_settings(settings)
    if warehouse is None:
        warehouse = Warehouse.from_settings(settings)
        warehouse.migrate()
    state = ConsoleState(
        settings=settings,
        warehouse=warehouse,
        tokens=tokens,
        sessions=Sessions(settings),
        templates=_templates(),
        registry_factory=_mlflow_registry if registry is None else (lambda _: registry),
    )
    if settings.console_secret is None:
        log.warning("FRAUDOPS_CONSOLE_SECRET is unset: sessions end when the console restarts")
    app = FastAPI(
        title="fraudops console",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.console = state
    for module in (session, cases, monitoring, models):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(LoginRequiredError, _to_login)
    app.add_exception_handler(StarletteHTTPException, _error_page)
    app.add_middleware(SecurityHeaders)
    return app


def app_from_environment() -> FastAPI:
    """The app for uvicorn's factory mode."""
    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)


def _mlflow_registry(settings: Settings) -> ModelRegistry:
    from fraudops.registry.tracking import MlflowRegistry  # noqa: PLC0415 - MLflow is heavy

    return MlflowRegistry(settings)


def _templates() -> Environment:
    """Jinja2 over the package's templates, escaping every value put in HTML."""
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["money"] = lambda value: f"{float(value):,.2f}"
    environment.filters["share"] = lambda value: "-" if value is None else f"{value:.1%}"
    environment.filters["number"] = lambda value: "-" if value is None else f"{value:.3f}"
    return environment


# --- used by the routes ----------------------------------------------------------------------


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


async def _to_login(_request: Request, _error: Exception) -> Response:
    return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)


async def _error_page(request: Request, error: Exception) -> Response:
    """Errors as a small page naming the problem (a fragment for HTMX requests)."""
    assert isinstance(error, StarletteHTTPException)  # noqa: S101 - registered for this type
    if "hx-request" in request.headers or request.url.path.endswith(".svg"):
        return Response(str(error.detail), status_code=error.status_code, media_type="text/plain")
    return page(
        request, "error.html", status_code=error.status_code, status=error.status_code,
        detail=str(error.detail),
    )  # fmt: skip


class SecurityHeaders:
    """Content-Security-Policy (no inline script), no framing, no sniffing, no caching of
    pages; static files cached for an hour."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to every HTTP response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                kind = next((v for k, v in headers if k == b"content-type"), b"")
                policy = PLOT_POLICY if kind.startswith(b"image/svg") else PAGE_POLICY
                headers += [
                    (b"content-security-policy", policy.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"public, max-age=3600" if static else b"no-store"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
