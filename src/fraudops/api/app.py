"""The FastAPI app factory: settings in, a scoring service started by the lifespan.

`create_app(settings)` refuses insecure settings before anything starts; the lifespan
builds the service from the settings (warehouse, registry, feature state store), starts
it, and on shutdown stores everything it accepted before the process ends.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fraudops import __version__
from fraudops.api.auth import DEV_BANNER, TokenChecker, TokenGate
from fraudops.api.batching import BATCH_THREADS, ScoreBatcher
from fraudops.api.bridge import FutureBridge
from fraudops.api.fastpath import ScoreFastPath
from fraudops.api.metrics import MetricsMiddleware, Receive, Scope, Send
from fraudops.api.openapi import served_openapi
from fraudops.api.routes import router
from fraudops.api.server import settle_process_for_serving
from fraudops.config import Settings, get_settings
from fraudops.lifecycle.jobs import JobRunner
from fraudops.logs import configure_logging
from fraudops.monitoring.metrics import LifecycleEventCollector, MonitorCollector
from fraudops.scoring.factory import build_service
from fraudops.scoring.metrics import ServiceMetrics
from fraudops.scoring.service import ScoringService

log = structlog.get_logger(__name__)

# Request bodies beyond this many bytes per allowed batch item are refused before parsing.
BYTES_PER_ITEM = 8192
# Problems a 422 lists; beyond, it says how many there were.
MAX_PROBLEMS = 20


class ScoringApp(FastAPI):
    """The FastAPI app, taking POST /v1/score by its fast path (api.fastpath) when it can."""

    fast_path: ScoreFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand a scoring request to the fast path, anything else to FastAPI."""
        fast = self.fast_path
        if fast is not None and fast.serves(scope):
            await fast(scope, receive, send, super().__call__)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    service: ScoringService | None = None,
    dev: bool = False,
) -> FastAPI:
    """The scoring service's app; `service` replaces the one built from settings (tests).

    `dev` (the --dev flag of `fraudops serve`, and nothing else) switches tokens off.
    """
    settings = settings if settings is not None else get_settings()
    tokens = TokenChecker.from_settings(settings, dev=dev)
    metrics = service.metrics if service is not None else ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = service if service is not None else build_service(settings, metrics=metrics)
        await asyncio.to_thread(running.start, block=False, loaded=settle_process_for_serving)
        app.state.service = running
        app.state.bridge = bridge = FutureBridge(asyncio.get_running_loop())
        app.state.batcher = ScoreBatcher(running, bridge=bridge, threads=BATCH_THREADS)
        # The latest monitoring run (whoever ran it: the loop, the CLI, Airflow) on /metrics.
        monitoring = MonitorCollector(running.warehouse)
        metrics.registry.register(monitoring)
        # The audit trail's decisions by verdict: failed retrainings, promotions, rollbacks.
        decisions = LifecycleEventCollector(running.warehouse)
        metrics.registry.register(decisions)
        if dev:
            log.warning(DEV_BANNER)
        try:
            yield
        finally:
            metrics.registry.unregister(decisions)
            metrics.registry.unregister(monitoring)
            await asyncio.to_thread(running.stop)

    max_body_size = settings.batch_limit * BYTES_PER_ITEM + 65_536
    app = ScoringApp(
        title="fraudops scoring service",
        version=__version__,
        description="Real-time card-fraud scoring: online features, champion score, "
        "reasons, storage, labels, shadow challenger and hot model reload.",
        lifespan=lifespan,
        max_body_size=max_body_size,
        # Prometheus (/metrics) is the service's telemetry; FastAPI's own OpenTelemetry
        # middleware would otherwise switch itself on when MLflow sets a tracer provider.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.openapi = served_openapi(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.tokens = tokens
    app.state.dev = dev
    app.state.metrics = metrics
    app.state.jobs = JobRunner()  # background jobs of this process (POST /v1/retrain)
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
    # Outermost last: every request is counted, and refused without a token before any
    # route reads its body.
    app.add_middleware(TokenGate, tokens=tokens)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.fast_path = ScoreFastPath(
        state=app.state, tokens=tokens, metrics=metrics, max_body=max_body_size
    )
    return app


def app_from_environment() -> FastAPI:
    """The app for uvicorn's factory mode (each worker builds its own from the environment)."""
    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    """422 naming each bad field and the problem (the first MAX_PROBLEMS of them), without
    echoing large inputs back."""
    assert isinstance(error, RequestValidationError)  # noqa: S101 - registered for this type
    return JSONResponse(
        problem_document(error.errors()), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


def problem_document(errors: Sequence[Any]) -> dict[str, Any]:
    """`{"detail": [...]}` of the first MAX_PROBLEMS errors, and how many there were."""
    shown = [
        {"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type", "")}
        for item in errors[:MAX_PROBLEMS]
    ]
    document: dict[str, Any] = {"detail": shown}
    if len(errors) > MAX_PROBLEMS:
        document["problems"] = len(errors)
        document["note"] = f"the first {MAX_PROBLEMS} of {len(errors)} problems are listed"
    return document


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """500 with no internals for the client; the traceback goes to the log."""
    log.error("unhandled error", path=request.url.path, exc_info=error)
    return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)
