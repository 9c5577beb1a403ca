"""POST /v1/score answered straight off the ASGI call, before FastAPI's middleware stack.

A scoring request is the service's hot path: going through Starlette's error, body-limit,
exception and routing layers costs as much CPU as scoring it. The app hands a request that
is plainly well-formed (a bearer token that admits it, a declared length within the limit)
to `ScoreFastPath`, which checks the token, reads the body, scores it through the very
functions the route uses (`parse_transaction`, `score_transaction`) and answers, counting
it in the request metrics as the middleware would. Everything else, and any body that
fails validation, goes through the full app (the body replayed), which answers it as
before: same status codes, same problem documents.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError

from fraudops.api.auth import Access, TokenChecker
from fraudops.api.metrics import Message, Receive, RequestNotes, Scope, Send
from fraudops.api.routes import parse_transaction, score_transaction
from fraudops.scoring.metrics import ServiceMetrics

log = structlog.get_logger(__name__)

SCORE_PATH = "/v1/score"
JSON_HEADERS = [(b"content-type", b"application/json")]

ASGICall = Callable[[Scope, Receive, Send], Awaitable[None]]


class ScoreFastPath:
    """Serves POST /v1/score for an app whose state holds the started service."""

    def __init__(
        self, *, state: Any, tokens: TokenChecker, metrics: ServiceMetrics, max_body: int
    ) -> None:
        self._state = state
        self._tokens = tokens
        self._notes = RequestNotes(metrics)
        self._max_body = max_body

    @staticmethod
    def serves(scope: Scope) -> bool:
        """Whether a request is one this path may take."""
        if scope["type"] != "http":
            return False
        return bool(scope["path"] == SCORE_PATH and scope["method"] == "POST")

    async def __call__(self, scope: Scope, receive: Receive, send: Send, full: ASGICall) -> None:
        """Answer a scoring request, or hand it to `full` (the whole app)."""
        start = time.perf_counter()
        length = authorization = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"authorization":
                authorization = value.decode("latin-1")
        service = getattr(self._state, "service", None)
        if (
            service is None
            or length is None
            or not length.isdigit()
            or int(length) > self._max_body
            or self._tokens.access(authorization) is Access.NONE
        ):
            await full(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away
            return
        try:
            transaction = parse_transaction(service, body)
        except RequestValidationError:  # the full app answers it, naming each bad field
            await full(scope, _replaying(body, receive), send)
            return
        status, headers = 200, JSON_HEADERS
        try:
            answer = await score_transaction(service, self._state.batcher, transaction, start=start)
        except HTTPException as error:
            status = error.status_code
            answer = orjson.dumps({"detail": error.detail})
            headers = [
                *JSON_HEADERS,
                *((k.encode(), v.encode()) for k, v in (error.headers or {}).items()),
            ]
        except RequestValidationError as error:
            from fraudops.api.app import problem_document  # noqa: PLC0415 - app imports this

            status, answer = 422, orjson.dumps(problem_document(error.errors()))
        except Exception as error:  # as the app's handler: logged, no internals answered
            log.error("unhandled error", path=SCORE_PATH, exc_info=error)
            status, answer = 500, orjson.dumps({"detail": "internal error; it has been logged"})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", b"%d" % len(answer))],
            }
        )
        await send({"type": "http.response.body", "body": answer})
        self._notes.note(
            template=SCORE_PATH, method="POST", status=status, seconds=time.perf_counter() - start
        )


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; None if the client disconnected first."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then whatever the client sends next."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
