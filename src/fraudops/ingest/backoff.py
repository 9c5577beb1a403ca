"""Waiting before a retry: exponential backoff with full jitter, honouring Retry-After."""

import random
from dataclasses import dataclass, field

import httpx

from fraudops.client.retry import retry_after_seconds


@dataclass
class Backoff:
    """Delays of up to base * 2^attempt (capped), drawn at random so retriers spread out."""

    base: float = 0.1
    cap: float = 10.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self, retry_after: float | None = None) -> float:
        """The next wait in seconds: at least what the server asked for."""
        self.attempt += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.attempt, 30))
        return max(self.rng.uniform(0, ceiling), retry_after or 0.0)

    def reset(self) -> None:
        """Start again from the shortest wait (after a success)."""
        self.attempt = 0


def retry_after(response: httpx.Response) -> float | None:
    """Seconds a Retry-After header asks for (delay or HTTP date); None if absent or unreadable."""
    return retry_after_seconds(response.headers.get("Retry-After"))
