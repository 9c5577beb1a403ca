"""Online feature state: each card's and merchant's recent events, and where they are kept.

Events are kept in canonical (time, transaction id) order whatever order they arrive in;
a card's running sums are added one event at a time in that order from its first event and
kept absolute when old events are pruned, so window sums are the very floats the batch
engine computes. A state's numbers are `array` columns of fixed typecodes (CARD_COLUMNS,
MERCHANT_COLUMNS), kept so in memory and packed as they are by a shared store (Redis), so
that the compiled features (`fraudops.features.compiled`) read them without a copy; its ids
are strings, a list or, from Redis, ids fetched on demand: they are only ever read, inserted
and dropped from the front here.

Stores change state only through `transact`: read a card's and a merchant's state, derive
the new states, write them, atomically with respect to every other `transact` on the keys.
A rebuild computes every state in process from history and hands them to `load` at once.
"""

import math
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, MutableSequence, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import reduce
from itertools import compress
from operator import add
from typing import Any, Generic, Protocol, Self, TypeAlias, TypeVar

from fraudops.features.formulas import (
    HOUR_COS_LIST,
    HOUR_SIN_LIST,
    amount_ratio,
    amount_vs_history,
    hour_similarity,
)
from fraudops.features.labels import label_known
from fraudops.features.spec import (
    CARD_DIVERSITY_WINDOWS,
    CARD_HISTORY_MS,
    MS_PER_DAY,
    MS_PER_HOUR,
    FeatureSpec,
)

# Each state's numeric columns and their `array` typecodes (int64, float64, uint8): kept as
# arrays in memory as in Redis (redis_packing packs these very bytes), so that the compiled
# features read them where they lie.
CARD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("times", "q"),
    ("amounts", "d"),
    ("sum1", "d"),
    ("sum2", "d"),
    ("merchants", "q"),
    ("categories", "q"),
    ("labels", "B"),
    ("fraud_times", "q"),
    ("fraud_known", "q"),
    ("hour_cos", "d"),
    ("hour_sin", "d"),
)
MERCHANT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("times", "q"),
    ("labels", "B"),
    ("fraud_times", "q"),
    ("fraud_known", "q"),
)


def as_arrays(state: object, columns: tuple[tuple[str, str], ...]) -> None:
    """Make each column of a state an `array` of its typecode (those given as lists)."""
    for name, code in columns:
        values = getattr(state, name)
        if not isinstance(values, array) or values.typecode != code:
            setattr(state, name, array(code, values))


class _LabelledEvents:
    """The labels of a state's events, and its frauds with when each became known: the same
    for cards and merchants (the dataclasses below hold the fields)."""

    __slots__ = ()
    times: MutableSequence[int]
    ids: MutableSequence[str]
    labels: MutableSequence[int]
    fraud_times: MutableSequence[int]
    fraud_known: MutableSequence[int]

    def set_label(
        self, *, time_ms: int, trans_id: str, is_fraud: bool, label_time_ms: int | None = None
    ) -> bool:
        """Record a transaction's label, known from `label_time_ms` (default: the event's
        time); False if the transaction is not (or no longer) here. A fraud label given
        again keeps its first label time."""
        position, present = canonical_position(self.times, self.ids, time_ms, trans_id)
        if not present:
            return False
        if is_fraud and not self.labels[position]:
            self._mark_fraud(position, time_ms if label_time_ms is None else label_time_ms)
        elif not is_fraud and self.labels[position]:
            fraud = self._fraud_index(position)
            self.labels[position] = 0
            del self.fraud_times[fraud]
            del self.fraud_known[fraud]
        return True

    def _mark_fraud(self, position: int, label_time_ms: int) -> None:
        """Label the event at `position` fraud, known from `label_time_ms`."""
        fraud = self._fraud_index(position)
        self.labels[position] = 1
        self.fraud_times.insert(fraud, self.times[position])
        self.fraud_known.insert(fraud, label_time_ms)

    def _fraud_index(self, position: int) -> int:
        """Where the event at `position` is (or goes) among the frauds."""
        return _fraud_index(self.times, self.labels, self.fraud_times, position)


@dataclass(slots=True)
class CardState(_LabelledEvents):
    """One card's recent events; sum1[j] / sum2[j]: sums of amounts / squares before event j.

    Per event also its merchant's and category's `value_code` (0: missing) and its label
    (0 until a fraud label is given), with its frauds' times in (time, id) order and when
    each of those frauds became known (as MerchantState); hour_cos[j] / hour_sin[j]: sums of
    the hours' points on the unit circle before event j (formulas.HOUR_COS, HOUR_SIN).
    """

    times: MutableSequence[int] = field(default_factory=lambda: array("q"))
    ids: MutableSequence[str] = field(default_factory=list)
    amounts: MutableSequence[float] = field(default_factory=lambda: array("d"))
    sum1: MutableSequence[float] = field(default_factory=lambda: array("d", [0.0]))
    sum2: MutableSequence[float] = field(default_factory=lambda: array("d", [0.0]))
    merchants: MutableSequence[int] = field(default_factory=lambda: array("q"))
    categories: MutableSequence[int] = field(default_factory=lambda: array("q"))
    labels: MutableSequence[int] = field(default_factory=lambda: array("B"))
    fraud_times: MutableSequence[int] = field(default_factory=lambda: array("q"))
    fraud_known: MutableSequence[int] = field(default_factory=lambda: array("q"))
    hour_cos: MutableSequence[float] = field(default_factory=lambda: array("d", [0.0]))
    hour_sin: MutableSequence[float] = field(default_factory=lambda: array("d", [0.0]))

    def __post_init__(self) -> None:
        # A state without label times (written by an older version) reads its frauds as
        # known from their transaction's time, as MerchantState does.
        if len(self.fraud_known) != len(self.fraud_times):
            self.fraud_known = array("q", self.fraud_times)
        as_arrays(self, CARD_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (copies of the lists; `asdict` is 300x slower)."""
        return {name: list(getattr(self, name)) for name in _CARD_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild from `to_dict` output."""
        return cls(**data)

    def add(
        self,
        *,
        time_ms: int,
        trans_id: str,
        amount: float,
        merchant: int = 0,
        category: int = 0,
        label: int | None = None,
        label_time_ms: int | None = None,
    ) -> bool:
        """Add an event at its canonical place, with its label if given, known from
        `label_time_ms` (default: the event's time); False if it is already there (a
        replay, whose label, if given, is recorded)."""
        position, present = canonical_position(self.times, self.ids, time_ms, trans_id)
        if present:
            if label is not None:
                self.set_label(
                    time_ms=time_ms,
                    trans_id=trans_id,
                    is_fraud=bool(label),
                    label_time_ms=label_time_ms,
                )
            return False
        hour = (time_ms // MS_PER_HOUR) % 24
        if position == len(self.times):
            self.times.append(time_ms)
            self.ids.append(trans_id)
            self.amounts.append(amount)
            self.merchants.append(merchant)
            self.categories.append(category)
            self.labels.append(0)
            self.sum1.append(self.sum1[-1] + amount)
            self.sum2.append(self.sum2[-1] + amount * amount)
            self.hour_cos.append(self.hour_cos[-1] + HOUR_COS_LIST[hour])
            self.hour_sin.append(self.hour_sin[-1] + HOUR_SIN_LIST[hour])
            if label:
                self._mark_fraud(position, time_ms if label_time_ms is None else label_time_ms)
            return True
        # A tie or a late event: insert it and re-add the sums after it, in order.
        self.times.insert(position, time_ms)
        self.ids.insert(position, trans_id)
        self.amounts.insert(position, amount)
        self.merchants.insert(position, merchant)
        self.categories.insert(position, category)
        self.labels.insert(position, 0)
        if label:
            self._mark_fraud(position, time_ms if label_time_ms is None else label_time_ms)
        for sums in (self.sum1, self.sum2, self.hour_cos, self.hour_sin):
            del sums[position + 1 :]
        for value, at in zip(self.amounts[position:], self.times[position:], strict=True):
            later = (at // MS_PER_HOUR) % 24
            self.sum1.append(self.sum1[-1] + value)
            self.sum2.append(self.sum2[-1] + value * value)
            self.hour_cos.append(self.hour_cos[-1] + HOUR_COS_LIST[later])
            self.hour_sin.append(self.hour_sin[-1] + HOUR_SIN_LIST[later])
        return True

    def prune(self, *, horizon_ms: int, now_ms: int | None = None) -> None:
        """Forget events older than the horizon before the latest one (or `now_ms`, if
        earlier: one event dated far ahead must not erase the card's history).

        The last event before that instant stays, however old, so the time since the
        previous purchase is still known to the next one (and to ties of it).
        """
        if not self.times:
            return
        latest = self.times[-1] if now_ms is None else min(self.times[-1], now_ms)
        if self.times[0] >= latest - horizon_ms:
            return
        old = min(bisect_left(self.times, latest - horizon_ms), bisect_left(self.times, latest) - 1)
        if old > 0:
            for name in _CARD_EVENT_FIELDS:
                del getattr(self, name)[:old]
            # Frauds of the events kept stay, also the one kept however old.
            frauds = bisect_left(self.fraud_times, self.times[0])
            del self.fraud_times[:frauds]
            del self.fraud_known[:frauds]


# CardState's fields, and those holding one item per event (or per event and one more).
_CARD_FIELDS = tuple(CardState.__dataclass_fields__)
_CARD_EVENT_FIELDS = tuple(
    name for name in _CARD_FIELDS if name not in {"fraud_times", "fraud_known"}
)


def _fraud_index(
    times: Sequence[int], labels: Sequence[int], fraud_times: Sequence[int], position: int
) -> int:
    """Where the event at `position` is (or goes) among the frauds: frauds follow the
    events' (time, id) order, so among frauds at its time it comes after those before it."""
    time_ms = times[position]
    first = bisect_left(times, time_ms, 0, position)
    earlier = sum(labels[first:position])
    return bisect_left(fraud_times, time_ms) + earlier


@dataclass(slots=True)
class MerchantState(_LabelledEvents):
    """One merchant's recent events with their labels (0 until a fraud label is given), its
    frauds' times in (time, id) order, and when each of those frauds became known."""

    times: MutableSequence[int] = field(default_factory=lambda: array("q"))
    ids: MutableSequence[str] = field(default_factory=list)
    labels: MutableSequence[int] = field(default_factory=lambda: array("B"))
    fraud_times: MutableSequence[int] = field(default_factory=lambda: array("q"))
    fraud_known: MutableSequence[int] = field(default_factory=lambda: array("q"))

    def __post_init__(self) -> None:
        # A state stored before label times were kept has none: its frauds were counted
        # from their transaction's time, and still are.
        if len(self.fraud_known) != len(self.fraud_times):
            self.fraud_known = array("q", self.fraud_times)
        as_arrays(self, MERCHANT_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (copies of the lists; the label times only where some fraud
        was known later than its transaction's time, the default)."""
        data = {
            "times": list(self.times),
            "ids": list(self.ids),
            "labels": list(self.labels),
            "fraud_times": list(self.fraud_times),
        }
        if list(self.fraud_known) != data["fraud_times"]:
            data["fraud_known"] = list(self.fraud_known)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild from `to_dict` output."""
        return cls(**data)

    def add(
        self, *, time_ms: int, trans_id: str, label: int | None, label_time_ms: int | None = None
    ) -> bool:
        """Add an event, with its label if given, known from `label_time_ms` (default: the
        event's time); False if the event is already there."""
        position, present = canonical_position(self.times, self.ids, time_ms, trans_id)
        if present:
            if label is not None:
                self.set_label(
                    time_ms=time_ms,
                    trans_id=trans_id,
                    is_fraud=bool(label),
                    label_time_ms=label_time_ms,
                )
            return False
        self.times.insert(position, time_ms)
        self.ids.insert(position, trans_id)
        self.labels.insert(position, 0)
        if label:
            self._mark_fraud(position, time_ms if label_time_ms is None else label_time_ms)
        return True

    def prune(self, *, horizon_ms: int, now_ms: int | None = None) -> None:
        """Forget events older than the horizon before the latest one (or `now_ms`, if
        earlier)."""
        if not self.times:
            return
        latest = self.times[-1] if now_ms is None else min(self.times[-1], now_ms)
        if self.times[0] >= latest - horizon_ms:
            return
        cutoff = latest - horizon_ms
        old = bisect_left(self.times, cutoff)
        for values in (self.times, self.ids, self.labels):
            del values[:old]
        frauds = bisect_left(self.fraud_times, cutoff)
        del self.fraud_times[:frauds]
        del self.fraud_known[:frauds]


def canonical_position(
    times: Sequence[int], ids: Sequence[str], time_ms: int, trans_id: str
) -> tuple[int, bool]:
    """Where (time, id) belongs in events sorted by (time, id), and whether it is there."""
    if not times or time_ms > times[-1] or (time_ms == times[-1] and trans_id > ids[-1]):
        return len(times), False
    lo = bisect_left(times, time_ms)
    hi = bisect_right(times, time_ms, lo)
    position = bisect_left(ids, trans_id, lo, hi)
    return position, position < hi and ids[position] == trans_id


def card_window_features(
    state: CardState | None, *, time_ms: int, amount: float, windows: tuple[int, ...]
) -> list[float]:
    """Count, sum, mean and max per window, then ratio and z-score over the widest, recency.

    `windows` are widths in ascending order (each contains the previous), so the maximum
    is carried from one window to the next.
    """
    if state is None or not state.times:
        empty = [0.0, 0.0, math.nan, math.nan] * len(windows)
        return [*empty, math.nan, math.nan, math.nan]
    times, sum1, amounts = state.times, state.sum1, state.amounts
    hi = bisect_left(times, time_ms)
    out: list[float] = []
    covered = hi
    largest = -math.inf
    lo = hi
    for width in windows:
        lo = bisect_left(times, time_ms - width, 0, covered)
        if lo < covered:
            widest = max(amounts[lo:covered])
            largest = widest if widest > largest else largest
            covered = lo
        count = hi - lo
        total = sum1[hi] - sum1[lo]
        if count:
            out += [count, total, total / count, largest]
        else:
            out += [0, total, math.nan, math.nan]
    ratio, zscore = amount_vs_history(
        amount=amount, count=hi - lo, s1=sum1[hi] - sum1[lo], s2=state.sum2[hi] - state.sum2[lo]
    )
    since = (time_ms - times[hi - 1]) / 1000 if hi else math.nan
    return [*out, ratio, zscore, since]


def merchant_counts(
    state: MerchantState | None, *, time_ms: int, windows: tuple[int, ...]
) -> list[int]:
    """Merchant transactions in each window [t - W, t)."""
    if state is None:
        return [0] * len(windows)
    times = state.times
    hi = bisect_left(times, time_ms)
    return [hi - bisect_left(times, time_ms - width, 0, hi) for width in windows]


def merchant_risk(
    state: MerchantState | None, *, time_ms: int, lag_ms: int, windows: tuple[int, ...]
) -> list[float]:
    """Fraud share of the merchant's transactions in [t - g - W, t - g) (g the label lag,
    FeatureSpec.label_lag_ms), counting the frauds known at t; NaN if there is none."""
    if state is None:
        return [math.nan] * len(windows)
    known_until = time_ms - lag_ms
    times, frauds, known = state.times, state.fraud_times, state.fraud_known
    hi = bisect_left(times, known_until)
    fraud_hi = bisect_left(frauds, known_until)
    out: list[float] = []
    for width in windows:
        count = hi - bisect_left(times, known_until - width, 0, hi)
        fraud_lo = bisect_left(frauds, known_until - width, 0, fraud_hi)
        fraud = fraud_hi - fraud_lo
        for arrived in known[fraud_lo:fraud_hi]:
            if not label_known(arrived, time_ms):
                fraud -= 1
        out.append(fraud / count if count else math.nan)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CardProfileLayout:
    """Which card-profile features a spec has, in `spec.names` order (see FeatureSpec)."""

    fraud_history: bool
    novelty: bool
    merchant_diversity: bool
    category_diversity: bool
    category_amount: bool
    hour_profile: bool
    label_lag_ms: int

    @classmethod
    def of(cls, spec: FeatureSpec) -> Self:
        """The layout of a spec."""
        return cls(
            fraud_history=spec.has_card_fraud_history,
            novelty=spec.has_card_merchant_novelty,
            merchant_diversity=spec.has_card_merchant_diversity,
            category_diversity=spec.has_card_category_diversity,
            category_amount=spec.has_card_category_amount,
            hour_profile=spec.has_card_hour_profile,
            label_lag_ms=spec.label_lag_ms,
        )


_DAY_WIDTH, _WEEK_WIDTH = CARD_DIVERSITY_WINDOWS.values()


def card_profile_features(
    state: CardState | None,
    *,
    time_ms: int,
    amount: float,
    merchant: int,
    category: int,
    layout: CardProfileLayout,
) -> list[float]:
    """The card's known frauds, a new merchant, distinct merchants and categories, amount
    against the category's usual one, hour against the usual hours (those the layout has).

    `merchant` and `category` are value codes (0: missing); distinct counts leave missing
    values out.
    """
    card = state if state is not None else _NO_CARD
    times = card.times
    hi = bisect_left(times, time_ms)
    lo = bisect_left(times, time_ms - CARD_HISTORY_MS, 0, hi)
    out: list[float] = []
    if layout.fraud_history:
        out += _known_frauds(card, time_ms=time_ms, lag_ms=layout.label_lag_ms)
    if layout.novelty:
        out.append(float(merchant not in card.merchants[lo:hi]) if merchant else math.nan)
    if layout.merchant_diversity or layout.category_diversity:
        day = bisect_left(times, time_ms - _DAY_WIDTH, 0, hi)
        week = bisect_left(times, time_ms - _WEEK_WIDTH, 0, hi)
        if layout.merchant_diversity:
            out += _distinct(card.merchants, week=week, day=day, hi=hi)
        if layout.category_diversity:
            out += _distinct(card.categories, week=week, day=day, hi=hi)
    if layout.category_amount:
        categories = card.categories[lo:hi]
        if category and category in categories:
            picked = list(compress(card.amounts[lo:hi], map(category.__eq__, categories)))
            # Added one by one in time order (sum() compensates from Python 3.12), as batch.
            total = reduce(add, picked, 0.0)
            out.append(amount_ratio(amount=amount, count=len(picked), total=total))
        else:
            out.append(math.nan)
    if layout.hour_profile:
        out.append(
            hour_similarity(
                hour=(time_ms // MS_PER_HOUR) % 24,
                count=hi - lo,
                cos_sum=card.hour_cos[hi] - card.hour_cos[lo],
                sin_sum=card.hour_sin[hi] - card.hour_sin[lo],
            )
        )
    return out


# What a card never seen reads as.
_NO_CARD = CardState()


def _known_frauds(card: CardState, *, time_ms: int, lag_ms: int) -> list[float]:
    """The card's frauds in [t - g - 30 days, t - g) (g the label lag) whose label is known
    at t (the rule of merchant risk), and days since the latest of them (or NaN)."""
    known_until = time_ms - lag_ms
    frauds, known = card.fraud_times, card.fraud_known
    fraud_hi = bisect_left(frauds, known_until)
    fraud_lo = bisect_left(frauds, known_until - CARD_HISTORY_MS, 0, fraud_hi)
    count, latest = 0, None
    for fraud in range(fraud_hi - 1, fraud_lo - 1, -1):
        if label_known(known[fraud], time_ms):
            count += 1
            if latest is None:
                latest = frauds[fraud]
    if latest is None:
        return [0.0, math.nan]
    return [float(count), (time_ms - latest) / MS_PER_DAY]


def _distinct(codes: Sequence[int], *, week: int, day: int, hi: int) -> list[float]:
    """Distinct non-missing value codes in [day, hi) and in [week, hi) (week <= day)."""
    recent = set(codes[day:hi])
    weekly = recent.union(codes[week:day])
    return [len(recent) - (0 in recent), len(weekly) - (0 in weekly)]


T = TypeVar("T")

# Given a card's and a merchant's stored state (None if unknown or not asked for): a result
# and the states to store, None for a key that has nothing to write.
StateTransition: TypeAlias = Callable[
    [CardState | None, MerchantState | None], tuple[T, CardState | None, MerchantState | None]
]


class FeatureStateUnavailableError(RuntimeError):
    """The feature state store cannot be reached, or a key stays too contended to update."""


# How long a claimed trans_num is remembered: far longer than storing a transaction takes,
# so that a request checked against the warehouse before another's commit still meets the
# other's claim.
CLAIM_SECONDS = 120.0
# A process's heartbeat (shared stores) lapses this long after it stops renewing it.
HEARTBEAT_SECONDS = 6.0


@dataclass(frozen=True, slots=True)
class Claim:
    """A transaction's id and content fingerprint, claimed with the state change it makes."""

    trans_num: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class StateStep(Generic[T]):
    """One transaction of `transact_each`: the arguments `transact` takes."""

    card_key: str | None
    merchant_key: str | None
    work: StateTransition[T]
    claim: Claim | None = None


class ClaimedError(Exception):
    """The trans_num was claimed already (with `fingerprint`): nothing was changed."""

    def __init__(self, trans_num: str, fingerprint: str) -> None:
        super().__init__(f"transaction {trans_num!r} was claimed already")
        self.trans_num = trans_num
        self.fingerprint = fingerprint


class FeatureStateStore(Protocol):
    """Where online feature state lives: card and merchant state by key.

    `get_*` and `put_*` are plain reads and writes, for tests and rebuilds; concurrent
    scoring goes through `transact`.
    """

    def get_card(self, key: str) -> CardState | None:
        """A card's state, or None if the card is unknown."""
        ...

    def put_card(self, key: str, state: CardState) -> None:
        """Store a card's state."""
        ...

    def get_merchant(self, key: str) -> MerchantState | None:
        """A merchant's state, or None if the merchant is unknown."""
        ...

    def put_merchant(self, key: str, state: MerchantState) -> None:
        """Store a merchant's state."""
        ...

    def transact(
        self,
        card_key: str | None,
        merchant_key: str | None,
        work: StateTransition[T],
        *,
        claim: Claim | None = None,
    ) -> T:
        """Apply `work` to the keys' states and store what it returns, atomically; its result.

        `work` may run more than once (optimistic stores retry it on a conflict), so it
        must do nothing but build its return value, and must not call the store. A shared
        store refuses to write state that is not initialised (its history was lost, or is
        being rebuilt): FeatureStateUnavailableError.

        With a `claim`, the trans_num is claimed in the same atomic step: if it was claimed
        within CLAIM_SECONDS, nothing is written and ClaimedError says by which content.
        The claim stays unconfirmed until `confirm` says its transaction is stored.
        """
        ...

    def transact_each(self, steps: Sequence[StateStep[T]]) -> list[T | Exception]:
        """`transact` of each step, in order: its result, or the error it raised.

        From the first FeatureStateUnavailableError on, that error is the outcome of every
        later step too, and those steps change nothing. A shared store may send the writes
        of several steps together, each applied only if the states it saw are current.
        """
        ...

    def confirm(self, trans_nums: Sequence[str]) -> None:
        """Record that these claimed transactions are stored in the warehouse."""
        ...

    def stale_claims(self, *, older_than_seconds: float) -> list[str]:
        """Claims never confirmed: of processes that are gone, or older than this.

        Their state changes may be in the state while their transactions are not stored.
        """
        ...

    def forget_claims(self, trans_nums: Sequence[str]) -> None:
        """Drop stale claims, whichever process made them, once they are dealt with."""
        ...

    def heartbeat(self) -> None:
        """Say this process is alive (its unconfirmed claims are in flight, not lost)."""
        ...

    def invalidate(self) -> None:
        """Drop the initialised mark: the state is to be rebuilt from history."""
        ...

    def initialised(self) -> bool:
        """Whether the state has been built from history already."""
        ...

    def mark_initialised(self) -> None:
        """Record that the state has been built from history."""
        ...

    def load(self, cards: Mapping[str, CardState], merchants: Mapping[str, MerchantState]) -> None:
        """Replace the whole state with these (built from history), then mark it initialised."""
        ...

    def rebuild_lock(self) -> AbstractContextManager[bool]:
        """Try to become the one process rebuilding the state: True if this one is.

        Held for the `with` block; False means another holds it (wait for `initialised`).
        """
        ...

    def clear(self) -> None:
        """Drop every card, merchant and the initialised mark: for tests and rebuilds."""
        ...

    def close(self) -> None:
        """Release connections, if the store holds any."""
        ...


class InMemoryStateStore:
    """State in this process's memory: the embedded default and the tests' store.

    `transact` runs `work` exactly once, under one lock, on the stored objects themselves
    (no copies: that is what keeps scoring fast), so `work` may change them in place; if it
    raises half-way, the change stays. `get_*` and `put_*` take no lock.
    """

    def __init__(self) -> None:
        self.cards: dict[str, CardState] = {}
        self.merchants: dict[str, MerchantState] = {}
        self._lock = threading.Lock()
        self._rebuilding = threading.Lock()
        self._initialised = False
        # trans_num -> (fingerprint, time claimed), oldest first; and those unconfirmed.
        self._claims: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._unconfirmed: dict[str, float] = {}

    def get_card(self, key: str) -> CardState | None:
        """A card's state, or None if the card is unknown."""
        return self.cards.get(key)

    def put_card(self, key: str, state: CardState) -> None:
        """Store a card's state."""
        self.cards[key] = state

    def get_merchant(self, key: str) -> MerchantState | None:
        """A merchant's state, or None if the merchant is unknown."""
        return self.merchants.get(key)

    def put_merchant(self, key: str, state: MerchantState) -> None:
        """Store a merchant's state."""
        self.merchants[key] = state

    def transact(
        self,
        card_key: str | None,
        merchant_key: str | None,
        work: StateTransition[T],
        *,
        claim: Claim | None = None,
    ) -> T:
        """Apply `work` to the keys' states and store what it returns, under the lock."""
        with self._lock:
            if claim is not None:
                self._refuse_claimed(claim)
            card = self.cards.get(card_key) if card_key is not None else None
            merchant = self.merchants.get(merchant_key) if merchant_key is not None else None
            result, new_card, new_merchant = work(card, merchant)
            if new_card is not None:
                self.cards[require_key(card_key, "card")] = new_card
            if new_merchant is not None:
                self.merchants[require_key(merchant_key, "merchant")] = new_merchant
            if claim is not None:
                now = time.monotonic()
                self._claims[claim.trans_num] = (claim.fingerprint, now)
                self._unconfirmed[claim.trans_num] = now
            return result

    def transact_each(self, steps: Sequence[StateStep[T]]) -> list[T | Exception]:
        """`transact` of each step, in order: its result, or the error it raised."""
        return transact_in_turn(self, steps)

    def _refuse_claimed(self, claim: Claim) -> None:
        """ClaimedError if the trans_num is claimed (forgetting claims past CLAIM_SECONDS)."""
        expired = time.monotonic() - CLAIM_SECONDS
        while self._claims:
            oldest, (_, claimed_at) = next(iter(self._claims.items()))
            if claimed_at > expired:
                break
            del self._claims[oldest]
        prior = self._claims.get(claim.trans_num)
        if prior is not None:
            raise ClaimedError(claim.trans_num, prior[0])

    def confirm(self, trans_nums: Sequence[str]) -> None:
        """Record that these claimed transactions are stored."""
        with self._lock:
            for trans_num in trans_nums:
                self._unconfirmed.pop(trans_num, None)

    def stale_claims(self, *, older_than_seconds: float) -> list[str]:
        """Unconfirmed claims older than this (this process is the only one)."""
        limit = time.monotonic() - older_than_seconds
        with self._lock:
            return [t for t, claimed_at in self._unconfirmed.items() if claimed_at <= limit]

    def forget_claims(self, trans_nums: Sequence[str]) -> None:
        """Drop stale claims (this process made them all)."""
        self.confirm(trans_nums)

    def heartbeat(self) -> None:
        """Nothing to say: the state lives and dies with this process."""

    def invalidate(self) -> None:
        """Drop the initialised mark (the state is rebuilt and loaded anew)."""
        self._initialised = False

    def initialised(self) -> bool:
        """Whether the state has been built from history already."""
        return self._initialised

    def mark_initialised(self) -> None:
        """Record that the state has been built from history."""
        self._initialised = True

    def load(self, cards: Mapping[str, CardState], merchants: Mapping[str, MerchantState]) -> None:
        """Replace every card and merchant with these (kept as given), then mark initialised.

        Claims go too: what they guarded is stored, or is not in the rebuilt state.
        """
        with self._lock:
            self.cards.clear()
            self.cards.update(cards)
            self.merchants.clear()
            self.merchants.update(merchants)
            self._claims.clear()
            self._unconfirmed.clear()
            self._initialised = True

    @contextmanager
    def rebuild_lock(self) -> Iterator[bool]:
        """Whether this caller may rebuild: one rebuild at a time in this process."""
        taken = self._rebuilding.acquire(blocking=False)
        try:
            yield taken
        finally:
            if taken:
                self._rebuilding.release()

    def clear(self) -> None:
        """Drop every card, merchant, claim and the initialised mark."""
        with self._lock:
            self.cards.clear()
            self.merchants.clear()
            self._claims.clear()
            self._unconfirmed.clear()
            self._initialised = False

    def close(self) -> None:
        """Nothing to release: the state lives as long as the process."""


def require_key(key: str | None, kind: str) -> str:
    """The key a transition's new state goes to; a transition cannot create a key."""
    if key is None:
        msg = f"the state transition returned a {kind} state but no {kind} key was given"
        raise ValueError(msg)
    return key


def transact_in_turn(
    store: FeatureStateStore, steps: Sequence[StateStep[T]]
) -> list[T | Exception]:
    """`transact` of each step one after the other, as `FeatureStateStore.transact_each`."""
    outcomes: list[T | Exception] = []
    for step in steps:
        outcome = step_outcome(store, step)
        outcomes.append(outcome)
        if isinstance(outcome, FeatureStateUnavailableError):
            outcomes += [outcome] * (len(steps) - len(outcomes))
            break
    return outcomes


def step_outcome(store: FeatureStateStore, step: StateStep[T]) -> T | Exception:
    """One step's `transact`: its result, or the error it raised."""
    try:
        return store.transact(step.card_key, step.merchant_key, step.work, claim=step.claim)
    except Exception as error:  # the step's error is its outcome
        return error
