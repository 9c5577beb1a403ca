"""An empty scoring endpoint: the same JSON body parsed into a CanonicalTransaction, no work.

bench_serve.py measures `fraudops serve` against it to tell the service's own cost from the
framework's. It is served as `fraudops serve` serves: uvicorn, one worker, the event loop and
HTTP parser uvicorn picks (uvloop, httptools), no access log.

    .venv/bin/python benchmarks/empty_app.py --port 8001
"""

import argparse

import uvicorn
from fastapi import FastAPI

from fraudops.data.schema import CanonicalTransaction


def create_app() -> FastAPI:
    """POST /v1/score that validates the body and answers a small JSON; GET /readyz."""
    app = FastAPI(title="empty scoring endpoint")

    @app.post("/v1/score")
    async def score(transaction: CanonicalTransaction) -> dict[str, str]:
        return {"trans_num": transaction.trans_num, "decision": "approve"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


def main() -> None:
    """Serve the empty app with `fraudops serve`'s uvicorn options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        access_log=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
