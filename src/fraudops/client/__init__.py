"""A Python client of the scoring service: `FraudOpsClient` and `AsyncFraudOpsClient`.

    with FraudOpsClient("http://127.0.0.1:8000", token=token) as fraudops:
        verdict = fraudops.score(transaction)
        verdicts = fraudops.score_many(transactions)  # in chunks of the batch limit

Requests that meet 429, 502, 503, 504 or a transport error (refused connection, timeout)
are retried with exponential backoff, honouring Retry-After: every call is idempotent
(scoring by trans_num, labels by trans_num and content), so a retried score that the service
had already stored answers its stored verdict with `duplicate=True`. Other answers raise
`FraudOpsError` with the status and the service's `detail`.
"""

from fraudops.client.errors import FraudOpsError
from fraudops.client.http import DEFAULT_BATCH_LIMIT, AsyncFraudOpsClient, FraudOpsClient
from fraudops.client.results import (
    LabelsResult,
    ModelInfo,
    ModelRef,
    ModelsInService,
    Reason,
    ScoreResult,
    StoredLabel,
    StoredScore,
    StoredTransaction,
)
from fraudops.client.retry import RetryPolicy

__all__ = [
    "DEFAULT_BATCH_LIMIT",
    "AsyncFraudOpsClient",
    "FraudOpsClient",
    "FraudOpsError",
    "LabelsResult",
    "ModelInfo",
    "ModelRef",
    "ModelsInService",
    "Reason",
    "RetryPolicy",
    "ScoreResult",
    "StoredLabel",
    "StoredScore",
    "StoredTransaction",
]
