"""Online feature state in Redis, shared by every scoring process that uses the same prefix.

Keys live under `{prefix}:v3` (earlier layouts lived beside it: `{prefix}:v2`, whose cards
lacked their merchants, categories, labels, label times and hours, and the JSON one under
`{prefix}:card:` and `{prefix}:merchant:`; they are not read: state missing under the new
layout is rebuilt from the warehouse, and `clear` removes them all). For each card and
merchant:

- `{kind}-{column}:{key}`: one column of the state (a card's times, amounts, running sums,
  merchant and category codes, labels, fraud times, when each fraud became known and
  running hour sums; a merchant's times, labels, fraud times and when each fraud became
  known) packed as little-endian int64, float64 or uint8. A packed double is its own bits,
  so sums come back bit for bit (NaN too).
  Columns only grow at the end (APPEND); what pruning drops from the front is skipped, not
  cut, until it outgrows a quarter of the column and the column is written anew.
- `{kind}:{key}`: a hash of `v`, a random version token every write replaces, `g`, a random
  token replaced whenever a column is written anew, and `s1`, `s2`, ...: the dropped bytes
  at the front of each column.
- `{kind}-ids:{key}`: the events' ids in a sorted set, each member the event's time (8 bytes,
  big-endian, sign-flipped) then its id, scored by the time: the set's order is the state's
  canonical (time, id) order, so a position in the state is a rank in the set.
- `initialised`: the state was built from history; `rebuilding`: held by whoever builds it;
  `lock:{kind}:{key}`: a contended transaction's lock, briefly.

A transition runs on arrays built from the packed columns; ids, the bulk of a state, are
fetched only where the state compares them (a tie, a late event, a label). Each process keeps
the states it last read or wrote (least recently used out): while `g` is unchanged a column
only grew, so a read returns only the bytes appended since. `transact` is optimistic. With
both states kept it runs the transition on them at once; otherwise it reads them first, in
one script call. The write is a second script, applied only if every version is still the
one the transition saw, no other writer holds a lock on the keys and the state is
initialised: it appends what the transition added to each column, skips what it pruned, and
adds and drops ids to match. If a version changed it writes nothing and answers with the
fresh state instead, and the transition runs again on it. So a scorer that sees a state
first, or whose kept copy another wrote over, pays two round trips, one that kept it current
pays one. A writer that keeps losing that race on a hot key (a busy merchant) then locks its
keys for a moment: every writer honours the locks, so the starved one gets through. A write
refused because the initialised mark is gone (Redis restarted empty, or a rebuild is under
way) raises FeatureStateUnavailableError: nobody builds on state that lost its history.

The scripts are in features.redis_scripts; the packing of columns and ids, and the
arguments a write sends, in features.redis_packing.
"""

import random
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, Self, cast

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import Script
from redis.exceptions import NoScriptError
from redis.retry import Retry

from fraudops.features import redis_scripts as scripts
from fraudops.features.redis_packing import (
    CARD,
    COMPACT_BYTES,
    MERCHANT,
    Kind,
    Seen,
    Snapshot,
    State,
    StoredIds,
    event_member,
    id_of,
    kept_args,
    last_id,
    new_token,
    pack,
    unpack,
    write_args,
)
from fraudops.features.state import (
    CLAIM_SECONDS,
    HEARTBEAT_SECONDS,
    CardState,
    Claim,
    ClaimedError,
    FeatureStateUnavailableError,
    MerchantState,
    StateStep,
    StateTransition,
    T,
    require_key,
    step_outcome,
)

__all__ = [
    "BACKOFF_SECONDS",
    "CARD",
    "CLEAR_BATCH",
    "COMPACT_BYTES",
    "CONNECTION_RETRIES",
    "EAGER_ATTEMPTS",
    "HEARTBEAT_MILLISECONDS",
    "KEPT_BYTES",
    "LAYOUT",
    "LOAD_BATCH",
    "LOCK_AFTER",
    "LOCK_MILLISECONDS",
    "MAX_ATTEMPTS",
    "MAX_BACKOFF_SECONDS",
    "MERCHANT",
    "REBUILD_LOCK_MILLISECONDS",
    "TIMEOUT_SECONDS",
    "RedisStateStore",
    "State",
]

LAYOUT = "v3"
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
# A process's heartbeat lapses this long after it stops renewing it (every 2 s).
HEARTBEAT_MILLISECONDS = round(HEARTBEAT_SECONDS * 1000)
# The rebuild lock lapses this long after its holder stops renewing it (a third of it).
REBUILD_LOCK_MILLISECONDS = 15_000
CLEAR_BATCH = 500
# Cards and merchants per pipelined round trip when loading a rebuilt state.
LOAD_BATCH = 250
# Bytes of packed columns a process keeps at most (about 20,000 cards of a month each).
KEPT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class _Write:
    """A write script call: the changes it makes, its claim, keys and arguments, and the
    snapshot of each state it writes as it will be once written."""

    changes: list[tuple[Seen, State | None]]
    claim: Claim | None
    keys: list[str]
    args: list[Any]
    written: list[tuple[Seen, Snapshot]]


class _ConflictError(Exception):
    """Another writer changed or locked the keys during an attempt; the fresh states if known."""

    def __init__(self, fresh: list[Snapshot] | None = None) -> None:
        super().__init__()
        self.fresh = fresh


class _UnverifiedError(Exception):
    """A transition wrote nothing, so the kept states it read were never checked: read them."""


class RedisStateStore:
    """Card and merchant state under `{prefix}:v3:...`; see the module docstring for the keys.

    The client must return bytes (redis-py's default, not `decode_responses=True`).
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "fraudops") -> None:
        self.client = client
        self.prefix = prefix
        self.address = _address(client)
        self._root = f"{prefix}:{LAYOUT}"
        self._kept = _KeptSnapshots(KEPT_BYTES)
        self._connections = _Connections(client.connection_pool)
        # Confirmations go out on a connection of their own, their answers read later.
        self._confirmer = self._connections.take()
        self._confirming = threading.Lock()
        self._confirm_unread = False
        self._read = client.register_script(scripts.READ)
        self._write = client.register_script(scripts.WRITE)
        self._fetch = client.register_script(scripts.FETCH_IDS)
        self._lock_all = client.register_script(scripts.LOCK_ALL)
        self._unlock_own = client.register_script(scripts.UNLOCK_OWN)
        self._extend_own = client.register_script(scripts.EXTEND_OWN)
        self._claim_only = client.register_script(scripts.CLAIM_ONLY)
        # This process's name in the unconfirmed claims, alive while it renews its heartbeat.
        self.instance = secrets.token_hex(6)

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
        """Close the client's connections, and the store's own."""
        self._connections.close()
        self.client.close()

    def healthy(self) -> bool:
        """Whether Redis answers a PING."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    # --- plain reads and writes --------------------------------------------------------------

    def get_card(self, key: str) -> CardState | None:
        """A card's state (plain lists), or None if the card is unknown."""
        return cast(CardState | None, self._get(CARD, key))

    def put_card(self, key: str, state: CardState) -> None:
        """Store a card's state."""
        self._put(CARD, key, state)

    def get_merchant(self, key: str) -> MerchantState | None:
        """A merchant's state (plain lists), or None if the merchant is unknown."""
        return cast(MerchantState | None, self._get(MERCHANT, key))

    def put_merchant(self, key: str, state: MerchantState) -> None:
        """Store a merchant's state."""
        self._put(MERCHANT, key, state)

    def _get(self, kind: Kind, key: str) -> State | None:
        """One state read whole, its columns and ids as lists."""
        hash_name, ids_name, *columns = self._keys(kind, key)
        skips = [f"s{number}" for number in range(1, len(kind.columns) + 1)]
        with self._reaching(), self.client.pipeline(transaction=True) as pipe:
            pipe.hmget(hash_name, ["v", *skips])
            for column in columns:
                pipe.get(column)
            pipe.zrange(ids_name, 0, -1)
            (version, *skipped), *raw, members = pipe.execute()
        if version is None:
            return None
        fields = {
            name: unpack(code, memoryview(packed or b"")[int(skip or 0) :]).tolist()
            for (name, code), skip, packed in zip(kind.columns, skipped, raw, strict=True)
        }
        return kind.state(ids=[id_of(member) for member in members], **fields)

    def _put(self, kind: Kind, key: str, state: State) -> None:
        """Replace one state, atomically."""
        self._kept.drop((kind.name, key))
        with self._reaching(), self.client.pipeline(transaction=True) as pipe:
            pipe.delete(*self._keys(kind, key))
            self._queue_put(pipe, kind, key, state)
            pipe.execute()

    def _queue_put(self, pipe: Any, kind: Kind, key: str, state: State) -> Snapshot:
        """Queue the writes of a whole state on a pipeline whose keys are gone; its snapshot."""
        ids = list(state.ids)
        members = {
            event_member(time_ms, trans_id): time_ms
            for time_ms, trans_id in zip(state.times, ids, strict=True)
        }
        if len(members) != len(ids):
            msg = f"{kind.name} {key}: the state holds an event twice"
            raise ValueError(msg)
        hash_name, ids_name, *columns = self._keys(kind, key)
        snapshot = Snapshot(
            version=new_token().encode(),
            g=new_token().encode(),
            live=tuple(pack(code, getattr(state, name)) for name, code in kind.columns),
            skips=(0,) * len(kind.columns),
            count=len(ids),
            last=last_id(ids),
        )
        skips = {f"s{number}": 0 for number in range(1, len(kind.columns) + 1)}
        pipe.hset(hash_name, mapping={"v": snapshot.version, "g": snapshot.g, **skips})
        for column, live in zip(columns, snapshot.live, strict=True):
            pipe.set(column, live)
        if members:
            pipe.zadd(ids_name, members)
        return snapshot

    # --- transactions ------------------------------------------------------------------------

    def transact(
        self,
        card_key: str | None,
        merchant_key: str | None,
        work: StateTransition[T],
        *,
        claim: Claim | None = None,
    ) -> T:
        """Apply `work` to the states and store what it returns, retried on conflict.

        Each attempt hands `work` new objects, so it may change them in place; their columns
        are arrays and their ids a sequence fetched on demand (see `StoredIds`). A claim is
        checked and made by the same script that writes the states.
        """
        wanted = _wanted(card_key, merchant_key)
        if not wanted:
            result, _card, _merchant = work(None, None)
            if claim is not None:
                self._claim_alone(claim)
            return result
        locks = [f"{self._root}:lock:{kind.name}:{key}" for kind, key in wanted]
        kept = [self._kept.get((kind.name, key)) for kind, key in wanted]
        snapshots = None if None in kept else cast(list[Snapshot], kept)
        fresh = False  # whether the snapshots were just read (else kept: maybe outdated)
        token: str | None = None
        try:
            for attempt in range(MAX_ATTEMPTS):
                if token is None and attempt >= LOCK_AFTER:
                    token = self._lock(locks)
                    snapshots = None if token is not None else snapshots  # read under it
                if snapshots is None:
                    snapshots, fresh = self._read_states(wanted), True
                try:
                    return self._attempt(
                        wanted, snapshots, fresh=fresh, token=token, work=work, claim=claim
                    )
                except _UnverifiedError:
                    snapshots = None
                    continue
                except _ConflictError as conflict:
                    snapshots, fresh = conflict.fresh, True
                if token is not None:  # a conflict despite our lock: it lapsed, queue again
                    self._unlock(locks, token)
                    token = None
                if attempt >= EAGER_ATTEMPTS:
                    snapshots = None  # outdated after the pause
                    time.sleep(random.uniform(0, _backoff_ceiling(attempt - EAGER_ATTEMPTS)))
        finally:
            if token is not None:
                self._unlock(locks, token)
        msg = (
            f"feature state of card {card_key!r} / merchant {merchant_key!r} at "
            f"{self.address} was changed by others during each of {MAX_ATTEMPTS} attempts"
        )
        raise FeatureStateUnavailableError(msg)

    def transact_each(self, steps: Sequence[StateStep[T]]) -> list[T | Exception]:
        """`transact` of each step in order, the writes of many sent in one round trip.

        The states not kept are read first, together. Each transition then runs on the
        state the steps before it leave (the snapshot their write will make), and the
        writes go to Redis at once: each applies only if the versions it expects are
        current, so a write following one that was refused is refused too. The refused
        steps then go through `transact` one by one, in order. A transition that needs ids
        of a state not yet written (a tie, a late event) ends the round: the queued writes
        go first, and the next round starts with it.
        """
        outcomes: list[T | Exception] = []
        while len(outcomes) < len(steps):
            done: list[T | Exception] = self._round(steps[len(outcomes) :])
            outcomes += done
            if outcomes and isinstance(outcomes[-1], FeatureStateUnavailableError):
                outcomes += [outcomes[-1]] * (len(steps) - len(outcomes))
        return outcomes

    def _round(self, steps: Sequence[StateStep[T]]) -> list[T | Exception]:
        """Outcomes of the first steps (at least one): their writes sent together, then
        those refused retried in turn. A FeatureStateUnavailableError is the last outcome."""
        wanted = [_wanted(step.card_key, step.merchant_key) for step in steps]
        try:
            current = self._read_missing(wanted)
        except FeatureStateUnavailableError as error:
            return [error]
        outcomes: list[Any] = []
        queued: list[tuple[int, Any, _Write]] = []  # position, result, write
        for step, keys in zip(steps, wanted, strict=True):
            snapshots = [current.get((kind.name, key)) or self._kept.get((kind.name, key))
                         for kind, key in keys]  # fmt: skip
            try:
                if not keys or None in snapshots:
                    raise _ConflictError
                result, changes = self._transition(keys, cast(list[Snapshot], snapshots), step.work)
                if step.claim is None and not _changes_any(changes):
                    raise _ConflictError  # a read of snapshots maybe outdated: `transact` checks
            except _ConflictError:  # or it read ids of a state a queued write has yet to make
                if queued:
                    break  # the queued writes go first
                outcomes.append(step_outcome(self, step))
            except Exception as error:  # the step's error is its outcome
                outcomes.append(error)
            else:
                write = self._write_call(changes, token=None, claim=step.claim)
                queued.append((len(outcomes), result, write))
                outcomes.append(None)
                current.update(((seen.kind.name, seen.key), after) for seen, after in write.written)
            if isinstance(outcomes[-1], FeatureStateUnavailableError):
                break
        if queued:
            self._send_queued(steps, queued, outcomes)
        for position, outcome in enumerate(outcomes):
            if isinstance(outcome, FeatureStateUnavailableError):
                return outcomes[: position + 1]
        return outcomes

    def _read_missing(
        self, wanted: list[list[tuple[Kind, str]]]
    ) -> dict[tuple[str, str], Snapshot]:
        """The states wanted and not kept, read in one script call, by (kind name, key)."""
        missing = list(
            dict.fromkeys(
                (kind, key)
                for keys in wanted
                for kind, key in keys
                if self._kept.get((kind.name, key)) is None
            )
        )
        if not missing:
            return {}
        read = self._read_states(missing)
        return {
            (kind.name, key): snapshot for (kind, key), snapshot in zip(missing, read, strict=True)
        }

    def _send_queued(
        self,
        steps: Sequence[StateStep[T]],
        queued: list[tuple[int, Any, "_Write"]],
        outcomes: list[Any],
    ) -> None:
        """Send the queued writes together and fill in their outcomes; those refused (or of
        unknown fate) are retried with `transact`, in order, until the state is unavailable."""
        calls = [
            _resp([b"EVALSHA", self._write.sha, len(w.keys), *w.keys, *w.args])
            for _, _, w in queued
        ]
        replies = self._run_together(calls)
        refused: list[int] = []
        for number, (position, result, write) in enumerate(queued):
            reply = None if replies is None else replies[number]
            if isinstance(reply, list) or not isinstance(reply, int | bytes):
                # Refused, failed or unknown. A refusal's fresh states are not used: they
                # were read against snapshots that a queued write may never have made.
                for seen, _ in write.changes:
                    self._kept.drop((seen.kind.name, seen.key))
                refused.append(position)
                continue
            try:
                self._written(write, reply)
                outcomes[position] = result
            except _ConflictError:  # another holds a lock
                refused.append(position)
            except (ClaimedError, FeatureStateUnavailableError) as error:
                outcomes[position] = error
        for position in refused:
            if any(isinstance(o, FeatureStateUnavailableError) for o in outcomes[:position]):
                break
            outcomes[position] = step_outcome(self, steps[position])

    def _run_together(self, calls: list[bytes]) -> list[Any] | None:
        """The replies to script calls sent in one go (errors as replies), or None if the
        connection failed: which of them ran is then unknown."""
        connection = self._connections.take()
        replies: list[Any] = []
        try:
            connection.send_packed_command([b"".join(calls)], check_health=False)  # type: ignore[no-untyped-call]
            for _ in calls:
                try:
                    replies.append(connection.read_response())
                except redis.ResponseError as error:  # this call's own (a script unknown)
                    replies.append(error)
        except (
            redis.ConnectionError,
            redis.TimeoutError,
            redis.exceptions.InvalidResponse,
            OSError,
        ):
            connection.disconnect()  # type: ignore[no-untyped-call]
            return None
        except BaseException:
            connection.disconnect()  # type: ignore[no-untyped-call]  # unread answers
            raise
        finally:
            self._connections.give_back(connection)
        return replies

    def _attempt(
        self,
        wanted: list[tuple[Kind, str]],
        snapshots: list[Snapshot],
        *,
        fresh: bool,
        token: str | None,
        work: StateTransition[T],
        claim: Claim | None,
    ) -> T:
        """Run the transition on the snapshots and write what it returns, if they are current.

        _ConflictError if another writer got in first, _UnverifiedError if nothing was
        written on snapshots not read just now, ClaimedError if the claim was taken.
        """
        result, changes = self._transition(wanted, snapshots, work)
        if claim is None and not _changes_any(changes):
            if not fresh:
                raise _UnverifiedError
            return result
        self._commit(changes, token=token, claim=claim)
        return result

    def _transition(
        self, wanted: list[tuple[Kind, str]], snapshots: list[Snapshot], work: StateTransition[T]
    ) -> tuple[T, list[tuple[Seen, State | None]]]:
        """`work` run on the snapshots: its result, and each state seen with its new state
        (None: unchanged)."""
        seen = {
            kind.name: self._seen(kind, key, snapshot)
            for (kind, key), snapshot in zip(wanted, snapshots, strict=True)
        }
        card_seen, merchant_seen = seen.get(CARD.name), seen.get(MERCHANT.name)
        card = cast(CardState | None, card_seen.state if card_seen else None)
        merchant = cast(MerchantState | None, merchant_seen.state if merchant_seen else None)
        result, new_card, new_merchant = work(card, merchant)
        if new_card is not None:
            require_key(card_seen.key if card_seen else None, "card")
        if new_merchant is not None:
            require_key(merchant_seen.key if merchant_seen else None, "merchant")
        new = {CARD.name: new_card, MERCHANT.name: new_merchant}
        return result, [(one, new[name]) for name, one in seen.items()]

    def _seen(self, kind: Kind, key: str, snapshot: Snapshot) -> Seen:
        """A snapshot as the objects a transition gets: arrays, ids fetched on demand."""
        if not snapshot.version:
            return Seen(kind, key, snapshot, None, None)
        ids = StoredIds(
            stored=snapshot.count,
            fetch=partial(self._fetch_ids, kind, key, snapshot.version),
            last=snapshot.last,
        )
        fields = {
            name: unpack(code, live)
            for (name, code), live in zip(kind.columns, snapshot.live, strict=True)
        }
        return Seen(kind, key, snapshot, kind.state(ids=ids, **fields), ids)

    def _read_states(self, wanted: list[tuple[Kind, str]]) -> list[Snapshot]:
        """The current states of the keys, in one script call (only what grew, where kept)."""
        kept = [self._kept.get((kind.name, key)) for kind, key in wanted]
        keys: list[str] = []
        args: list[Any] = []
        for (kind, key), snapshot in zip(wanted, kept, strict=True):
            keys += self._keys(kind, key)
            args += [len(kind.columns), *kept_args(kind, snapshot)]
        reply = self._run(self._read, keys, args)
        return self._snapshots(wanted, reply, kept)

    def _snapshots(
        self, wanted: list[tuple[Kind, str]], reply: list[Any], kept: Sequence[Snapshot | None]
    ) -> list[Snapshot]:
        """Snapshots from what `read_state` answered on top of the kept ones; kept in turn."""
        snapshots = []
        at = 0
        for (kind, key), old in zip(wanted, kept, strict=True):
            count = len(kind.columns)
            version, g, *rest = reply[at : at + 2 * count + 4]
            at += 2 * count + 4
            if version is None:
                self._kept.drop((kind.name, key))
                snapshots.append(Snapshot(version=b""))
                continue
            skips = tuple(int(skip or 0) for skip in rest[:count])
            live = tuple(
                memoryview(column)[skip:].tobytes()
                for column, skip in zip(rest[count : 2 * count], skips, strict=True)
            )
            if old is not None and old.version and old.g == g:  # only what grew was read
                live = tuple(
                    (before + grown)[skip - skipped :]
                    for before, grown, skip, skipped in zip(
                        old.live, rest[count : 2 * count], skips, old.skips, strict=True
                    )
                )
            ids, last = rest[2 * count :]
            snapshot = Snapshot(
                version=version,
                g=g,
                live=live,
                skips=skips,
                count=ids,
                last=None if last is None else id_of(last),
            )
            self._kept.put((kind.name, key), snapshot)
            snapshots.append(snapshot)
        return snapshots

    def _run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """A registered script's answer, sent on a connection of the store's own.

        A write has some 55 arguments, and redis-py's packing of them and its pool's checks
        at each checkout took longer than Redis takes to run the script. A lost connection
        or a Redis that forgot the script (restarted) goes through redis-py, which retries
        and loads the script again.
        """
        replies = self._run_together([_resp([b"EVALSHA", script.sha, len(keys), *keys, *args])])
        answer = None if replies is None else replies[0]
        if replies is None or isinstance(answer, NoScriptError):
            with self._reaching():
                return script(keys=keys, args=args)
        if isinstance(answer, redis.ResponseError):
            with self._reaching():  # a read-only replica is unavailable state too
                raise answer
        return answer

    def _fetch_ids(self, kind: Kind, key: str, version: bytes, lo: int, hi: int) -> list[str]:
        """Stored ids of ranks [lo, hi), if the state is still at `version` (else a conflict)."""
        with self._reaching():
            members = self._fetch(
                keys=[self._hash(kind, key), self._ids(kind, key)], args=[version, lo, hi - 1]
            )
        if members is None or len(members) != hi - lo:
            raise _ConflictError
        return [id_of(member) for member in members]

    def _commit(
        self,
        changes: list[tuple[Seen, State | None]],
        *,
        token: str | None,
        claim: Claim | None = None,
    ) -> None:
        """Write the new states (None: unchanged) if every state seen is still current.

        Raises _ConflictError (with the fresh states if a version changed),
        FeatureStateUnavailableError if the state is not initialised, and ClaimedError
        if the claim was taken.
        """
        write = self._write_call(changes, token=token, claim=claim)
        self._written(write, self._run(self._write, write.keys, write.args))

    def _write_call(
        self, changes: list[tuple[Seen, State | None]], *, token: str | None, claim: Claim | None
    ) -> "_Write":
        """The write script's keys and arguments for these changes, and the snapshots after."""
        locks = [f"{self._root}:lock:{seen.kind.name}:{seen.key}" for seen, _ in changes]
        keys: list[str] = [self._marker, *locks]
        args: list[Any] = [token or "", len(locks), 0 if claim is None else 1]
        if claim is not None:
            keys += [self._claim_key(claim.trans_num), self._unconfirmed_key]
            args += self._claim_args(claim)
        written: list[tuple[Seen, Snapshot]] = []
        for seen, state in changes:
            kind, snapshot = seen.kind, seen.snapshot
            keys += self._keys(kind, seen.key)
            args += [snapshot.version, len(kind.columns), *kept_args(kind, snapshot)]
            if state is None:
                args.append("")
                continue
            after, state_args = write_args(seen, state)
            args += state_args
            written.append((seen, after))
        return _Write(changes, claim, keys, args, written)

    def _written(self, write: "_Write", reply: Any) -> None:
        """Keep the snapshots a write made, or raise what its reply says went wrong."""
        claim = write.claim
        if isinstance(reply, bytes) and claim is not None:
            raise ClaimedError(claim.trans_num, reply.decode())
        if isinstance(reply, list):
            changes = write.changes
            wanted = [(seen.kind, seen.key) for seen, _ in changes]
            raise _ConflictError(self._snapshots(wanted, reply, [s.snapshot for s, _ in changes]))
        if reply == 0:
            raise _ConflictError
        if reply < 0:
            msg = (
                f"feature state at {self.address} is not initialised (Redis lost it, or a "
                "rebuild is under way): nothing was written"
            )
            raise FeatureStateUnavailableError(msg)
        for seen, snapshot in write.written:
            self._kept.put((seen.kind.name, seen.key), snapshot)

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

    # --- claims ------------------------------------------------------------------------------

    def _claim_alone(self, claim: Claim) -> None:
        """Claim a trans_num with no state to write."""
        keys = [self._marker, self._claim_key(claim.trans_num), self._unconfirmed_key]
        with self._reaching():
            reply = self._claim_only(keys=keys, args=self._claim_args(claim))
        if isinstance(reply, bytes):
            raise ClaimedError(claim.trans_num, reply.decode())
        if reply == -1:
            msg = f"feature state at {self.address} is not initialised: nothing was claimed"
            raise FeatureStateUnavailableError(msg)

    def _claim_args(self, claim: Claim) -> list[Any]:
        """A claim's script arguments: fingerprint, time to live, unconfirmed member, time."""
        return [
            claim.fingerprint,
            round(CLAIM_SECONDS * 1000),
            f"{self.instance}:{claim.trans_num}",
            round(time.time() * 1000),
        ]

    def confirm(self, trans_nums: Sequence[str]) -> None:
        """Drop these transactions from the unconfirmed claims: they are stored."""
        if not trans_nums:
            return
        members = [f"{self.instance}:{trans_num}" for trans_num in trans_nums]
        with self._confirming:
            if self._send_confirm(_resp([b"ZREM", self._unconfirmed_key, *members])):
                return
        with self._reaching():  # the connection failed: through redis-py, which retries
            self.client.zrem(self._unconfirmed_key, *members)

    def _send_confirm(self, command: bytes) -> bool:
        """Send a confirmation without waiting for its answer, read at the next one instead
        (long arrived by then): the caller scores while Redis applies it. False if the
        connection failed (whether the last one was applied is then unknown: at worst its
        claims stay unconfirmed, and a stale claim only makes the state be rebuilt)."""
        if not self._read_confirm_answer():
            return False
        try:
            self._confirmer.send_packed_command([command], check_health=False)  # type: ignore[no-untyped-call]
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._confirmer.disconnect()  # type: ignore[no-untyped-call]
            return False
        self._confirm_unread = True
        return True

    def _confirmed(self) -> None:
        """Wait for the answer to the last confirmation sent, so that it is applied."""
        with self._confirming:
            self._read_confirm_answer()

    def _read_confirm_answer(self) -> bool:
        """Read the last confirmation's answer if unread (under `_confirming`); False, with
        the connection dropped, if it failed."""
        if not self._confirm_unread:
            return True
        self._confirm_unread = False
        try:
            self._confirmer.read_response()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError):
            self._confirmer.disconnect()  # type: ignore[no-untyped-call]
            return False
        return True

    def stale_claims(self, *, older_than_seconds: float) -> list[str]:
        """Unconfirmed claims of processes whose heartbeat stopped, or older than this."""
        self._confirmed()
        with self._reaching():
            entries = cast(
                list[tuple[bytes, float]],
                self.client.zrange(self._unconfirmed_key, 0, -1, withscores=True),
            )
            if not entries:
                return []
            parsed = [(_claim_member(member), score) for member, score in entries]
            instances = sorted({instance for (instance, _), _ in parsed})
            alive = cast(
                list[bytes | None],
                self.client.mget([self._alive_key(instance) for instance in instances]),
            )
        living = {instance for instance, beat in zip(instances, alive, strict=True) if beat}
        limit = (time.time() - older_than_seconds) * 1000
        return [
            trans_num
            for (instance, trans_num), claimed_at in parsed
            if instance not in living or claimed_at <= limit
        ]

    def forget_claims(self, trans_nums: Sequence[str]) -> None:
        """Drop stale claims (any process's) once they are dealt with."""
        if not trans_nums:
            return
        wanted = set(trans_nums)
        self._confirmed()
        with self._reaching():
            stored = cast(list[bytes], self.client.zrange(self._unconfirmed_key, 0, -1))
            members = [member for member in stored if _claim_member(member)[1] in wanted]
            if members:
                self.client.zrem(self._unconfirmed_key, *members)

    def heartbeat(self) -> None:
        """Say this process is alive, for HEARTBEAT_MILLISECONDS."""
        with self._reaching():
            self.client.set(self._alive_key(self.instance), "1", px=HEARTBEAT_MILLISECONDS)

    def invalidate(self) -> None:
        """Drop the initialised mark: writers stop and one replica rebuilds the state."""
        self._kept.clear()
        with self._reaching():
            self.client.delete(self._marker)

    def _claim_key(self, trans_num: str) -> str:
        return f"{self._root}:claim:{trans_num}"

    def _alive_key(self, instance: str) -> str:
        return f"{self._root}:alive:{instance}"

    @property
    def _unconfirmed_key(self) -> str:
        return f"{self._root}:unconfirmed"

    # --- initialisation and rebuilds ---------------------------------------------------------

    def initialised(self) -> bool:
        """Whether the state under this prefix has been built from history already."""
        with self._reaching():
            return bool(self.client.exists(self._marker))

    def mark_initialised(self) -> None:
        """Record that the state under this prefix has been built from history."""
        with self._reaching():
            self.client.set(self._marker, "1")

    def load(self, cards: Mapping[str, CardState], merchants: Mapping[str, MerchantState]) -> None:
        """Replace the whole state with these, in pipelined batches, then mark it initialised.

        The mark goes first (writers stop) and comes back last (on the complete state).
        """
        self._kept.clear()
        with self._reaching():
            self.client.delete(self._marker)
            self._unlink_matching(f"{_glob_escape(self._root)}:*", keep=self._rebuild_key)
            with self.client.pipeline(transaction=False) as pipe:
                queued = 0
                for kind, states in ((CARD, cards), (MERCHANT, merchants)):
                    for key, state in states.items():
                        # This process is likely to score next: it keeps what it wrote.
                        self._kept.put((kind.name, key), self._queue_put(pipe, kind, key, state))
                        queued += 1
                        if queued % LOAD_BATCH == 0:
                            pipe.execute()
                pipe.execute()
            self.client.set(self._marker, "1")

    @contextmanager
    def rebuild_lock(self) -> Iterator[bool]:
        """Whether this process may rebuild; the lock is renewed while held, lapses if we die."""
        token = secrets.token_hex(8)
        with self._reaching():
            taken = self.client.set(self._rebuild_key, token, nx=True, px=REBUILD_LOCK_MILLISECONDS)
        if not taken:
            yield False
            return
        done = threading.Event()
        keeper = threading.Thread(
            target=self._keep_rebuild_lock,
            args=(token, done),
            name="fraudops-rebuild-lock",
            daemon=True,
        )
        keeper.start()
        try:
            yield True
        finally:
            done.set()
            keeper.join()
            with suppress(FeatureStateUnavailableError):  # else it lapses on its own
                self._unlock([self._rebuild_key], token)

    def _keep_rebuild_lock(self, token: str, done: threading.Event) -> None:
        """Renew the rebuild lock until the rebuild is done."""
        while not done.wait(REBUILD_LOCK_MILLISECONDS / 3000):
            with suppress(redis.RedisError):  # the rebuild itself will fail and say why
                self._extend_own(keys=[self._rebuild_key], args=[token, REBUILD_LOCK_MILLISECONDS])

    def clear(self) -> None:
        """Unlink every key under this prefix, any layout (SCAN, so Redis never blocks)."""
        self._kept.clear()
        with self._reaching():
            self._unlink_matching(f"{_glob_escape(self.prefix)}:*")

    def _unlink_matching(self, pattern: str, *, keep: str | None = None) -> None:
        """Unlink the keys matching a glob pattern, in batches."""
        spared = None if keep is None else keep.encode()
        batch: list[Any] = []
        for name in self.client.scan_iter(match=pattern, count=CLEAR_BATCH):
            if name == spared:
                continue
            batch.append(name)
            if len(batch) == CLEAR_BATCH:
                self.client.unlink(*batch)
                batch = []
        if batch:
            self.client.unlink(*batch)

    @property
    def _marker(self) -> str:
        return f"{self._root}:initialised"

    @property
    def _rebuild_key(self) -> str:
        return f"{self._root}:rebuilding"

    def _hash(self, kind: Kind, key: str) -> str:
        return f"{self._root}:{kind.name}:{key}"

    def _ids(self, kind: Kind, key: str) -> str:
        return f"{self._root}:{kind.name}-ids:{key}"

    def _keys(self, kind: Kind, key: str) -> list[str]:
        """A state's keys: its hash, its ids, then its columns."""
        columns = [f"{self._root}:{kind.name}-{name}:{key}" for name, _ in kind.columns]
        return [self._hash(kind, key), self._ids(kind, key), *columns]

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


class _Connections:
    """Connections like the client's pool makes, handed out without its checks at checkout."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._pool = pool
        self._idle: list[redis.Connection] = []
        self._made: list[redis.Connection] = []
        self._lock = threading.Lock()

    def take(self) -> redis.Connection:
        """An idle connection, or a new one (it connects when first used)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        connection = cast(
            redis.Connection, self._pool.connection_class(**self._pool.connection_kwargs)
        )
        with self._lock:
            self._made.append(connection)
        return connection

    def give_back(self, connection: redis.Connection) -> None:
        """Return a connection taken."""
        with self._lock:
            self._idle.append(connection)

    def close(self) -> None:
        """Disconnect every connection made."""
        with self._lock:
            for connection in self._made:
                connection.disconnect()  # type: ignore[no-untyped-call]


class _KeptSnapshots:
    """The states this process last read or wrote, least recently used out past a size."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._size = 0
        self._entries: OrderedDict[tuple[str, str], Snapshot] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Snapshot | None:
        """The snapshot kept for a state, if any."""
        with self._lock:
            snapshot = self._entries.get(key)
            if snapshot is not None:
                self._entries.move_to_end(key)
            return snapshot

    def put(self, key: tuple[str, str], snapshot: Snapshot) -> None:
        """Keep a state's snapshot in place of any older one."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= old.size
            self._entries[key] = snapshot
            self._size += snapshot.size
            while self._size > self._limit:
                _, evicted = self._entries.popitem(last=False)
                self._size -= evicted.size

    def drop(self, key: tuple[str, str]) -> None:
        """Forget a state."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= old.size

    def clear(self) -> None:
        """Forget every state."""
        with self._lock:
            self._entries.clear()
            self._size = 0


def _resp(parts: list[Any]) -> bytes:
    """A command in the Redis protocol (bytes as they are, text in UTF-8, integers in digits)."""
    packed = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if type(part) is bytes else part.encode() if type(part) is str else b"%d" % part
        packed.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(packed)


def _wanted(card_key: str | None, merchant_key: str | None) -> list[tuple[Kind, str]]:
    """The states a transaction reads and writes: its card's and its merchant's, where given."""
    return [
        (kind, key) for kind, key in ((CARD, card_key), (MERCHANT, merchant_key)) if key is not None
    ]


def _changes_any(changes: list[tuple[Seen, State | None]]) -> bool:
    """Whether a transition changed any state."""
    return any(state is not None for _, state in changes)


def _claim_member(member: bytes) -> tuple[str, str]:
    """(process, trans_num) of an unconfirmed claim's member."""
    instance, _, trans_num = member.decode("utf-8", "surrogatepass").partition(":")
    return instance, trans_num


def _backoff_ceiling(retry: int) -> float:
    """The longest sleep before a retry: doubling from BACKOFF_SECONDS, capped."""
    return min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2.0 ** min(retry, 16))


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
