"""Where transactions go: the scoring service over HTTP, or a ScoringService in this process.

A sink stores a batch or says why it could not: `SinkUnavailableError` (down, overloaded,
a store failing: try again later, the batch is kept) or `SinkRefusedError` (this request
will never succeed: a bad token, a wrong URL; the ingester stops and keeps what it holds).
"""

from collections.abc import Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import httpx

from fraudops.client import FraudOpsClient, FraudOpsError
from fraudops.client.retry import NO_RETRIES
from fraudops.data.profile_schema import TransactionSchema
from fraudops.data.schema import CanonicalTransaction
from fraudops.features.state import FeatureStateUnavailableError
from fraudops.scoring.admission import TransactionsRefusedError
from fraudops.scoring.service import NoModelError, ScoringService
from fraudops.scoring.writer import StoreUnavailableError
from fraudops.storage.base import LabelRecord, StoredResult
from fraudops.times import utc_naive

STORE_TIMEOUT_SECONDS = 120.0


class SinkUnavailableError(RuntimeError):
    """The batch was not (all) stored this time; sending it again is safe (idempotent)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SinkRefusedError(RuntimeError):
    """The sink refuses the ingester itself (credentials, address): retrying cannot help."""


class ItemsRefusedError(ValueError):
    """The sink refuses some transactions of a batch (a date too far ahead, a trans_num reused
    with other content): by their position in the batch, why. The others may be resent."""

    def __init__(self, refused: dict[int, str]) -> None:
        super().__init__(f"{len(refused)} transactions refused")
        self.refused = refused


@dataclass(frozen=True, slots=True)
class Stored:
    """What the sink says of one stored transaction."""

    trans_num: str
    duplicate: bool
    fraud_probability: float
    decision: str


class Pending(Protocol):
    """A batch handed to a sink: `result()` waits until it is stored."""

    def result(self) -> list[Stored]:
        """What was stored, in order; SinkUnavailableError if it was not (all) stored."""
        ...


@dataclass(frozen=True)
class Done:
    """A batch already stored when submit returned."""

    stored: list[Stored]

    def result(self) -> list[Stored]:
        """What was stored."""
        return self.stored


class Sink(Protocol):
    """Stores transactions (scored) and labels, idempotently."""

    name: str

    def submit(self, transactions: Sequence[CanonicalTransaction]) -> Pending:
        """Score a batch now, in order; the result says when it is stored."""
        ...

    def labels(self, labels: Sequence[LabelRecord]) -> None:
        """Store labels (idempotent); unknown trans_nums are kept by the warehouse."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class HttpSink:
    """POST /v1/score/batch and /v1/labels of a running `fraudops serve`, through
    fraudops.client with its retries off: the ingester keeps its own (backoff, spool,
    metrics), and a failed batch stays in the spool until it is stored."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        timeout: float = 60.0,
        batch_limit: int = 1000,
        transport: httpx.BaseTransport | None = None,
        schema: TransactionSchema | None = None,
    ) -> None:
        self.name = f"http:{url}"
        self._schema = schema
        self.batch_limit = batch_limit
        self._client = FraudOpsClient(
            url,
            token=token,
            timeout=timeout,
            retry=NO_RETRIES,
            batch_limit=batch_limit,
            transport=transport,
        )

    def submit(self, transactions: Sequence[CanonicalTransaction]) -> Pending:
        """Score a batch over HTTP, stored on return (one request at a time keeps the order
        in which the service scores them); 429, 5xx and connection errors are
        SinkUnavailableError."""
        return Done(self.score(transactions))

    def score(self, transactions: Sequence[CanonicalTransaction]) -> list[Stored]:
        """Score and store a batch over HTTP."""
        try:
            results = self._client.score_many(self._requests(transactions))
        except FraudOpsError as error:
            raise self._sink_error(error) from error
        return [
            Stored(
                trans_num=r.trans_num,
                duplicate=r.duplicate,
                fraud_probability=r.fraud_probability,
                decision=r.decision,
            )
            for r in results
        ]

    def _requests(
        self, transactions: Sequence[CanonicalTransaction]
    ) -> Sequence[CanonicalTransaction] | list[dict[str, Any]]:
        """The transactions as the service's request schema reads them (a profile's own
        columns; Sparkov's canonical fields as they are)."""
        schema = self._schema
        if schema is None or schema.is_canonical:
            return transactions
        return [_json_fields(schema.record(t)) for t in transactions]

    def labels(self, labels: Sequence[LabelRecord]) -> None:
        """Record labels over HTTP."""
        try:
            self._client.labels(
                {
                    "trans_num": label.trans_num,
                    "is_fraud": label.is_fraud,
                    "label_time": label.label_time,
                    "source": label.source,
                }
                for label in labels
            )
        except FraudOpsError as error:
            raise self._sink_error(error) from error

    def _sink_error(self, error: FraudOpsError) -> Exception:
        """What the ingester makes of a failed request: wait and retry, set items aside, stop."""
        if error.transient or (error.status is not None and error.status >= 500):
            return SinkUnavailableError(f"{self.name}: {error}", retry_after=error.retry_after)
        if error.status in (409, 422):
            refused = _refused_items(error.detail)
            if refused:
                return ItemsRefusedError(refused)
        # 401/403 (token), 404 (URL), 413/422 (a batch the ingester should never build).
        return SinkRefusedError(f"{self.name} refused the request: {error}")

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


class InProcessSink:
    """A ScoringService in this process (the embedded default): no HTTP in between."""

    def __init__(self, service: ScoringService) -> None:
        self.name = "in-process"
        self.service = service

    def submit(self, transactions: Sequence[CanonicalTransaction]) -> Pending:
        """Score in this thread now; the result waits until the warehouse holds every one."""
        try:
            return _Storing(self.service.score_many(transactions))
        except (NoModelError, FeatureStateUnavailableError) as error:
            raise SinkUnavailableError(str(error)) from error
        except TransactionsRefusedError as refused:
            raise ItemsRefusedError(
                {p.index: f"{p.field}: {p.message}" for p in refused.problems}
            ) from refused

    def labels(self, labels: Sequence[LabelRecord]) -> None:
        """Record labels in the warehouse (and the online merchant state)."""
        try:
            self.service.record_labels(labels)
        except FeatureStateUnavailableError as error:
            raise SinkUnavailableError(str(error)) from error
        except Exception as error:  # the warehouse down: keep the labels and retry
            raise SinkUnavailableError(f"labels not stored: {error}") from error

    def close(self) -> None:
        """The service is stopped by whoever started it."""


@dataclass(frozen=True)
class _Storing:
    """Scored transactions on their way into the warehouse."""

    futures: "list[Future[StoredResult]]"

    def result(self) -> list[Stored]:
        """Wait for every one; SinkUnavailableError if the warehouse failed any."""
        _, pending = wait(self.futures, timeout=STORE_TIMEOUT_SECONDS)
        if pending:
            msg = f"{len(pending)} transactions not stored after {STORE_TIMEOUT_SECONDS:.0f} s"
            raise SinkUnavailableError(msg)
        results: list[Stored] = []
        for future in self.futures:
            failure = future.exception()
            if isinstance(failure, StoreUnavailableError):
                raise SinkUnavailableError(str(failure)) from failure
            if failure is not None:
                raise failure
            outcome = future.result()
            results.append(
                Stored(
                    trans_num=outcome.trans_num,
                    duplicate=not outcome.created,
                    fraud_probability=outcome.score.fraud_probability,
                    decision=outcome.score.decision,
                )
            )
        return results


def label_record(data: dict[str, Any]) -> LabelRecord:
    """A label item's data as a LabelRecord (label_time ISO 8601; naive means UTC)."""
    time = utc_naive(datetime.fromisoformat(str(data["label_time"])))
    return LabelRecord(
        trans_num=str(data["trans_num"]),
        is_fraud=bool(data["is_fraud"]),
        label_time=time,
        source=str(data.get("source", "ingest")),
    )


def _refused_items(detail: Any) -> dict[int, str]:
    """The batch positions a 409 or 422 detail names (loc body.transactions.N...), with why."""
    refused: dict[int, str] = {}
    for problem in detail if isinstance(detail, list) else []:
        loc = problem.get("loc", []) if isinstance(problem, dict) else []
        if len(loc) >= 3 and loc[:2] == ["body", "transactions"] and isinstance(loc[2], int):
            field = ".".join(map(str, loc[3:])) or "(transaction)"
            refused[loc[2]] = f"{field}: {problem.get('msg', '')}"
    return refused


def _json_fields(record: dict[str, Any]) -> dict[str, Any]:
    """A profile record ready for JSON: dates as ISO text, missing values left out."""
    return {
        key: value.isoformat() if isinstance(value, date | datetime) else value
        for key, value in record.items()
        if value is not None
    }
