"""`FraudOpsClient` (blocking) and `AsyncFraudOpsClient` (asyncio) over httpx: the same calls,
one retry loop each; building requests and reading answers is shared and has no I/O."""

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import quote

import httpx
import orjson
import structlog
from pydantic import BaseModel

from fraudops.client.errors import FraudOpsError
from fraudops.client.results import LabelsResult, ModelsInService, ScoreResult, StoredTransaction
from fraudops.client.retry import RetryPolicy, retry_after_seconds
from fraudops.config import Settings

log = structlog.get_logger(__name__)

# The service's own default (FRAUDOPS_BATCH_LIMIT); a service set lower answers 413 naming
# its limit, and the client goes on in chunks of that size.
DEFAULT_BATCH_LIMIT = cast(int, Settings.model_fields["batch_limit"].default)
DEFAULT_TIMEOUT_SECONDS = 10.0
_LIMIT = re.compile(r"limit of (\d+)")

Transaction = Mapping[str, Any] | BaseModel
Label = Mapping[str, Any]


class _Calls:
    """What both clients share: settings, request bodies, reading answers and errors."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        retry: RetryPolicy | None,
        batch_limit: int,
    ) -> None:
        if batch_limit < 1:
            msg = f"batch_limit must be at least 1, got {batch_limit}"
            raise ValueError(msg)
        self.base_url = base_url.rstrip("/")
        self.retry = retry if retry is not None else RetryPolicy()
        self.batch_limit = batch_limit
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def _chunks(self, items: Sequence[Any]) -> list[Sequence[Any]]:
        return [items[i : i + self.batch_limit] for i in range(0, len(items), self.batch_limit)]

    def _shrunk(self, error: FraudOpsError, sent: int) -> bool:
        """After a 413: take the limit the service named, if it is below what was sent."""
        found = _LIMIT.search(str(error.detail)) if error.status == 413 else None
        if found is None or not 0 < int(found.group(1)) < sent:
            return False
        self.batch_limit = int(found.group(1))
        log.info("fraudops batch limit lowered", batch_limit=self.batch_limit)
        return True

    def _failure(self, method: str, path: str, response: httpx.Response) -> FraudOpsError:
        """The error of an answer that is not a success."""
        try:
            detail = orjson.loads(response.content).get("detail")
        except (orjson.JSONDecodeError, AttributeError):
            detail = response.text[:300]
        return FraudOpsError(
            f"{method} {self.base_url}{path} answered {response.status_code}: {detail}",
            status=response.status_code,
            detail=detail,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )

    def _unreachable(self, method: str, path: str, error: httpx.TransportError) -> FraudOpsError:
        failure = FraudOpsError(
            f"{method} {self.base_url}{path} failed: {type(error).__name__}: {error}", status=None
        )
        failure.__cause__ = error
        return failure

    def _next_wait(self, failure: FraudOpsError, attempt: int) -> float:
        """Seconds to wait before trying again; raises `failure` when it is not worth it."""
        wait = self.retry.delay(attempt, failure.retry_after) if failure.transient else None
        if wait is None:
            raise failure
        log.warning("fraudops request retried", error=str(failure)[:300], retry_in=round(wait, 3))
        return wait


def _body(payload: Any) -> bytes:
    return orjson.dumps(payload)


def _transaction_json(transaction: Transaction) -> dict[str, Any]:
    """A transaction as JSON data: a mapping as it is, a model (CanonicalTransaction) dumped."""
    if isinstance(transaction, BaseModel):
        return transaction.model_dump(mode="json", exclude_none=True)
    return dict(transaction)


def _label_json(
    trans_num: str,
    is_fraud: bool,
    label_time: datetime | None,
    source: str | None,
    analyst: str | None,
) -> dict[str, Any]:
    label: dict[str, Any] = {"trans_num": trans_num, "is_fraud": is_fraud}
    if label_time is not None:
        label["label_time"] = label_time.isoformat()
    if source is not None:
        label["source"] = source
    if analyst is not None:
        label["analyst"] = analyst
    return label


def _labels_json(labels: Iterable[Label]) -> list[dict[str, Any]]:
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in label.items()}
        for label in labels
    ]


def _verdicts(answer: Any, *, sent: int) -> list[ScoreResult]:
    """The results of a batch answer, one per transaction sent."""
    results = [ScoreResult.model_validate(r) for r in answer["results"]]
    if len(results) != sent:
        msg = f"the service answered {len(results)} results for {sent} transactions"
        raise FraudOpsError(msg, status=200, detail=msg)
    return results


def _summed(results: list[LabelsResult]) -> LabelsResult:
    return LabelsResult(
        stored=sum(r.stored for r in results),
        unchanged=sum(r.unchanged for r in results),
        updated=sum(r.updated for r in results),
        unknown_trans_nums=tuple(t for r in results for t in r.unknown_trans_nums),
    )


def _transaction_path(trans_num: str) -> str:
    return "/v1/transactions/" + quote(trans_num, safe="/")


class FraudOpsClient(_Calls):
    """A blocking client of `fraudops serve`; use it as a context manager, or close() it.

    Args:
        token: a scoring (or admin) bearer token.
        timeout: seconds for each request (connect, read, write), or an httpx.Timeout.
        retry: how transient failures are retried (RetryPolicy(retries=0): never).
        batch_limit: most transactions per batch request (the service's FRAUDOPS_BATCH_LIMIT).
        transport: an httpx transport in place of the network (tests, proxies).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        batch_limit: int = DEFAULT_BATCH_LIMIT,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(base_url, token=token, retry=retry, batch_limit=batch_limit)
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport
        )

    def score(self, transaction: Transaction) -> ScoreResult:
        """Score one transaction (stored before the answer)."""
        answer = self._call("POST", "/v1/score", _transaction_json(transaction))
        return ScoreResult.model_validate(answer)

    def score_many(self, transactions: Iterable[Transaction]) -> list[ScoreResult]:
        """Score transactions in order, in requests of at most the batch limit each."""
        items = [_transaction_json(t) for t in transactions]
        results: list[ScoreResult] = []
        while len(results) < len(items):
            chunk = items[len(results) : len(results) + self.batch_limit]
            try:
                answer = self._call("POST", "/v1/score/batch", {"transactions": chunk})
            except FraudOpsError as error:
                if self._shrunk(error, len(chunk)):
                    continue
                raise
            results += _verdicts(answer, sent=len(chunk))
        return results

    def label(
        self,
        trans_num: str,
        *,
        is_fraud: bool,
        label_time: datetime | None = None,
        source: str | None = None,
        analyst: str | None = None,
    ) -> LabelsResult:
        """Record one label (known now, unless label_time says when; `analyst` names the
        person who gave it)."""
        body = _label_json(trans_num, is_fraud, label_time, source, analyst)
        return LabelsResult.model_validate(self._call("POST", "/v1/labels", body))

    def labels(self, labels: Iterable[Label]) -> LabelsResult:
        """Record labels (trans_num, is_fraud, label_time, source, analyst) in batch-limit
        chunks."""
        chunks = self._chunks(_labels_json(labels))
        return _summed(
            [LabelsResult.model_validate(self._call("POST", "/v1/labels", c)) for c in chunks]
        )

    def transaction(self, trans_num: str) -> StoredTransaction:
        """What is stored about a transaction; FraudOpsError (404) if nothing."""
        answer = self._call("GET", _transaction_path(trans_num))
        return StoredTransaction.model_validate(answer)

    def models(self) -> ModelsInService:
        """The champion and challenger in service."""
        return ModelsInService.model_validate(self._call("GET", "/v1/models"))

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        """One request, retried while it fails transiently; the answer's JSON."""
        content = None if payload is None else _body(payload)
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, content=content)
            except httpx.TransportError as error:
                failure = self._unreachable(method, path, error)
            else:
                if response.is_success:
                    return orjson.loads(response.content)
                failure = self._failure(method, path, response)
            attempt += 1
            self._sleep(self._next_wait(failure, attempt))

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class AsyncFraudOpsClient(_Calls):
    """The asyncio client of `fraudops serve`: FraudOpsClient's calls, awaited; use it with
    `async with`, or aclose() it. Arguments as FraudOpsClient's."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        batch_limit: int = DEFAULT_BATCH_LIMIT,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(base_url, token=token, retry=retry, batch_limit=batch_limit)
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport
        )

    async def score(self, transaction: Transaction) -> ScoreResult:
        """Score one transaction (stored before the answer)."""
        answer = await self._call("POST", "/v1/score", _transaction_json(transaction))
        return ScoreResult.model_validate(answer)

    async def score_many(self, transactions: Iterable[Transaction]) -> list[ScoreResult]:
        """Score transactions in order, in requests of at most the batch limit each."""
        items = [_transaction_json(t) for t in transactions]
        results: list[ScoreResult] = []
        while len(results) < len(items):
            chunk = items[len(results) : len(results) + self.batch_limit]
            try:
                answer = await self._call("POST", "/v1/score/batch", {"transactions": chunk})
            except FraudOpsError as error:
                if self._shrunk(error, len(chunk)):
                    continue
                raise
            results += _verdicts(answer, sent=len(chunk))
        return results

    async def label(
        self,
        trans_num: str,
        *,
        is_fraud: bool,
        label_time: datetime | None = None,
        source: str | None = None,
        analyst: str | None = None,
    ) -> LabelsResult:
        """Record one label (known now, unless label_time says when; `analyst` names the
        person who gave it)."""
        body = _label_json(trans_num, is_fraud, label_time, source, analyst)
        return LabelsResult.model_validate(await self._call("POST", "/v1/labels", body))

    async def labels(self, labels: Iterable[Label]) -> LabelsResult:
        """Record labels (trans_num, is_fraud, label_time, source, analyst) in batch-limit
        chunks."""
        results = [
            LabelsResult.model_validate(await self._call("POST", "/v1/labels", chunk))
            for chunk in self._chunks(_labels_json(labels))
        ]
        return _summed(results)

    async def transaction(self, trans_num: str) -> StoredTransaction:
        """What is stored about a transaction; FraudOpsError (404) if nothing."""
        answer = await self._call("GET", _transaction_path(trans_num))
        return StoredTransaction.model_validate(answer)

    async def models(self) -> ModelsInService:
        """The champion and challenger in service."""
        return ModelsInService.model_validate(await self._call("GET", "/v1/models"))

    async def _call(self, method: str, path: str, payload: Any = None) -> Any:
        """One request, retried while it fails transiently; the answer's JSON."""
        content = None if payload is None else _body(payload)
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, content=content)
            except httpx.TransportError as error:
                failure = self._unreachable(method, path, error)
            else:
                if response.is_success:
                    return orjson.loads(response.content)
                failure = self._failure(method, path, response)
            attempt += 1
            await self._sleep(self._next_wait(failure, attempt))

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()
