"""Online feature state in Redis, shared by every scoring process that uses the same prefix.

Each card and merchant is one key holding the JSON of its state's `to_dict()`: Python
writes floats with `repr`, the shortest text that reads back as the same double, so sums
survive the trip bit for bit (NaN and infinity are refused: they are not JSON). `transact`
is optimistic: WATCH the keys, read them, run the transition, write in MULTI/EXEC; if
another process wrote a watched key in between, EXEC fails and the transition runs again
on the fresh state. A writer that keeps losing that race on a hot key (a busy merchant)
then locks its keys for a moment: every writer watches and honours the locks, so the
starved one gets through instead of failing.
"""

import json
import random
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from fraudops.features.state import (
    CardState,
    FeatureStateUnavailableError,
    MerchantState,
    StateTransition,
    T,
    require_key,
)

# Seconds to connect or to wait for an answer, and retries after a connection error,
# before the state counts as unavailable: scoring cannot wait on a dead server (redis-py's
# own default, 10 retries with no socket timeout, could block a request for minutes).
TIMEOUT_SECONDS = 1.0
CONNECTION_RETRIES = 2
MAX_ATTEMPTS = 50
# Attempts retried at once before backing off: a conflict usually clears in one round trip.
EAGER_ATTEMPTS = 3
# Then a random sleep of up to 0.5 ms, doubling with each attempt up to 20 ms, so that
# writers colliding on a hot key spread out instead of colliding again.
BACKOFF_SECONDS = 0.0005
MAX_BACKOFF_SECONDS = 0.02
# Conflicts before a transaction locks its keys; the lock expires in case its holder dies.
LOCK_AFTER = 5
LOCK_MILLISECONDS = 200
CLEAR_BATCH = 500

# Lock every key or none: taking them one by one could deadlock two transactions.
_LOCK_ALL = """
for _, key in ipairs(KEYS) do
    if redis.call('EXISTS', key) == 1 then return 0 end
end
for _, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return 1
"""
_UNLOCK_OWN = """
for _, key in ipairs(KEYS) do
    if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""


class _ConflictError(Exception):
    """Another writer changed or locked the keys during an attempt."""


class RedisStateStore:
    """Card and merchant state under `{prefix}:card:{key}` and `{prefix}:merchant:{key}`.

    Also `{prefix}:initialised` (the state was built from history) and, briefly, a
    contended transaction's locks `{prefix}:lock:card:{key}` / `{prefix}:lock:merchant:{key}`.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "fraudops") -> None:
        self.client = client
        self.prefix = prefix
        self.address = _address(client)
        self._lock_all = client.register_script(_LOCK_ALL)
        self._unlock_own = client.register_script(_UNLOCK_OWN)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "fraudops") -> Self:
        """A store on the Redis at `url` (redis://, rediss:// or unix://), with timeouts."""
        client: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=TIMEOUT_SECONDS,
            socket_timeout=TIMEOUT_SECONDS,
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), CONNECTION_RETRIES),
        )
        return cls(client, prefix=prefix)

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def healthy(self) -> bool:
        """Whether Redis answers a PING."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def get_card(self, key: str) -> CardState | None:
        """A card's state, or None if the card is unknown."""
        with self._reaching():
            raw = self.client.get(self._card(key))
        return _card_state(raw)

    def put_card(self, key: str, state: CardState) -> None:
        """Store a card's state."""
        text = _dumps(state.to_dict(), f"card {key}")
        with self._reaching():
            self.client.set(self._card(key), text)

    def get_merchant(self, key: str) -> MerchantState | None:
        """A merchant's state, or None if the merchant is unknown."""
        with self._reaching():
            raw = self.client.get(self._merchant(key))
        return _merchant_state(raw)

    def put_merchant(self, key: str, state: MerchantState) -> None:
        """Store a merchant's state."""
        text = _dumps(state.to_dict(), f"merchant {key}")
        with self._reaching():
            self.client.set(self._merchant(key), text)

    def transact(
        self, card_key: str | None, merchant_key: str | None, work: StateTransition[T]
    ) -> T:
        """Apply `work` to freshly read states and store what it returns, retried on conflict.

        Each attempt hands `work` new objects, so it may change them in place.
        """
        kinds = [("card", card_key), ("merchant", merchant_key)]
        names = [f"{self.prefix}:{kind}:{key}" for kind, key in kinds if key is not None]
        if not names:
            result, _card, _merchant = work(None, None)
            return result
        locks = [f"{self.prefix}:lock:{kind}:{key}" for kind, key in kinds if key is not None]
        token: str | None = None
        try:
            for attempt in range(MAX_ATTEMPTS):
                if token is None and attempt >= LOCK_AFTER:
                    token = self._lock(locks)
                try:
                    return self._attempt(card_key, merchant_key, names + locks, token, work)
                except (redis.WatchError, _ConflictError):
                    if token is not None:  # a conflict despite our lock: it lapsed, queue again
                        self._unlock(locks, token)
                        token = None
                    if attempt >= EAGER_ATTEMPTS:
                        time.sleep(random.uniform(0, _backoff_ceiling(attempt - EAGER_ATTEMPTS)))
        finally:
            if token is not None:
                self._unlock(locks, token)
        msg = (
            f"feature state of card {card_key!r} / merchant {merchant_key!r} at "
            f"{self.address} was changed by others during each of {MAX_ATTEMPTS} attempts"
        )
        raise FeatureStateUnavailableError(msg)

    def _attempt(
        self,
        card_key: str | None,
        merchant_key: str | None,
        watched: list[str],
        token: str | None,
        work: StateTransition[T],
    ) -> T:
        """One optimistic read-modify-write; `watched` holds the state keys, then their locks.

        WatchError if a watched key changed meanwhile, _ConflictError if another holds a lock.
        """
        with self._reaching(), self.client.pipeline(transaction=True) as pipe:
            pipe.watch(*watched)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            values = pipe.mget(watched)
            states = iter(values[: len(watched) // 2])
            card = _card_state(next(states)) if card_key is not None else None
            merchant = _merchant_state(next(states)) if merchant_key is not None else None
            result, new_card, new_merchant = work(card, merchant)
            writes = []
            if new_card is not None:
                key = require_key(card_key, "card")
                writes.append((self._card(key), _dumps(new_card.to_dict(), f"card {key}")))
            if new_merchant is not None:
                key = require_key(merchant_key, "merchant")
                text = _dumps(new_merchant.to_dict(), f"merchant {key}")
                writes.append((self._merchant(key), text))
            if writes:
                if any(_held_by_other(lock, token) for lock in values[len(watched) // 2 :]):
                    raise _ConflictError
                pipe.multi()
                for name, text in writes:
                    pipe.set(name, text)
                pipe.execute()
            return result

    def _lock(self, locks: list[str]) -> str | None:
        """Lock all the keys for a moment; the lock's token, or None if another holds one."""
        token = secrets.token_hex(8)
        with self._reaching():
            taken = self._lock_all(keys=locks, args=[token, LOCK_MILLISECONDS])
        return token if taken else None

    def _unlock(self, locks: list[str], token: str) -> None:
        """Release the locks still holding our token."""
        with self._reaching():
            self._unlock_own(keys=locks, args=[token])

    def initialised(self) -> bool:
        """Whether the state under this prefix has been built from history already."""
        with self._reaching():
            return bool(self.client.exists(self._marker))

    def mark_initialised(self) -> None:
        """Record that the state under this prefix has been built from history."""
        with self._reaching():
            self.client.set(self._marker, "1")

    def clear(self) -> None:
        """Unlink every key under this prefix, in batches (SCAN, so Redis never blocks)."""
        pattern = f"{_glob_escape(self.prefix)}:*"
        with self._reaching():
            batch: list[Any] = []
            for name in self.client.scan_iter(match=pattern, count=CLEAR_BATCH):
                batch.append(name)
                if len(batch) == CLEAR_BATCH:
                    self.client.unlink(*batch)
                    batch = []
            if batch:
                self.client.unlink(*batch)

    @property
    def _marker(self) -> str:
        return f"{self.prefix}:initialised"

    def _card(self, key: str) -> str:
        return f"{self.prefix}:card:{key}"

    def _merchant(self, key: str) -> str:
        return f"{self.prefix}:merchant:{key}"

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Turn a lost or refused connection into FeatureStateUnavailableError.

        Also a read-only replica (mid-failover) and a server that does not speak Redis.
        """
        try:
            yield
        except (
            redis.ConnectionError,
            redis.TimeoutError,
            redis.exceptions.ReadOnlyError,
            redis.exceptions.InvalidResponse,
        ) as error:
            msg = f"feature state store unavailable: Redis at {self.address}: {error}"
            raise FeatureStateUnavailableError(msg) from error


def _backoff_ceiling(retry: int) -> float:
    """The longest sleep before a retry: doubling from BACKOFF_SECONDS, capped."""
    return min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2.0 ** min(retry, 16))


def _held_by_other(lock: bytes | str | None, token: str | None) -> bool:
    """Whether a lock key's value is another writer's token."""
    if lock is None:
        return False
    return (lock.decode() if isinstance(lock, bytes) else lock) != token


def _card_state(raw: bytes | str | None) -> CardState | None:
    """A card's state from its stored JSON."""
    return CardState.from_dict(json.loads(raw)) if raw is not None else None


def _merchant_state(raw: bytes | str | None) -> MerchantState | None:
    """A merchant's state from its stored JSON."""
    return MerchantState.from_dict(json.loads(raw)) if raw is not None else None


def _dumps(data: dict[str, Any], what: str) -> str:
    """Compact JSON; refuses NaN and infinity, which JSON cannot hold."""
    try:
        return json.dumps(data, allow_nan=False, separators=(",", ":"))
    except ValueError as error:
        msg = f"{what}: state holds a number that is not finite, refusing to store it"
        raise ValueError(msg) from error


def _address(client: redis.Redis) -> str:
    """Where the client connects, as a URL without credentials."""
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    db = kwargs.get("db", 0)
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={db}"
    scheme = "rediss" if issubclass(pool.connection_class, redis.SSLConnection) else "redis"
    return f"{scheme}://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"


def _glob_escape(text: str) -> str:
    """Text matched literally by a Redis glob pattern."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)
