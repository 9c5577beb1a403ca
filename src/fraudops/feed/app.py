"""The live feed's HTTP app: /current-transactions, /labels and /healthz over a TransactionFeed."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from fraudops import __version__
from fraudops.feed.ratelimit import SlidingWindowRateLimiter
from fraudops.feed.state import FeedExhaustedError, LabelsDisabledError, TransactionFeed

DEFAULT_MAX_BATCH = 1000
DEFAULT_MAX_WAIT_S = 5.0
DEFAULT_LABEL_LIMIT = 10_000
MAX_LABEL_LIMIT = 100_000

_ERROR = {"content": {"application/json": {"example": {"detail": "what went wrong"}}}}


def create_feed_app(
    feed: TransactionFeed,
    *,
    rate_limiter: SlidingWindowRateLimiter | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_wait_s: float = DEFAULT_MAX_WAIT_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FastAPI:
    """Serve `feed` like the public real-time payments API, plus delayed labels and health.

    Args:
        max_wait_s: under --speed, how long a request waits for the next row before a 204.
        sleep: how the app waits (tests pass one that advances a fake clock).
    """
    if max_batch < 1 or max_wait_s < 0:
        msg = f"max_batch must be >= 1 and max_wait_s >= 0, got {max_batch} and {max_wait_s}"
        raise ValueError(msg)
    app = FastAPI(
        title="fraudops live feed",
        version=__version__,
        description="Card transactions one request at a time, in the public feed's format.",
    )

    async def enforce_rate_limit(request: Request) -> None:
        """Answer 429 with Retry-After when the client is over its rate limit."""
        if rate_limiter is None:
            return
        client = request.client.host if request.client is not None else "unknown"
        decision = rate_limiter.check(client)
        if not decision.allowed:
            wait = decision.retry_after_s
            raise HTTPException(
                status_code=429,
                detail=f"rate limit of {rate_limiter.limit} exceeded; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    limited = [Depends(enforce_rate_limit)]

    @app.get(
        "/current-transactions",
        dependencies=limited,
        responses={
            200: {"description": "A JSON string holding a pandas split document of the rows."},
            204: {"description": "Under --speed: no row became due within the maximum wait."},
            410: {"description": "Every row has been served (the feed does not loop).", **_ERROR},
            429: {"description": "Over the rate limit; see Retry-After.", **_ERROR},
        },
    )
    async def current_transactions(
        n: Annotated[
            int, Query(ge=1, le=max_batch, description=f"Rows to return, 1 to {max_batch}.")
        ] = 1,
    ) -> Response:
        """The next transaction(s), as the JSON encoding of `DataFrame.to_json(orient="split")`."""
        budget = max_wait_s
        while True:
            try:
                batch = feed.next_batch(n)
            except FeedExhaustedError:
                raise HTTPException(
                    status_code=410,
                    detail=(
                        f"the feed has served all {feed.size} transactions; "
                        "restart it, or run it with --loop to replay them"
                    ),
                ) from None
            if batch.document is not None:
                return Response(content=json.dumps(batch.document), media_type="application/json")
            if budget <= 0:
                return Response(status_code=204)
            step = min(batch.wait_s, budget)
            await sleep(step)
            budget -= step

    @app.get(
        "/labels",
        dependencies=limited,
        responses={
            404: {"description": "Delayed-label mode is off.", **_ERROR},
            429: {"description": "Over the rate limit; see Retry-After.", **_ERROR},
        },
    )
    async def labels(
        since: Annotated[
            int | None,
            Query(description="Epoch ms: only labels with label_time > since (pass last until)."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LABEL_LIMIT)] = DEFAULT_LABEL_LIMIT,
    ) -> JSONResponse:
        """Labels of served transactions whose label time has passed on the feed's timeline."""
        try:
            page = feed.labels_since(since, limit=limit)
        except LabelsDisabledError:
            raise HTTPException(
                status_code=404,
                detail=(
                    "delayed-label mode is off: is_fraud is sent with each transaction "
                    "(start the feed with --label-delay or --label-times to serve labels here)"
                ),
            ) from None
        return JSONResponse(
            {
                "labels": [asdict(label) for label in page.labels],
                "until": page.until,
                "more": page.more,
            }
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str | int]:
        """Liveness, with how many rows were served and how many remain."""
        return {"status": "ok", "served": feed.served, "remaining": feed.remaining}

    return app
