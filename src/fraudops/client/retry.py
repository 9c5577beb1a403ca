"""When to try a request again: exponential backoff with full jitter, honouring Retry-After."""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `retries` more attempts, waiting up to base * 2^attempt (capped) at random, and
    at least what the service asked for; a Retry-After beyond `max_wait` is not waited for."""

    retries: int = 3
    base: float = 0.2
    cap: float = 10.0
    max_wait: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry number `attempt` (1-based); None to give up."""
        if attempt > self.retries:
            return None
        if retry_after is not None and retry_after > self.max_wait:
            return None
        ceiling = min(self.cap, self.base * 2 ** min(attempt, 30))
        return max(self.rng.uniform(0, ceiling), retry_after or 0.0)


NO_RETRIES = RetryPolicy(retries=0)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """The seconds a Retry-After header asks for: its delay form or its HTTP-date form."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # an HTTP date is GMT
        moment = moment.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (moment - current).total_seconds())
