"""How feature state is packed in Redis, and what a write sends to change it; no I/O here.

A state's columns are little-endian int64, float64 or uint8 (a packed double is its own
bits, so sums come back bit for bit, NaN too); its ids are sorted-set members that sort as
(time, id) sorts. A write sends, per column, the bytes to append and how many to skip at the
front, or the whole column (see `splice`), and the ids added and dropped (see `StoredIds`).
"""

import os
import secrets
import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, MutableSequence, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any, overload

from fraudops.features.state import CARD_COLUMNS, MERCHANT_COLUMNS, CardState, MerchantState

# Dropped bytes a column's front may hold before it is written anew: a quarter of the live
# bytes (reads carry at most that much dead weight), and never less than this.
COMPACT_BYTES = 4_096

_BIG_ENDIAN = sys.byteorder == "big"
_ITEM_BYTES = {"q": 8, "d": 8, "B": 1}  # the packed size of each array typecode used
# Added to a time so that its unsigned big-endian bytes sort as the signed times do.
_TIME_OFFSET = 1 << 63


@dataclass(frozen=True)
class Kind:
    """A card or a merchant: its state class and its packed columns (attribute, typecode)."""

    name: str
    state: type[CardState] | type[MerchantState]
    columns: tuple[tuple[str, str], ...]


CARD = Kind("card", CardState, CARD_COLUMNS)
MERCHANT = Kind("merchant", MerchantState, MERCHANT_COLUMNS)

State = CardState | MerchantState


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """A state as stored at one version: each column's live bytes and skip, id count, last id."""

    version: bytes  # b"" when the state does not exist
    g: bytes = b""
    live: tuple[bytes, ...] = ()  # each column's bytes after its skipped front
    skips: tuple[int, ...] = ()
    count: int = 0
    last: str | None = None  # the last id, None if unknown (or no id)

    @property
    def size(self) -> int:
        """Bytes of packed columns held."""
        return sum(len(live) for live in self.live)


@dataclass(frozen=True)
class Seen:
    """A state as handed to a transition: the snapshot it came from, its object, its ids."""

    kind: Kind
    key: str
    snapshot: Snapshot
    state: State | None
    ids: "StoredIds | None"


class StoredIds(MutableSequence[str]):
    """A state's ids as Redis holds them: fetched only where read, with this attempt's edits.

    The state classes only read ids, insert them and drop a prefix of them; `change` then
    tells how many stored ids to drop from the front and which inserted ones remain, where.
    """

    def __init__(self, *, stored: int, fetch: Callable[[int, int], list[str]], last: str | None):
        self._stored = stored
        self._fetch = fetch
        self._known: dict[int, str] = {} if last is None else {stored - 1: last}
        self._dropped = 0
        self._positions: list[int] = []  # of the inserted ids, ascending
        self._added: list[str] = []

    def __len__(self) -> int:
        return self._stored - self._dropped + len(self._added)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> MutableSequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | MutableSequence[str]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        position = self._position(index)
        before = bisect_left(self._positions, position)
        if before < len(self._positions) and self._positions[before] == position:
            return self._added[before]
        rank = self._dropped + position - before
        found = self._known.get(rank)
        if found is None:
            found = self._known[rank] = self._fetch(rank, rank + 1)[0]
        return found

    def __iter__(self) -> Iterator[str]:
        stored = iter(
            self._fetch(self._dropped, self._stored) if self._dropped < self._stored else []
        )
        added = iter(zip(self._positions, self._added, strict=True))
        upcoming = next(added, None)
        for position in range(len(self)):
            if upcoming is not None and upcoming[0] == position:
                yield upcoming[1]
                upcoming = next(added, None)
            else:
                yield next(stored)

    def insert(self, index: int, value: str) -> None:
        """Insert as list.insert does."""
        size = len(self)
        position = min(max(index + size if index < 0 else index, 0), size)
        at = bisect_left(self._positions, position)
        for later in range(at, len(self._positions)):
            self._positions[later] += 1
        self._positions.insert(at, position)
        self._added.insert(at, value)

    def __delitem__(self, index: int | slice) -> None:
        if isinstance(index, int):
            start, stop, step = self._position(index), self._position(index) + 1, 1
        else:
            start, stop, step = index.indices(len(self))
        if start != 0 or step != 1:
            msg = "stored ids can only lose a prefix"
            raise NotImplementedError(msg)
        count = max(stop, 0)
        gone = bisect_left(self._positions, count)
        self._dropped += count - gone
        self._positions = [position - count for position in self._positions[gone:]]
        del self._added[:gone]

    def __setitem__(self, index: int | slice, value: Any) -> None:
        msg = "stored ids are never replaced"
        raise NotImplementedError(msg)

    def last_known(self) -> str | None:
        """The last id if known without asking Redis (None also when there is none)."""
        if not len(self):
            return None
        if self._positions and self._positions[-1] == len(self) - 1:
            return self._added[-1]
        return self._known.get(self._stored - 1)

    def change(self) -> tuple[int, list[tuple[int, str]]]:
        """Stored ids dropped from the front, and each inserted id left with its position."""
        return self._dropped, list(zip(self._positions, self._added, strict=True))

    def _position(self, index: int) -> int:
        """A non-negative position for an index, as a list reads it."""
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            msg = "ids index out of range"
            raise IndexError(msg)
        return position


def kept_args(kind: Kind, snapshot: Snapshot | None) -> list[Any]:
    """A read's arguments for one state: the g kept and each column's length kept."""
    if snapshot is None or not snapshot.version:
        return [b"", *([0] * len(kind.columns))]
    return [
        snapshot.g,
        *(skip + len(live) for skip, live in zip(snapshot.skips, snapshot.live, strict=True)),
    ]


def write_args(seen: Seen, state: State) -> tuple[Snapshot, list[Any]]:
    """A write's arguments for one new state (from new version on), and its snapshot after."""
    kind, snapshot = seen.kind, seen.snapshot
    if seen.ids is not None and state.ids is seen.ids:
        dropped, added = seen.ids.change()
    else:
        dropped, added = -1, list(enumerate(state.ids))
    if len(state.ids) != len(state.times):
        msg = f"{kind.name} {seen.key}: {len(state.ids)} ids for {len(state.times)} events"
        raise ValueError(msg)
    version, g = new_token().encode(), new_token().encode()
    args: list[Any] = [version, g, dropped]
    lives: list[bytes] = []
    skips: list[int] = []
    rewritten = not snapshot.version
    for number, (name, code) in enumerate(kind.columns):
        skip, sent, live = column_change(snapshot, number, code, getattr(state, name), dropped)
        args += [skip, sent]
        lives.append(live)
        skips.append(max(skip, 0))
        rewritten = rewritten or skip < 0
    args.append(len(added))
    for position, trans_id in added:
        time_ms = state.times[position]
        args += [time_ms, event_member(time_ms, trans_id)]
    after = Snapshot(
        version=version,
        g=g if rewritten else snapshot.g,
        live=tuple(lives),
        skips=tuple(skips),
        count=len(state.ids),
        last=state.ids.last_known() if isinstance(state.ids, StoredIds) else last_id(state.ids),
    )
    return after, args


def last_id(ids: Sequence[str]) -> str | None:
    """The last id, None if there is none."""
    return ids[-1] if ids else None


def column_change(
    snapshot: Snapshot, number: int, code: str, values: Sequence[Any], dropped: int
) -> tuple[int, bytes, bytes]:
    """How to write a column: its new skip (-1: write it whole), the bytes sent, its bytes after."""
    new = pack(code, values)
    if not snapshot.version:
        return -1, new, new
    skipped = snapshot.skips[number]
    drop, tail = splice(
        memoryview(snapshot.live[number]),
        new,
        code=code,
        values=values,
        dropped=dropped,
        skipped=skipped,
    )
    return (-1, new, new) if drop < 0 else (skipped + drop, tail, new)


def splice(
    old: memoryview, new: bytes, *, code: str, values: Sequence[Any], dropped: int, skipped: int
) -> tuple[int, bytes]:
    """(drop, tail) such that new == old[drop:] + tail, or (-1, new) to write it whole.

    Scoring appends an event and prunes old ones, so a column usually loses as many items
    from the front as the ids did (`dropped`) and gains a few at the end; a sorted column
    (the fraud times) may lose others, found by where its new first value sits in the old.
    Anything else (a late event's sums), and a front of `skipped` dropped bytes that would
    outgrow a quarter of the column (read at every transaction for nothing), goes whole.
    """
    size = _ITEM_BYTES[code]
    drop = dropped * size if dropped > 0 else 0
    if drop > len(old) or not new.startswith(old[drop:]):
        if code != "q":
            return -1, new
        drop = bisect_left(unpack(code, old), values[0]) * size if values else len(old)
        if not new.startswith(old[drop:]):
            return -1, new
    if skipped + drop > max(COMPACT_BYTES, len(new) // 4):
        return -1, new
    return drop, new[len(old) - drop :]


def pack(code: str, values: Iterable[Any]) -> bytes:
    """Values as little-endian machine numbers of an array typecode."""
    packed = (
        values if isinstance(values, array) and values.typecode == code else array(code, values)
    )
    if _BIG_ENDIAN:
        packed = array(code, packed)
        packed.byteswap()
    return packed.tobytes()


def unpack(code: str, raw: bytes | memoryview) -> "array[Any]":
    """An array of an array typecode from `pack` output."""
    values: array[Any] = array(code)
    values.frombytes(raw)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


def event_member(time_ms: int, trans_id: str) -> bytes:
    """An event's sorted-set member: bytes that sort as (time, id) sorts."""
    return (time_ms + _TIME_OFFSET).to_bytes(8, "big") + trans_id.encode("utf-8", "surrogatepass")


def id_of(member: bytes) -> str:
    """The id in a sorted-set member."""
    return member[8:].decode("utf-8", "surrogatepass")


def new_token() -> str:
    """A version or generation no other write uses: this process's random prefix and a
    count (random: a restarted Redis counts nothing; drawn once, not at every write)."""
    return f"{_token_prefix}{next(_token_count):x}"


def _new_token_prefix() -> None:
    """Draw the process's token prefix (again in a forked child, which must not share it)."""
    global _token_prefix, _token_count  # noqa: PLW0603 - per process, redrawn after a fork
    _token_prefix = secrets.token_hex(8) + "-"
    _token_count = count()


_token_prefix = ""
_token_count = count()
_new_token_prefix()
os.register_at_fork(after_in_child=_new_token_prefix)
