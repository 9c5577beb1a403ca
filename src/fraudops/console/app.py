"""The console's app factory, its security headers and its error pages.

`create_app(settings)` refuses to start without console tokens; the routes live in
`session` (login, logout), `cases` (queue, cases, labels), `monitoring` (monitoring, daily
report, plots) and `models` (models, promote, rollback). Pages are Jinja2 templates with
autoescaping on; every script and style file is served from the package's `static/`.
What the routes share (state, user, forms, pages) is in `deps`.
"""

from pathlib import Path

import structlog
from fastapi import FastAPI, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudops import __version__
from fraudops.config import Settings, get_settings
from fraudops.console import cases, models, monitoring, session
from fraudops.console.auth import ConsoleTokens, Sessions
from fraudops.console.deps import ConsoleState, LoginRequiredError, page
from fraudops.logs import configure_logging
from fraudops.registry.base import ModelRegistry
from fraudops.storage import Warehouse

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Plots are SVG images drawn by matplotlib, whose <style> element sets line joins.
PLOT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def create_app(
    settings: Settings | None = None,
    *,
    warehouse: Warehouse | None = None,
    registry: ModelRegistry | None = None,
) -> FastAPI:
    """The console app; `warehouse` and `registry` replace those the settings name (tests)."""
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
