"""The one error of the client: what the service answered (or that it could not be reached)."""

from typing import Any

# Answers worth trying again: the request may succeed later unchanged.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


class FraudOpsError(Exception):
    """The service refused a request, or could not be reached after the retries.

    `status` is the HTTP status (None when no answer came: refused connection, timeout);
    `detail` is the service's own `detail` (a message, or for a 409 or 422 a list of
    problems, each with its `loc` and `msg`); `retry_after` the seconds it asked to wait.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        detail: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Whether the same request may succeed later (overloaded, restarting, unreachable)."""
        return self.status is None or self.status in TRANSIENT_STATUSES
