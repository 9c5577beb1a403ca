"""The HTTP routes: thin adapters over the scoring service."""

import asyncio
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any, TypeVar, overload

import anyio
import orjson
from fastapi import APIRouter, Body, HTTPException, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from fraudops.api.auth import Access
from fraudops.api.batching import ScoreBatcher
from fraudops.api.bridge import FutureBridge
from fraudops.api.deps import AdminAccess, MetricsAccess, ScoringAccess, ServiceDep, SettingsDep
from fraudops.api.schemas import (
    BATCH_SHAPES,
    SCORE_SHAPE,
    BatchBody,
    BatchRequest,
    BatchResponse,
    JobAccepted,
    JobOut,
    LabelIn,
    LabelsResponse,
    ModelOut,
    ModelsResponse,
    Problem,
    ReloadResponse,
    RetrainRequest,
    ScoreResponse,
    SplitDocument,
    TransactionOut,
    score_payload,
)
from fraudops.config import Settings
from fraudops.data.profile_schema import TransactionSchema
from fraudops.data.schema import CanonicalTransaction
from fraudops.features.state import FeatureStateUnavailableError
from fraudops.lifecycle.jobs import JobRunner
from fraudops.scoring.admission import TransactionsRefusedError
from fraudops.scoring.metrics import ServiceMetrics
from fraudops.scoring.service import NoModelError, ScoringService
from fraudops.scoring.writer import StoreUnavailableError
from fraudops.storage.base import StoredResult
from fraudops.storage.warehouse import LOOKUP_CONNECTIONS
from fraudops.times import utc_now

# Worker threads scoring at once: one per look-up connection the warehouse keeps, so that
# none waits for a connection or opens one of its own (the default, 40 threads, made
# PostgreSQL connections open and close at every request under load).
SCORING_THREADS = LOOKUP_CONNECTIONS
SCORING_LIMITER = anyio.CapacityLimiter(SCORING_THREADS)

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "No model in service or a store is down."}
}
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or invalid bearer token."}
}

# OpenAPI links from a scored transaction to reading it back and labelling it: clients see
# the flow, and schemathesis chains the three calls in its stateful phase.
SCORED_LINKS: dict[int | str, dict[str, Any]] = {
    200: {
        "links": {
            "GetTransaction": {
                "operationId": "get_transaction",
                "parameters": {"trans_num": "$response.body#/trans_num"},
                "description": "What is stored about the transaction just scored.",
            },
            "RecordLabel": {
                "operationId": "record_labels",
                "requestBody": {"trans_num": "$response.body#/trans_num", "is_fraud": True},
                "description": "Its label, once known.",
            },
        }
    }
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": Problem,
        "description": "A trans_num already stored (or sent in the same request) with other "
        "content; identical content is answered as a duplicate instead.",
    }
}

router = APIRouter()
_Model = TypeVar("_Model", bound=BaseModel)
_Value = TypeVar("_Value")


class _ProfileBatch(BaseModel):
    """A {"transactions": [...]} batch of another profile (its items validated apart)."""

    model_config = ConfigDict(extra="forbid")

    transactions: list[Any] = Field(min_length=1)


def lean(handler: Callable[[Request], Coroutine[Any, Any, Response]]) -> type[APIRoute]:
    """A route class serving its path with `handler` (request in, response out) directly.

    FastAPI still documents the route from its declared endpoint (body, response model,
    security), but a request skips dependency solving, body parsing into keyword
    arguments and re-validation of the response: the handler reads the body, checks the
    token and validates with pydantic itself, and answers bytes serialised once. Errors go
    through the app's exception handlers as usual (401, 413, 422, 503).
    """

    class LeanRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            return handler

    return LeanRoute


async def _score_one(request: Request) -> Response:
    """POST /v1/score: one transaction scored, stored and answered."""
    start = time.perf_counter()
    service: ScoringService = request.app.state.service
    transaction = parse_transaction(service, await request.body())
    answer = await score_transaction(service, request.app.state.batcher, transaction, start=start)
    return Response(answer, media_type="application/json")


def parse_transaction(service: ScoringService, body: bytes) -> CanonicalTransaction:
    """The body of POST /v1/score as a transaction of the served profile; 422 naming each
    bad field."""
    return _parse(service.schema.one, body, shape=SCORE_SHAPE)


async def score_transaction(
    service: ScoringService,
    batcher: ScoreBatcher,
    transaction: CanonicalTransaction,
    *,
    start: float,
) -> bytes:
    """The JSON answer of POST /v1/score once the transaction is durably stored (the route
    and the app's fast path both answer with this); scored with the requests beside it."""
    try:
        outcome = await batcher.score(transaction)
    except Exception as error:
        raise _http_error(error, service, batch=False, at=("body",)) from None
    return _json(score_payload(outcome, latency_ms=(time.perf_counter() - start) * 1000))


async def _score_many(request: Request) -> Response:
    """POST /v1/score/batch: up to the batch limit, scored in order, stored, answered."""
    start = time.perf_counter()
    settings: Settings = request.app.state.settings
    body = await request.body()
    shape, items, document = _batch_shape(_loaded(body))
    _check_batch_size(len(items), settings.batch_limit)
    service: ScoringService = request.app.state.service
    transactions = _batch_transactions(shape, document, body, schema=service.schema)
    futures = await _submit(service, request.app.state.bridge, transactions, at=shape)
    outcomes = await _all_stored(futures, service, at=shape)
    latency = (time.perf_counter() - start) * 1000
    payload = {"results": [score_payload(o, latency_ms=latency) for o in outcomes]}
    return Response(_json(payload), media_type="application/json")


async def score(transaction: CanonicalTransaction) -> ScoreResponse:  # pragma: no cover
    """Score one canonical transaction with the champion, store it, and return the verdict.

    Sending a stored trans_num again returns the stored result (duplicate: true) and writes
    nothing. A feed record's is_fraud is stored as a label and never used as model input.
    """
    raise NotImplementedError  # served by _score_one; this declaration documents the route


async def score_batch(batch: BatchBody) -> BatchResponse:  # pragma: no cover
    """Score up to the configured batch limit of transactions, in order, and store them.

    The transactions come as `{"transactions": [...]}`, as a bare JSON array, or as the
    live feed's split document (`{"columns", "index", "data"}`, or the feed's JSON string
    holding it, forwarded as it came). Results are in request order; problems are located
    as sent (`body.transactions.N.field`, `body.N.field` or `body.data.N.field`).
    """
    raise NotImplementedError  # served by _score_many; this declaration documents the route


router.add_api_route(
    "/v1/score",
    score,
    methods=["POST"],
    response_model=ScoreResponse,
    dependencies=[ScoringAccess],
    responses={**SCORED_LINKS, **UNAUTHORIZED, **CONFLICT, **UNAVAILABLE},
    summary="Score one transaction",
    operation_id="score",
    route_class_override=lean(_score_one),
)
router.add_api_route(
    "/v1/score/batch",
    score_batch,
    methods=["POST"],
    response_model=BatchResponse,
    dependencies=[ScoringAccess],
    responses={
        **UNAUTHORIZED,
        **CONFLICT,
        **UNAVAILABLE,
        413: {"model": Problem, "description": "More transactions than the batch limit."},
    },
    summary="Score several transactions",
    operation_id="score_batch",
    route_class_override=lean(_score_many),
)


@router.post(
    "/v1/labels",
    response_model=LabelsResponse,
    dependencies=[ScoringAccess],
    responses={**UNAUTHORIZED, **UNAVAILABLE},
    summary="Record fraud labels",
    operation_id="record_labels",
)
def record_labels(
    labels: Annotated[LabelIn | list[LabelIn], Body()],
    service: ServiceDep,
    settings: SettingsDep,
) -> LabelsResponse:
    """Record one label or a list of them, idempotently, with the time each became known.

    Labels of transactions not stored yet are kept, reported, and match them on arrival.
    A label_time must lie between 1970 and the service's clock (plus the margin allowed
    to event times).
    """
    items = labels if isinstance(labels, list) else [labels]
    if not items:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="no labels given")
    _check_batch_size(len(items), settings.batch_limit)
    now = utc_now()
    latest = now + timedelta(seconds=settings.max_event_ahead_seconds)
    late = [
        {
            "loc": ["body", *([index] if isinstance(labels, list) else []), "label_time"],
            "msg": f"{item.label_time:%Y-%m-%d %H:%M:%S} is ahead of the service's clock "
            "by more than FRAUDOPS_MAX_EVENT_AHEAD_SECONDS",
            "type": "value_error",
        }
        for index, item in enumerate(items)
        if item.label_time is not None and item.label_time > latest
    ]
    if late:
        raise RequestValidationError(late)
    try:
        outcome = service.record_labels([item.record(now=now) for item in items])
    except FeatureStateUnavailableError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(error)) from error
    return LabelsResponse.from_outcome(outcome)


@router.get(
    "/v1/transactions/{trans_num:path}",
    response_model=TransactionOut,
    dependencies=[ScoringAccess],
    responses={**UNAUTHORIZED, 404: {"model": Problem, "description": "Not stored."}},
    summary="What is stored about a transaction",
    operation_id="get_transaction",
)
def get_transaction(
    request: Request,
    trans_num: Annotated[
        str,
        Path(
            min_length=1,
            max_length=128,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="The trans_num, as sent (any printable text, `/` included).",
        ),
    ],
    service: ServiceDep,
) -> TransactionOut:
    """The stored record, the champion's and challengers' scores, and the label if known.

    Personal fields (card number, birth date, gender, home location) are masked, the card
    shown as its last four digits, unless the token may read personal data (an admin or a
    FRAUDOPS_PII_TOKENS token); the raw record with names and street is then shown too,
    if the service keeps it (FRAUDOPS_RAW_RECORD_KEY).
    """
    stored = service.get_transaction(trans_num)
    if stored is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no stored transaction {trans_num!r}"
        )
    may_read = request.state.access >= Access.PII
    raw = None
    if may_read and stored.sealed is not None and service.personal.keeps_raw:
        raw = service.personal.reveal(stored.sealed)
    return TransactionOut.from_stored(stored, personal=may_read, raw=raw)


@router.get(
    "/v1/models",
    response_model=ModelsResponse,
    dependencies=[ScoringAccess],
    responses=UNAUTHORIZED,
    summary="Models in service",
)
async def models(service: ServiceDep) -> ModelsResponse:
    """The champion and challenger in service, with their thresholds and training metrics."""
    serving = service.models
    return ModelsResponse(
        champion=None if serving.champion is None else ModelOut.from_serving(serving.champion),
        challenger=None
        if serving.challenger is None
        else ModelOut.from_serving(serving.challenger),
    )


@router.post(
    "/v1/models/reload",
    response_model=ReloadResponse,
    dependencies=[AdminAccess],
    responses={**UNAUTHORIZED, 403: {"model": Problem, "description": "Not an admin token."}},
    summary="Hot-swap to the versions the registry aliases point at",
)
def reload_models(service: ServiceDep) -> ReloadResponse:
    """Load the champion and challenger aliases' versions, canary-check them, swap atomically.

    Requests in flight finish on the model they started with; a version that fails to load
    or fails its canary check is not swapped in.
    """
    return ReloadResponse.from_report(service.reload())


ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    **UNAUTHORIZED,
    403: {"model": Problem, "description": "Not an admin token."},
}


@router.post(
    "/v1/retrain",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    dependencies=[AdminAccess],
    responses=ADMIN_ONLY,
    summary="Retrain on the most recent labelled data, as a background job",
)
def start_retrain(
    request: Request,
    response: Response,
    service: ServiceDep,
    settings: SettingsDep,
    options: Annotated[RetrainRequest | None, Body()] = None,
) -> JobAccepted:
    """Start a retraining with the standard recipe; the new version becomes the challenger.

    Answers at once with the job's status URL (also in the Location header). When the job
    has registered the model, the service reloads, so the new challenger is scored in
    shadow. One job runs at a time: while one runs, its status is returned instead
    (accepted: false). Jobs are kept in this process's memory.
    """
    asked = options if options is not None else RetrainRequest()

    def run_retrain() -> dict[str, Any]:
        return _retrain_and_reload(service, settings, asked)

    jobs: JobRunner = request.app.state.jobs
    submission = jobs.submit("retrain", run_retrain)
    status_url = str(request.url_for("job_status", job_id=submission.job.id).path)
    response.headers["Location"] = status_url
    return JobAccepted.from_submission(submission, status_url=status_url)


@router.get(
    "/v1/jobs/{job_id}",
    response_model=JobOut,
    dependencies=[AdminAccess],
    responses={**ADMIN_ONLY, 404: {"model": Problem, "description": "No such job."}},
    summary="A background job's status and result",
)
def job_status(
    request: Request, job_id: Annotated[str, Path(min_length=1, max_length=64)]
) -> JobOut:
    """Queued, running, succeeded (with its result) or failed (with the error)."""
    jobs: JobRunner = request.app.state.jobs
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no job {job_id!r}: jobs are kept in the memory of the process that "
            "ran them, until it restarts",
        )
    return JobOut.from_job(job)


def _retrain_and_reload(
    service: ScoringService, settings: Settings, asked: RetrainRequest
) -> dict[str, Any]:
    """The retrain job: train on the service's warehouse, register, reload the service."""
    # The lifecycle (training) is imported when a job runs: the service starts without it.
    from fraudops.lifecycle.facade import Lifecycle  # noqa: PLC0415

    lifecycle = Lifecycle.from_settings(
        settings, service.warehouse, registry=service.registry, actor="api"
    )
    result = lifecycle.retrain(asked.as_of, trigger=asked.trigger)
    reload = ReloadResponse.from_report(service.reload())
    return result.to_dict() | {"reload": reload.model_dump(mode="json")}


@router.get("/healthz", summary="Liveness", responses={200: {"model": dict[str, str]}})
async def healthz(request: Request) -> dict[str, str]:
    """The process is up; in development mode it says authentication is off."""
    if request.app.state.dev:
        return {"status": "ok", "mode": "development", "authentication": "off"}
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={200: {"model": dict[str, str]}, 503: {"model": dict[str, str]}},
)
async def readyz(service: ServiceDep) -> JSONResponse:
    """Ready when a champion is loaded, the feature state is rebuilt and storage is running."""
    reason = service.readiness()
    if reason is not None:
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
    champion = service.models.champion
    version = "" if champion is None else str(champion.version)
    return JSONResponse({"status": "ready", "champion_version": version})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[MetricsAccess],
    responses=UNAUTHORIZED,
)
async def metrics(request: Request) -> Response:
    """Prometheus exposition text (every worker's values); a token unless metrics are public."""
    registry: ServiceMetrics = request.app.state.metrics
    service = getattr(request.app.state, "service", None)
    if service is not None:
        registry.ready.set(1.0 if service.readiness() is None else 0.0)
    body = await run_in_threadpool(registry.render)
    return Response(body, media_type=registry.content_type)


async def _submit(
    service: ScoringService,
    bridge: FutureBridge,
    transactions: list[CanonicalTransaction],
    *,
    at: tuple[str, ...],
) -> "list[asyncio.Future[StoredResult]]":
    """Score a batch request in a worker thread, so that the loop goes on answering other
    requests meanwhile (at most SCORING_THREADS at once: more would only queue for the GIL
    and for connections), and wrap the storage futures for awaiting."""
    try:
        futures = await anyio.to_thread.run_sync(
            service.score_many, transactions, limiter=SCORING_LIMITER
        )
    except Exception as error:
        raise _http_error(error, service, batch=True, at=at) from None
    return [bridge.wait(future) for future in futures]


def _http_error(
    error: Exception, service: ScoringService, *, batch: bool, at: tuple[str, ...]
) -> Exception:
    """What answers a scoring error: 503 when no model or store can serve, 409 or 422 (counted)
    for refused transactions; any other error as it is."""
    if isinstance(error, NoModelError | FeatureStateUnavailableError | StoreUnavailableError):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(error))
    if isinstance(error, TransactionsRefusedError):
        reason = "conflict" if error.conflict else "invalid"
        service.metrics.refused.labels(reason=reason).inc(len(error.problems))
        return _refusal(error, batch=batch, at=at)
    return error


def _refusal(refused: TransactionsRefusedError, *, batch: bool, at: tuple[str, ...]) -> Exception:
    """A 409 naming the conflicting trans_nums, or a 422 naming each bad field (located
    under `at`, where the batch's transactions were in the body)."""
    problems = [
        {
            "loc": [*at, *([p.index] if batch else []), p.field],
            "msg": p.message,
            "type": "conflict" if refused.conflict else "value_error",
            "trans_num": p.trans_num,
        }
        for p in refused.problems
    ]
    if refused.conflict:
        return HTTPException(status.HTTP_409_CONFLICT, detail=problems)
    return RequestValidationError(problems)


def _loaded(body: bytes) -> Any:
    """The JSON document of a body; 422 if it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        problem = {"loc": ["body"], "msg": f"not valid JSON: {error}", "type": "json_invalid"}
        raise RequestValidationError([problem]) from None


def _batch_shape(document: Any) -> tuple[tuple[str, ...], list[Any], Any]:
    """Where a batch body holds its transactions, them (unvalidated, to be counted before
    anything validates them) and the document; 422 naming the accepted shapes otherwise."""
    if isinstance(document, str):  # the live feed's body forwarded as it came
        try:
            document = orjson.loads(document)
        except orjson.JSONDecodeError:
            document = None
        if not isinstance(document, dict) or "data" not in document:
            raise _wrong_shape("a JSON string that does not hold a split document")
    if isinstance(document, list):
        return ("body",), document, document
    if isinstance(document, dict):
        if "transactions" in document:
            items = document["transactions"]
            return ("body", "transactions"), items if isinstance(items, list) else [], document
        if "data" in document or "columns" in document:
            rows = document.get("data")
            return ("body", "data"), rows if isinstance(rows, list) else [], document
        if "trans_num" in document:
            raise _wrong_shape("one transaction (POST it to /v1/score)")
    kind = "an object without transactions or data" if isinstance(document, dict) else None
    raise _wrong_shape(kind or f"a JSON {type(document).__name__}")


def _wrong_shape(got: str) -> RequestValidationError:
    """422 for a batch body of none of the accepted shapes, saying which are."""
    problem = {"loc": ["body"], "msg": f"{BATCH_SHAPES}; got {got}", "type": "body_shape"}
    return RequestValidationError([problem])


def _batch_transactions(
    at: tuple[str, ...], document: Any, body: bytes, *, schema: TransactionSchema
) -> list[CanonicalTransaction]:
    """The transactions of a batch body of a known shape, validated (from the JSON text, as
    every shape is) by the served profile's schema; 422 naming each bad field where it was
    sent."""
    if at == ("body", "transactions"):
        if schema.is_canonical:
            return _parse(BatchRequest, body).transactions
        _parse(_ProfileBatch, body)  # no other member than transactions
        return _parse(schema.many, orjson.dumps(document["transactions"]), at=at)
    if at == ("body",):
        return _parse(schema.many, body)
    split = _parse(SplitDocument, orjson.dumps(document))
    width = len(split.columns)
    uneven = [
        {
            "loc": ["body", "data", row],
            "msg": f"has {len(values)} values for {width} columns",
            "type": "value_error",
        }
        for row, values in enumerate(split.data)
        if len(values) != width
    ]
    if uneven:
        raise RequestValidationError(uneven)
    records = [dict(zip(split.columns, values, strict=True)) for values in split.data]
    return _parse(schema.many, orjson.dumps(records), at=at)


async def _all_stored(
    futures: "list[asyncio.Future[StoredResult]]", service: ScoringService, *, at: tuple[str, ...]
) -> list[StoredResult]:
    """Every stored outcome, in order; 503 if the warehouse could not store one of them."""
    results = await asyncio.gather(*futures, return_exceptions=True)
    outcomes: list[StoredResult] = []
    for result in results:
        if isinstance(result, Exception):
            raise _http_error(result, service, batch=True, at=at) from None
        if isinstance(result, BaseException):
            raise result
        outcomes.append(result)
    return outcomes


def _check_batch_size(size: int, limit: int) -> None:
    """413 when a request carries more items than the configured limit."""
    if size > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"{size} items is more than the limit of {limit} per request "
            "(FRAUDOPS_BATCH_LIMIT)",
        )


@overload
def _parse(
    model: type[_Model], body: bytes, *, at: tuple[str, ...] = ..., shape: str | None = ...
) -> _Model: ...


@overload
def _parse(
    model: TypeAdapter[_Value], body: bytes, *, at: tuple[str, ...] = ..., shape: str | None = ...
) -> _Value: ...


def _parse(
    model: type[BaseModel] | TypeAdapter[Any],
    body: bytes,
    *,
    at: tuple[str, ...] = ("body",),
    shape: str | None = None,
) -> Any:
    """The body validated as `model`; a 422 naming each bad field as FastAPI names them (under
    `at`), and the accepted `shape` when the body as a whole has the wrong type."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_json(body)
        return model.model_validate_json(body)
    except ValidationError as error:
        problems = [{**item, "loc": (*at, *item["loc"])} for item in error.errors()]
        if shape is not None and problems[0]["loc"] == at and problems[0]["type"] == "model_type":
            problems[0]["msg"] = f"{problems[0]['msg']}: {shape}"
        raise RequestValidationError(problems) from None


def _json(payload: object) -> bytes:
    """JSON bytes of a response payload (NaN and infinities as null)."""
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
