"""Online feature engine: one transaction at a time, from per-card and per-merchant state.

Fed the transactions of a frame in time order (any order within a timestamp) with
`features_then_update`, it gives the batch engine's values for every one of them: both
share the formulas and the canonical (time, id) order of each card's running sums.

A transaction is a mapping with the profile's columns (transaction id, card id, merchant
id, amount, category, geo, birth date, numeric extras) and `event_time_ms`, the epoch
milliseconds of its time; `records_from_frame` builds them from a loaded frame.
"""

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from fraudops.features import columns
from fraudops.features.clock import EventClock
from fraudops.features.formulas import (
    HOUR_COS,
    HOUR_SIN,
    FloatArray,
    IntArray,
    age_years,
    calendar,
    haversine_km,
    log_amount,
    value_code,
)
from fraudops.features.labels import fixed_label_time_ms
from fraudops.features.spec import (
    CARD_DIVERSITY_WINDOWS,
    CARD_HISTORY_MS,
    CARD_WINDOWS,
    MERCHANT_WINDOWS,
    MS_PER_DAY,
    FeatureSpec,
)
from fraudops.features.state import (
    CardProfileLayout,
    CardState,
    Claim,
    FeatureStateStore,
    InMemoryStateStore,
    MerchantState,
    StateStep,
    StateTransition,
    card_profile_features,
    card_window_features,
    merchant_counts,
    merchant_risk,
)
from fraudops.kernel_load import load_kernel
from fraudops.times import utc_naive

EVENT_TIME_MS = "event_time_ms"
Transaction = Mapping[str, Any]

log = structlog.get_logger(__name__)

_EPOCH = datetime(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)


class OnlineFeatureEngine:
    """Features of single transactions from incremental state, equal to the batch engine's."""

    def __init__(
        self,
        spec: FeatureSpec,
        store: FeatureStateStore | None = None,
        *,
        clock: EventClock | None = None,
        kernel: "FeatureKernel" = "compiled",
    ) -> None:
        self.spec = spec
        self.store: FeatureStateStore = store if store is not None else InMemoryStateStore()
        self.clock = clock if clock is not None else EventClock()
        profile = spec.profile
        self._id = profile.id_column
        self._amount = profile.amount
        self._card = profile.card_id if spec.has_card else None
        self._merchant = profile.merchant_id if spec.has_merchant else None
        self._risk = spec.has_merchant_risk
        self._profile = CardProfileLayout.of(spec) if spec.has_card_profile else None
        # Each card event keeps its merchant and category whatever the groups, so that a
        # champion with other groups finds them in a shared state.
        self._card_merchant = profile.merchant_id if spec.has_merchant else None
        self._category = profile.category if spec.has_card else None
        self._geo = profile.geo
        self._birth = profile.birth_date
        self._numeric = profile.numeric
        self._card_windows = tuple(CARD_WINDOWS.values())
        self._merchant_windows = tuple(MERCHANT_WINDOWS.values())
        if list(self._card_windows) != sorted(self._card_windows):
            msg = "card windows must be listed narrowest first"
            raise ValueError(msg)
        # Kept for the widest window plus the label delay even where the label lag is shorter:
        # a state shared by champions (hot swaps do not rebuild it) must serve a spec with
        # either rule.
        self._horizon_ms = max(*self._card_windows, *self._merchant_windows) + max(
            spec.label_delay_ms, spec.label_lag_ms
        )
        self._one_hot = [
            (column, {value: number for number, value in enumerate(vocabulary)}, len(vocabulary))
            for column, vocabulary in spec.vocabularies.items()
        ]
        self._width = len(spec.names)
        layout = self._profile
        self._layout = KernelLayout.of(
            [
                self._card is not None,
                self._merchant is not None,
                self._merchant is not None and self._risk,
                layout is not None,
                layout is not None and layout.fraud_history,
                layout is not None and layout.novelty,
                layout is not None and layout.merchant_diversity,
                layout is not None and layout.category_diversity,
                layout is not None and layout.category_amount,
                layout is not None and layout.hour_profile,
            ],
            label_lag_ms=spec.label_lag_ms,
        )
        # The compiled state features: loaded now, by a thread (the identical Python until
        # then, so that a start or a model swap is not held up by numba), or never.
        self._kernel: Callable[..., int] | None = None
        self._kernel_settled = load_kernel(
            self._load_kernel, when=kernel, thread_name="feature-kernel-load"
        )

    @property
    def compiled(self) -> bool:
        """Whether the state features go through the numba kernel now."""
        return self._kernel is not None

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Wait for a background load of the kernel to end; whether it is in use."""
        self._kernel_settled.wait(timeout)
        return self.compiled

    def _load_kernel(self) -> None:
        """Load the kernel (`state_kernel`), then switch the state features over to it."""
        self._kernel = state_kernel()  # one assignment: each transaction reads it once

    def features(self, tx: Transaction) -> FloatArray:
        """The transaction's features from the current state, which stays unchanged."""

        codes = self._codes(tx)

        def read(card: CardState | None, merchant: MerchantState | None) -> _Transition:
            return self._row(tx, card, merchant, codes), None, None

        features: FloatArray = self.store.transact(*self._keys(tx), read)
        return features

    def update(
        self, tx: Transaction, *, label: int | None = None, label_time_ms: int | None = None
    ) -> Self:
        """Add the transaction to its card's and merchant's state, with its label if given:
        known from `label_time_ms`, by default `label_delay` after the transaction."""
        keys, codes = self._keys(tx), self._codes(tx)

        def add(card: CardState | None, merchant: MerchantState | None) -> _Transition:
            return _NO_FEATURES, *self._added(
                tx, keys, codes, card, merchant, label=label, known=label_time_ms
            )

        self.store.transact(*keys, add)
        self.clock.observe(int(tx[EVENT_TIME_MS]))
        return self

    def features_then_update(
        self,
        tx: Transaction,
        *,
        label: int | None = None,
        label_time_ms: int | None = None,
        claim: Claim | None = None,
    ) -> FloatArray:
        """The scoring path: read the features, then add the transaction, atomically.

        Scorers sharing a store give each transaction the features a single scorer gives it
        when fed the transactions in the order their updates committed. A transaction
        without a finite amount is refused (FeatureInputError): it would spoil its card's sums.
        With a `claim`, the store claims the trans_num in the same step, or raises
        ClaimedError and changes nothing.
        """
        row = self.store.transact(
            *self._keys(tx), self._score_then_add(tx, label, label_time_ms), claim=claim
        )
        self.clock.observe(int(tx[EVENT_TIME_MS]))
        return row

    def features_then_update_each(
        self, transactions: Sequence[tuple[Transaction, int | None, Claim | None]]
    ) -> list[FloatArray | Exception]:
        """`features_then_update` of each (transaction, label, claim) in order: its features,
        or the error refusing it (see `FeatureStateStore.transact_each`). A shared store
        sends the state changes of many at once."""
        steps = [
            StateStep(*self._keys(tx), self._score_then_add(tx, label, None), claim)
            for tx, label, claim in transactions
        ]
        rows: list[FloatArray | Exception] = self.store.transact_each(steps)
        outcomes: list[FloatArray | Exception] = []
        for (tx, _, _), outcome in zip(transactions, rows, strict=True):
            if isinstance(outcome, Exception):
                outcomes.append(outcome)
                continue
            self.clock.observe(int(tx[EVENT_TIME_MS]))
            outcomes.append(outcome)
        return outcomes

    def _score_then_add(
        self, tx: Transaction, label: int | None, label_time_ms: int | None
    ) -> "StateTransition[FloatArray]":
        """The scoring transition: the features from the state, then the state with `tx`."""
        keys, codes = self._keys(tx), self._codes(tx)

        def score_then_add(card: CardState | None, merchant: MerchantState | None) -> _Transition:
            row = self._row(tx, card, merchant, codes)
            return row, *self._added(
                tx, keys, codes, card, merchant, label=label, known=label_time_ms
            )

        return score_then_add

    def add_label(
        self, tx: Transaction, *, is_fraud: bool, label_time_ms: int | None = None
    ) -> bool:
        """Record a transaction's label for merchant risk and the card's fraud history, known
        from `label_time_ms` (by default `label_delay` after the transaction); False if
        neither its merchant's nor its card's state holds the transaction."""
        target = self.label_target(tx)
        if target is None:
            return False
        return self.add_label_at(target, is_fraud=is_fraud, label_time_ms=label_time_ms)

    def label_target(self, tx: Transaction) -> "LabelTarget | None":
        """What `add_label` reads of a transaction (kept by a scorer instead of the record);
        None if a label of it has no state to reach."""
        card_key = _key(tx.get(self._card)) if self._card else None
        merchant_key = _key(tx.get(self._merchant)) if self._risk and self._merchant else None
        if card_key is None and merchant_key is None:
            return None
        return card_key, merchant_key, int(tx[EVENT_TIME_MS]), str(tx[self._id])

    def add_label_at(
        self, target: "LabelTarget", *, is_fraud: bool, label_time_ms: int | None = None
    ) -> bool:
        """`add_label` of the transaction a `label_target` describes."""
        card_key, merchant_key, time_ms, trans_id = target
        known = self._label_time_ms(time_ms, label_time_ms)

        def label(
            card: CardState | None, merchant: MerchantState | None
        ) -> tuple[bool, CardState | None, MerchantState | None]:
            changed_card = changed_merchant = None
            if card is not None and card.set_label(
                time_ms=time_ms, trans_id=trans_id, is_fraud=is_fraud, label_time_ms=known
            ):
                changed_card = card
            if merchant is not None and merchant.set_label(
                time_ms=time_ms, trans_id=trans_id, is_fraud=is_fraud, label_time_ms=known
            ):
                changed_merchant = merchant
            found = changed_card is not None or changed_merchant is not None
            return found, changed_card, changed_merchant

        return self.store.transact(card_key, merchant_key, label)

    def _label_time_ms(self, time_ms: int, label_time_ms: int | None) -> int:
        """When a label is known: as given, else by the fixed rule."""
        if label_time_ms is not None:
            return label_time_ms
        known: int = fixed_label_time_ms(time_ms, self.spec.label_delay_ms)
        return known

    def _keys(self, tx: Transaction) -> "_Keys":
        """The transaction's card and merchant keys (None if the spec or the record lacks it)."""
        return (
            _key(tx.get(self._card)) if self._card else None,
            _key(tx.get(self._merchant)) if self._merchant else None,
        )

    def _codes(self, tx: Transaction) -> "_Codes":
        """The value codes of the transaction's merchant and category (0: missing)."""
        return self._code(tx, self._card_merchant), self._code(tx, self._category)

    def _row(
        self,
        tx: Transaction,
        card: CardState | None,
        merchant: MerchantState | None,
        codes: "_Codes",
    ) -> FloatArray:
        """Feature values in `spec.names` order."""
        time_ms = int(tx[EVENT_TIME_MS])
        amount = _number(tx.get(self._amount))
        hour, weekday, night, weekend = calendar(time_ms)
        row = np.empty(self._width)
        row[:6] = (amount, log_amount(amount), hour, weekday, night, weekend)
        at = self._state_features(
            row, time_ms=time_ms, amount=amount, card=card, merchant=merchant, codes=codes
        )
        tail: list[float] = []
        if self._geo is not None:
            geo = self._geo
            tail.append(
                haversine_km(
                    lat=_number(tx.get(geo.lat)),
                    long=_number(tx.get(geo.long)),
                    merch_lat=_number(tx.get(geo.merch_lat)),
                    merch_long=_number(tx.get(geo.merch_long)),
                )
            )
        if self._birth is not None:
            tail.append(age_years(time_ms, datetime_ms(tx.get(self._birth))))
        tail += [_number(tx.get(column)) for column in self._numeric]
        for column, index, size in self._one_hot:
            hot = [0.0] * size
            value = _key(tx.get(column))
            number = index.get(value) if value is not None else None
            if number is not None:
                hot[number] = 1.0
            tail += hot
        row[at:] = tail
        return row

    def _state_features(
        self,
        row: FloatArray,
        *,
        time_ms: int,
        amount: float,
        card: CardState | None,
        merchant: MerchantState | None,
        codes: "_Codes",
    ) -> int:
        """Write the features read from the card's and merchant's state into row[6:]
        (card windows, merchant counts and risk, card profile: those the spec has); where
        they end. Compiled where numba loads, else the same functions in Python."""
        kernel = self._kernel
        if kernel is None:
            values = self._state_values(card, merchant, time_ms, amount, codes)
            row[6 : 6 + len(values)] = values
            return 6 + len(values)
        return kernel_features(
            kernel,
            row,
            6,
            time_ms=time_ms,
            amount=amount,
            codes=codes,
            card=card,
            merchant=merchant,
            layout=self._layout,
        )

    def _state_values(
        self,
        card: CardState | None,
        merchant: MerchantState | None,
        time_ms: int,
        amount: float,
        codes: "_Codes",
    ) -> list[float]:
        """What `_state_features` writes, without numba: the reference functions of `state`."""
        values: list[float] = []
        if self._card:
            values += card_window_features(
                card, time_ms=time_ms, amount=amount, windows=self._card_windows
            )
        if self._merchant:
            values += merchant_counts(merchant, time_ms=time_ms, windows=self._merchant_windows)
            if self._risk:
                values += merchant_risk(
                    merchant,
                    time_ms=time_ms,
                    lag_ms=self.spec.label_lag_ms,
                    windows=self._merchant_windows,
                )
        if self._profile is not None:
            values += card_profile_features(
                card,
                time_ms=time_ms,
                amount=amount,
                merchant=codes[0],
                category=codes[1],
                layout=self._profile,
            )
        return values

    def _added(
        self,
        tx: Transaction,
        keys: "_Keys",
        codes: "_Codes",
        card: CardState | None,
        merchant: MerchantState | None,
        *,
        label: int | None,
        known: int | None,
    ) -> tuple[CardState | None, MerchantState | None]:
        """The card and merchant state with the transaction added; None where nothing changed.

        Changes the given states in place (a store's `transact` hands out states it owns).
        """
        time_ms = int(tx[EVENT_TIME_MS])
        trans_id = str(tx[self._id])
        card_key, merchant_key = keys
        label_time_ms = self._label_time_ms(time_ms, known)
        new_card = new_merchant = None
        if card_key is not None:
            amount = _number(tx.get(self._amount))
            if not math.isfinite(amount):
                # A NaN would stay in the card's running sums for good.
                msg = f"transaction {trans_id}: the amount must be a number, got {amount}"
                raise columns.FeatureInputError(msg)
            card = card if card is not None else CardState()
            added = card.add(
                time_ms=time_ms,
                trans_id=trans_id,
                amount=amount,
                merchant=codes[0],
                category=codes[1],
                label=label,
                label_time_ms=label_time_ms,
            )
            if added:
                now = self.clock.prune_reference(card.times[-1])
                card.prune(horizon_ms=self._horizon_ms, now_ms=now)
                new_card = card
            elif label is not None:
                new_card = card  # a replay may carry the label
        if merchant_key is not None:
            merchant = merchant if merchant is not None else MerchantState()
            given = label if self._risk else None
            if merchant.add(
                time_ms=time_ms, trans_id=trans_id, label=given, label_time_ms=label_time_ms
            ):
                now = self.clock.prune_reference(merchant.times[-1])
                merchant.prune(horizon_ms=self._horizon_ms, now_ms=now)
                new_merchant = merchant
            elif given is not None:
                new_merchant = merchant  # a replay may carry the label
        return new_card, new_merchant

    @staticmethod
    def _code(tx: Transaction, column: str | None) -> int:
        """The value code of a merchant or category column (0: missing or not kept)."""
        return value_code(_key(tx.get(column))) if column is not None else 0


@dataclass(frozen=True, slots=True)
class KernelLayout:
    """What `compiled.state_features` computes for a spec: its arguments besides the state."""

    groups: npt.NDArray[np.bool_]  # see compiled.state_features
    label_lag_ms: int
    card_windows: IntArray = field(
        default_factory=lambda: np.array(list(CARD_WINDOWS.values()), dtype=np.int64)
    )
    merchant_windows: IntArray = field(
        default_factory=lambda: np.array(list(MERCHANT_WINDOWS.values()), dtype=np.int64)
    )

    @classmethod
    def of(cls, groups: Sequence[bool], *, label_lag_ms: int) -> Self:
        """The layout with these blocks switched on."""
        return cls(np.array(groups, dtype=np.bool_), label_lag_ms)


def kernel_features(
    kernel: "Callable[..., int]",
    row: FloatArray,
    at: int,
    *,
    time_ms: int,
    amount: float,
    codes: "_Codes",
    card: CardState | None,
    merchant: MerchantState | None,
    layout: KernelLayout,
) -> int:
    """`compiled.state_features` of a card's and a merchant's state (None: unknown) into
    row[at:]; where they end."""
    card = card if card is not None else _NO_CARD
    merchant = merchant if merchant is not None else _NO_MERCHANT
    end: int = kernel(
        row,
        at,
        time_ms,
        amount,
        codes[0],
        codes[1],
        card.times,
        card.amounts,
        card.sum1,
        card.sum2,
        card.merchants,
        card.categories,
        card.fraud_times,
        card.fraud_known,
        card.hour_cos,
        card.hour_sin,
        merchant.times,
        merchant.fraud_times,
        merchant.fraud_known,
        layout.card_windows,
        layout.merchant_windows,
        layout.groups,
        layout.label_lag_ms,
        CARD_HISTORY_MS,
        _DAY_MS,
        _WEEK_MS,
        HOUR_COS,
        HOUR_SIN,
    )
    return end


@functools.cache
def state_kernel() -> "Callable[..., int] | None":
    """`compiled.state_features`, loaded (compiled the first time on a machine) and run once;
    None where numba cannot load it, and the engines compute the same in Python."""
    began = time.perf_counter()
    try:
        from fraudops.features import compiled  # noqa: PLC0415 - numba loads in a few 100 ms

        kernel: Callable[..., int] = compiled.state_features
        everything = KernelLayout.of([True] * 10, label_lag_ms=0)
        kernel_features(
            kernel,
            np.empty(64),
            0,
            time_ms=0,
            amount=0.0,
            codes=(0, 0),
            card=None,
            merchant=None,
            layout=everything,
        )
    except Exception as error:  # numba failing leaves the (identical) Python functions
        log.warning("compiled_features_unavailable", error=str(error), fallback="python")
        return None
    log.debug("compiled_features_loaded", seconds=round(time.perf_counter() - began, 3))
    return kernel


# How an engine computes the state features: numba kernel loaded now, loaded by a thread
# (Python until then), Python only. The values are the same, bit for bit.
FeatureKernel = Literal["compiled", "background", "python"]

# What an unknown card or merchant reads as (read only: the kernel never writes a state).
_NO_CARD = CardState()
_NO_MERCHANT = MerchantState()
_NO_FEATURES: FloatArray = np.empty(0)
_DAY_MS, _WEEK_MS = CARD_DIVERSITY_WINDOWS.values()


# A transaction's card and merchant keys (a plain tuple: a NamedTuple costs 0.2 us here).
_Keys = tuple[str | None, str | None]
# A labelled transaction's card and merchant keys, epoch-ms time and id.
LabelTarget = tuple[str | None, str | None, int, str]
# A transaction's merchant and category value codes.
_Codes = tuple[int, int]
# What the engine's state transitions return: the features read, the states to store.
_Transition = tuple[FloatArray, CardState | None, MerchantState | None]


def _key(value: object) -> str | None:
    """A card or merchant id as text; None when missing or blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _number(value: object) -> float:
    """A numeric field as float; NaN when missing or not a number."""
    if isinstance(value, float):
        return value
    if value is None:
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def datetime_ms(value: object) -> int | None:
    """Epoch milliseconds (UTC) of a date, date-time, ISO string or epoch-ms number."""
    if isinstance(value, str):
        value = _parse_iso(value)
    if isinstance(value, datetime):
        if pd.isna(value):
            return None
        return (utc_naive(value) - _EPOCH) // _ONE_MS
    if isinstance(value, date):
        return (value - _EPOCH.date()).days * MS_PER_DAY
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def _parse_iso(text: str) -> datetime | None:
    """An ISO 8601 date or date-time, None if unreadable."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def transaction_record(row: Mapping[str, Any], spec: FeatureSpec) -> dict[str, Any]:
    """One online transaction from a frame row or any mapping with the profile's columns.

    The time comes from `event_time_ms` if given, else from `event_time` (naive = UTC).
    """
    profile = spec.profile
    record = {column: row.get(column) for column in spec.input_columns}
    for column, value in record.items():
        if isinstance(value, float) and math.isnan(value):
            record[column] = None
    if profile.birth_date is not None:
        record[profile.birth_date] = datetime_ms(record[profile.birth_date])
    time_ms = row.get(EVENT_TIME_MS)
    record[EVENT_TIME_MS] = (
        int(time_ms) if time_ms is not None else datetime_ms(row.get("event_time"))
    )
    if record[EVENT_TIME_MS] is None:
        msg = "transaction has no event_time_ms or event_time"
        raise columns.FeatureInputError(msg)
    return record


def records_from_frame(frame: pd.DataFrame, spec: FeatureSpec) -> list[dict[str, Any]]:
    """Online transactions for every row of a loaded frame, read as the batch engine reads it."""
    profile = spec.profile
    fields: dict[str, list[Any]] = {
        profile.id_column: columns.transaction_ids(frame, profile.id_column).tolist()
    }
    numeric = [profile.amount, *profile.numeric]
    if profile.geo is not None:
        geo = profile.geo
        numeric += [geo.lat, geo.long, geo.merch_lat, geo.merch_long]
    for column in spec.input_columns:
        if column in fields:
            continue
        if column in numeric:
            # NaN -> None: records are JSON-ready and missing means the same either way.
            fields[column] = [
                None if math.isnan(v) else v for v in columns.numbers(frame, column).tolist()
            ]
        elif column == profile.birth_date:
            ms, known = columns.birth_times_ms(frame, column)
            fields[column] = [
                m if k else None for m, k in zip(ms.tolist(), known.tolist(), strict=True)
            ]
        else:
            text = columns.texts(frame, column)
            fields[column] = text.astype(object).where(text.notna(), None).tolist()
    fields[EVENT_TIME_MS] = columns.event_times_ms(frame).tolist()
    names = list(fields)
    return [dict(zip(names, values, strict=True)) for values in zip(*fields.values(), strict=True)]
