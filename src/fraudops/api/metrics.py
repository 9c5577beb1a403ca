"""HTTP request metrics of the scoring app, counted in the service's registry.

The service's own metrics (decisions, scores, reloads, state) live in
fraudops.scoring.metrics; this middleware adds the requests by route, method and status.
"""

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fraudops.scoring.metrics import ServiceMetrics

# Methods counted by name; any other is counted as "other" (labels must stay few).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestNotes:
    """Counts and times requests by route template, method and status."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        # The labelled children, looked up once: `labels()` costs microseconds per call.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def note(self, *, template: str, method: str, status: int, seconds: float) -> None:
        """One request answered."""
        key = (template, method if method in KNOWN_METHODS else "other", str(status))
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.metrics.requests.labels(route=key[0], method=key[1], status=key[2]),
                self.metrics.latency.labels(route=key[0], method=key[1]),
            )
        children[0].inc()
        children[1].observe(seconds)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.notes = RequestNotes(metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting its status and how long it took."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = scope.get("route")
            self.notes.note(
                template=getattr(route, "path", None) or "unmatched",
                method=scope.get("method", ""),
                status=status,
                seconds=time.perf_counter() - start,
            )
