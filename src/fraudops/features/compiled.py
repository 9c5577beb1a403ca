"""The state-derived online features compiled with numba: one call per transaction.

The same computation as `state.card_window_features`, `merchant_counts`, `merchant_risk`
and `card_profile_features`, step for step, so the values are bit-identical: the same
bisections, the same sums in the same order (the category total is added one amount after
the other from 0.0, as `functools.reduce` adds it), the same divisions of an int by an int
(both exact as doubles, so the quotient rounds as Python's does). No fastmath.

The kernel reads a state's columns where they lie, as `array.array` objects (CardState and
MerchantState keep them so, in memory as in Redis): no copy, no list walked in Python. A
card or merchant that is unknown is read as an empty state, which is what the Python
functions make of None.

Compiled functions are cached on disk (`cache=True`), as `fraudops.scoring.compiled`'s.
This module imports numba, so `online` imports it only when an engine is made.
"""

import math
from typing import Any

import numba
import numpy as np

from fraudops.features.formulas import VARIANCE_FLOOR
from fraudops.features.spec import MS_PER_DAY, MS_PER_HOUR

__all__ = ["state_features"]


@numba.njit(cache=True, inline="always")
def _bisect_left(values: Any, target: int, lo: int, hi: int) -> int:
    """`bisect.bisect_left(values, target, lo, hi)`."""
    while lo < hi:
        middle = (lo + hi) // 2
        if values[middle] < target:
            lo = middle + 1
        else:
            hi = middle
    return lo


@numba.njit(cache=True)
def _distinct(codes: Any, lo: int, hi: int, scratch: Any) -> int:
    """Distinct non-zero value codes in codes[lo:hi] (`scratch` holds at least hi - lo)."""
    size = hi - lo
    for at in range(size):
        scratch[at] = codes[lo + at]
    ordered = np.sort(scratch[:size])
    distinct = 0
    for at in range(size):
        code = ordered[at]
        if code != 0 and (at == 0 or code != ordered[at - 1]):
            distinct += 1
    return distinct


@numba.njit(cache=True, error_model="numpy")
def state_features(  # noqa: PLR0917 - positional: the cheapest numba dispatch
    out: Any,
    at: int,
    time_ms: int,
    amount: float,
    merchant: int,
    category: int,
    card_times: Any,
    card_amounts: Any,
    card_sum1: Any,
    card_sum2: Any,
    card_merchants: Any,
    card_categories: Any,
    card_fraud_times: Any,
    card_fraud_known: Any,
    card_hour_cos: Any,
    card_hour_sin: Any,
    merchant_times: Any,
    merchant_fraud_times: Any,
    merchant_fraud_known: Any,
    card_windows: Any,
    merchant_windows: Any,
    groups: Any,
    label_lag_ms: int,
    history_ms: int,
    day_ms: int,
    week_ms: int,
    hour_cos: Any,
    hour_sin: Any,
) -> int:
    """Write the transaction's state features into out[at:]; where they end.

    `groups` says which blocks the spec has, in `spec.names` order: [0] card windows,
    [1] merchant counts, [2] merchant risk, [3] card profile, then the profile's own:
    [4] fraud history, [5] novelty, [6] merchant diversity, [7] category diversity,
    [8] category amount, [9] hour profile (see state.CardProfileLayout).
    """
    if groups[0]:
        at = _card_windows(
            out, at, time_ms, amount, card_times, card_amounts, card_sum1, card_sum2, card_windows
        )
    if groups[1]:
        hi = _bisect_left(merchant_times, time_ms, 0, len(merchant_times))
        for width in merchant_windows:
            out[at] = hi - _bisect_left(merchant_times, time_ms - width, 0, hi)
            at += 1
    if groups[2]:
        at = _merchant_risk(
            out,
            at,
            time_ms,
            label_lag_ms,
            merchant_times,
            merchant_fraud_times,
            merchant_fraud_known,
            merchant_windows,
        )
    if not groups[3]:
        return at
    hi = _bisect_left(card_times, time_ms, 0, len(card_times))
    lo = _bisect_left(card_times, time_ms - history_ms, 0, hi)
    if groups[4]:
        at = _known_frauds(
            out, at, time_ms, label_lag_ms, history_ms, card_fraud_times, card_fraud_known
        )
    if groups[5]:
        out[at] = _new_merchant(card_merchants, lo, hi, merchant)
        at += 1
    if groups[6] or groups[7]:
        day = _bisect_left(card_times, time_ms - day_ms, 0, hi)
        week = _bisect_left(card_times, time_ms - week_ms, 0, hi)
        scratch = np.empty(hi - week, dtype=np.int64)
        if groups[6]:
            out[at] = _distinct(card_merchants, day, hi, scratch)
            out[at + 1] = _distinct(card_merchants, week, hi, scratch)
            at += 2
        if groups[7]:
            out[at] = _distinct(card_categories, day, hi, scratch)
            out[at + 1] = _distinct(card_categories, week, hi, scratch)
            at += 2
    if groups[8]:
        out[at] = _category_amount(card_categories, card_amounts, lo, hi, category, amount)
        at += 1
    if groups[9]:
        out[at] = _hour_similarity(
            card_hour_cos, card_hour_sin, lo, hi, time_ms, hour_cos, hour_sin
        )
        at += 1
    return at


@numba.njit(cache=True)
def _new_merchant(merchants: Any, lo: int, hi: int, merchant: int) -> float:
    """1.0 if the merchant code is not among merchants[lo:hi], 0.0 if it is; NaN if missing."""
    if merchant == 0:
        return math.nan
    for event in range(lo, hi):
        if merchants[event] == merchant:
            return 0.0
    return 1.0


@numba.njit(cache=True, error_model="numpy")
def _category_amount(  # noqa: PLR0917
    categories: Any, amounts: Any, lo: int, hi: int, category: int, amount: float
) -> float:
    """The amount against the mean of the card's amounts in the category, in [lo, hi): the
    total added one amount after the other from 0.0, as `functools.reduce` adds it."""
    count = 0
    total = 0.0
    if category != 0:
        for event in range(lo, hi):
            if categories[event] == category:
                count += 1
                total += amounts[event]
    if count == 0:
        return math.nan
    mean = total / count
    return amount / mean if mean != 0.0 else math.nan


@numba.njit(cache=True, error_model="numpy")
def _hour_similarity(  # noqa: PLR0917
    card_cos: Any, card_sin: Any, lo: int, hi: int, time_ms: int, hour_cos: Any, hour_sin: Any
) -> float:
    """`formulas.hour_similarity` of the transaction's hour and the card's in [lo, hi)."""
    count = hi - lo
    if count == 0:
        return math.nan
    hour = (time_ms // MS_PER_HOUR) % 24
    cos_sum = card_cos[hi] - card_cos[lo]
    sin_sum = card_sin[hi] - card_sin[lo]
    similarity: float = (hour_cos[hour] * cos_sum + hour_sin[hour] * sin_sum) / count
    return similarity


@numba.njit(cache=True, error_model="numpy")
def _card_windows(  # noqa: PLR0917
    out: Any,
    at: int,
    time_ms: int,
    amount: float,
    times: Any,
    amounts: Any,
    sum1: Any,
    sum2: Any,
    windows: Any,
) -> int:
    """`state.card_window_features` into out[at:]; where it ends."""
    nan = math.nan
    size = len(times)
    if size == 0:
        return _no_card_windows(out, at, len(windows))
    hi = _bisect_left(times, time_ms, 0, size)
    covered = hi
    largest = -math.inf
    lo = hi
    for width in windows:
        lo = _bisect_left(times, time_ms - width, 0, covered)
        if lo < covered:
            # max(): the first of equal values stays, as Python's max keeps it.
            widest = amounts[lo]
            for event in range(lo + 1, covered):
                if amounts[event] > widest:  # noqa: PLR1730 - max() as Python's, said here
                    widest = amounts[event]
            if widest > largest:  # noqa: PLR1730
                largest = widest
            covered = lo
        count = hi - lo
        total = sum1[hi] - sum1[lo]
        out[at] = count
        out[at + 1] = total
        if count:
            out[at + 2] = total / count
            out[at + 3] = largest
        else:
            out[at + 2] = nan
            out[at + 3] = nan
        at += 4
    count = hi - lo
    s1 = sum1[hi] - sum1[lo]
    s2 = sum2[hi] - sum2[lo]
    ratio = nan
    zscore = nan
    if count != 0:
        mean = s1 / count
        if mean != 0.0:
            ratio = amount / mean
        if count >= 2:
            variance = (s2 - s1 * s1 / count) / (count - 1)
            if not variance <= VARIANCE_FLOOR * (s2 / count):
                zscore = (amount - mean) / math.sqrt(variance)
    out[at] = ratio
    out[at + 1] = zscore
    out[at + 2] = (time_ms - times[hi - 1]) / 1000 if hi else nan
    return at + 3


@numba.njit(cache=True)
def _no_card_windows(out: Any, at: int, windows: int) -> int:
    """`state.card_window_features` of a card without events into out[at:]; where it ends."""
    for _ in range(windows):
        out[at] = 0.0
        out[at + 1] = 0.0
        out[at + 2] = math.nan
        out[at + 3] = math.nan
        at += 4
    out[at] = math.nan
    out[at + 1] = math.nan
    out[at + 2] = math.nan
    return at + 3


@numba.njit(cache=True, error_model="numpy")
def _merchant_risk(  # noqa: PLR0917
    out: Any,
    at: int,
    time_ms: int,
    lag_ms: int,
    times: Any,
    frauds: Any,
    known: Any,
    windows: Any,
) -> int:
    """`state.merchant_risk` into out[at:]; where it ends."""
    known_until = time_ms - lag_ms
    hi = _bisect_left(times, known_until, 0, len(times))
    fraud_hi = _bisect_left(frauds, known_until, 0, len(frauds))
    for width in windows:
        count = hi - _bisect_left(times, known_until - width, 0, hi)
        fraud_lo = _bisect_left(frauds, known_until - width, 0, fraud_hi)
        fraud = fraud_hi - fraud_lo
        for position in range(fraud_lo, fraud_hi):
            if not known[position] < time_ms:  # labels.label_known
                fraud -= 1
        out[at] = fraud / count if count else math.nan
        at += 1
    return at


@numba.njit(cache=True, error_model="numpy")
def _known_frauds(  # noqa: PLR0917
    out: Any, at: int, time_ms: int, lag_ms: int, history_ms: int, frauds: Any, known: Any
) -> int:
    """`state._known_frauds` into out[at:]; where it ends."""
    known_until = time_ms - lag_ms
    fraud_hi = _bisect_left(frauds, known_until, 0, len(frauds))
    fraud_lo = _bisect_left(frauds, known_until - history_ms, 0, fraud_hi)
    count = 0
    latest = -1
    found = False
    for fraud in range(fraud_hi - 1, fraud_lo - 1, -1):
        if known[fraud] < time_ms:  # labels.label_known
            count += 1
            if not found:
                latest = frauds[fraud]
                found = True
    if found:
        out[at] = count
        out[at + 1] = (time_ms - latest) / MS_PER_DAY
    else:
        out[at] = 0.0
        out[at + 1] = math.nan
    return at + 2
