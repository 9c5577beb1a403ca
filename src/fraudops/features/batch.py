"""Batch feature engine: point-in-time features of a whole frame at once, vectorised.

Each transaction sees only events strictly before it, and a label only once it is known
(features.labels: from its `label_time`, or `label_delay` after its transaction for a frame
without label times), exactly as the online engine does while replaying the frame in time
order; label windows end the spec's label lag before it (`FeatureSpec.label_lag_ms`). A
frame without a label column (scoring time) reads as having no known fraud, the same as an
online engine that has received no labels: merchant risk is then 0, or NaN where the window
is empty.
"""

import time

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from fraudops.features import columns
from fraudops.features.formulas import (
    HOUR_COS,
    HOUR_SIN,
    FloatArray,
    IntArray,
    age_years_array,
    amount_ratio_array,
    amount_vs_history_array,
    calendar_array,
    haversine_km_array,
    hour_similarity_array,
    log_amount_array,
    value_codes,
)
from fraudops.features.labels import LabelArrival, label_arrival
from fraudops.features.spec import (
    CARD_DIVERSITY_WINDOWS,
    CARD_HISTORY_MS,
    CARD_WINDOWS,
    MERCHANT_WINDOWS,
    MS_PER_DAY,
    MS_PER_HOUR,
    FeatureSpec,
)
from fraudops.features.windows import GroupedTimes, RangeMax, group_codes

log = structlog.get_logger(__name__)

_HISTORY_WINDOW = "30d"


class _FeatureMatrix:
    """The output matrix, filled column by column in the spec's name order (checked)."""

    def __init__(self, rows: int, names: tuple[str, ...]) -> None:
        self.cells: FloatArray = np.empty((rows, len(names)))
        self._names = names
        self._next = 0

    def put(self, name: str, values: npt.NDArray[np.generic], rows: IntArray | None = None) -> None:
        """Write the next column; `rows` maps sorted positions back to frame rows."""
        if self._next >= len(self._names) or self._names[self._next] != name:
            expected = self._names[self._next] if self._next < len(self._names) else "nothing"
            msg = f"feature column {name!r} out of order (expected {expected!r})"
            raise RuntimeError(msg)
        target = slice(None) if rows is None else rows
        self.cells[target, self._next] = values
        self._next += 1

    def finish(self) -> FloatArray:
        """The filled matrix; every named column must have been written."""
        if self._next != len(self._names):
            msg = f"feature columns missing from {self._names[self._next]!r} on"
            raise RuntimeError(msg)
        return self.cells


def batch_features(frame: pd.DataFrame, spec: FeatureSpec) -> FloatArray:
    """Feature matrix (rows in the frame's order, columns in `spec.names` order)."""
    began = time.perf_counter()
    profile = spec.profile
    matrix = _FeatureMatrix(len(frame), spec.names)
    if len(frame) == 0:
        return matrix.cells
    times = columns.event_times_ms(frame)
    amount = columns.numbers(frame, profile.amount)
    _calendar_and_amount(matrix, times=times, amount=amount)
    card = (
        GroupedTimes(
            group_codes(columns.texts(frame, profile.card_id)),
            times,
            tie_ids=columns.transaction_ids(frame, profile.id_column),
        )
        if spec.has_card
        else None
    )
    if card is not None:
        _card_features(matrix, card=card, amount=amount)
    labels = (
        label_arrival(frame, profile, label_delay_ms=spec.label_delay_ms)
        if spec.has_merchant_risk or spec.has_card_fraud_history
        else None
    )
    if spec.has_merchant:
        _merchant_features(
            matrix,
            codes=group_codes(columns.texts(frame, profile.merchant_id)),
            times=times,
            labels=labels if spec.has_merchant_risk else None,
            lag_ms=spec.label_lag_ms,
        )
    if card is not None and spec.has_card_profile:
        _card_profile_features(
            matrix, spec=spec, frame=frame, card=card, amount=amount, labels=labels
        )
    if profile.geo is not None:
        geo = profile.geo
        distance = haversine_km_array(
            lat=columns.numbers(frame, geo.lat),
            long=columns.numbers(frame, geo.long),
            merch_lat=columns.numbers(frame, geo.merch_lat),
            merch_long=columns.numbers(frame, geo.merch_long),
        )
        matrix.put("home_merchant_km", distance)
    if profile.birth_date is not None:
        birth, known = columns.birth_times_ms(frame, profile.birth_date)
        matrix.put("age_years", age_years_array(times, birth, known=known))
    for column in profile.numeric:
        matrix.put(column, columns.numbers(frame, column))
    for column, vocabulary in spec.vocabularies.items():
        text = columns.texts(frame, column)
        codes = pd.Index(vocabulary, dtype="str").get_indexer(pd.Index(text))
        for number, value in enumerate(vocabulary):
            matrix.put(f"{column}={value}", codes == number)
    values = matrix.finish()
    log.debug(
        "batch features computed",
        rows=len(frame),
        features=values.shape[1],
        seconds=round(time.perf_counter() - began, 3),
    )
    return values


def batch_feature_frame(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The same features as a frame: named columns, the input frame's index."""
    return pd.DataFrame(batch_features(frame, spec), index=frame.index, columns=list(spec.names))


def _calendar_and_amount(matrix: _FeatureMatrix, *, times: IntArray, amount: FloatArray) -> None:
    """Amount, its log, and the calendar of the transaction time."""
    hour, weekday, night, weekend = calendar_array(times)
    matrix.put("amount", amount)
    matrix.put("log_amount", log_amount_array(amount))
    matrix.put("hour", hour)
    matrix.put("weekday", weekday)
    matrix.put("is_night", night)
    matrix.put("is_weekend", weekend)


def _card_features(matrix: _FeatureMatrix, *, card: GroupedTimes, amount: FloatArray) -> None:
    """Per-card velocity over each window, amount against the card's history, recency."""
    rows = card.order
    amounts = amount[rows]
    sum1 = card.sequential_cumsum(amounts)
    sum2 = card.sequential_cumsum(amounts * amounts)
    hi = card.first_at_or_after(card.times)
    lows = {
        name: card.first_at_or_after(card.times - width) for name, width in CARD_WINDOWS.items()
    }
    longest = int((hi - lows[_longest(CARD_WINDOWS)]).max())
    largest = RangeMax(amounts, longest=max(longest, 1))
    sum1_hi = card.before(sum1, hi)
    for name, lo in lows.items():
        count = hi - lo
        total = sum1_hi - card.before(sum1, lo)
        matrix.put(f"card_count_{name}", count, rows)
        matrix.put(f"card_amount_sum_{name}", total, rows)
        with np.errstate(invalid="ignore", divide="ignore"):
            matrix.put(f"card_amount_mean_{name}", np.where(count > 0, total / count, np.nan), rows)
        matrix.put(f"card_amount_max_{name}", largest.query(lo, hi), rows)
    lo = lows[_HISTORY_WINDOW]
    ratio, zscore = amount_vs_history_array(
        amount=amounts,
        count=hi - lo,
        s1=sum1_hi - card.before(sum1, lo),
        s2=card.before(sum2, hi) - card.before(sum2, lo),
    )
    matrix.put(f"card_amount_ratio_mean_{_HISTORY_WINDOW}", ratio, rows)
    matrix.put(f"card_amount_zscore_{_HISTORY_WINDOW}", zscore, rows)
    previous = card.times[np.maximum(hi - 1, 0)]
    since = np.where(hi > card.starts, (card.times - previous) / 1000, np.nan)
    matrix.put("card_seconds_since_previous", since, rows)


def _merchant_features(
    matrix: _FeatureMatrix,
    *,
    codes: IntArray,
    times: IntArray,
    labels: LabelArrival | None,
    lag_ms: int,
) -> None:
    """Per-merchant counts, and the fraud share over windows that end the label lag before
    each event, of the frauds whose label is known at the event."""
    merchant = GroupedTimes(codes, times, tie_ids=None)
    rows = merchant.order
    hi = merchant.first_at_or_after(merchant.times)
    for name, width in MERCHANT_WINDOWS.items():
        matrix.put(
            f"merchant_count_{name}", hi - merchant.first_at_or_after(merchant.times - width), rows
        )
    if labels is None:
        return
    known_until = merchant.times - lag_ms
    known_hi = merchant.first_at_or_after(known_until)
    frauds = np.flatnonzero(labels.fraud[rows])  # sorted positions of frauds that arrive
    fraud_times = merchant.times[frauds]
    # A fraud at s, known at L, counts in the window of width W of each later event at t
    # with t - g - W <= s < t - g (g the lag) and L < t: t in (max(s + g, L), s + g + W].
    counted_after = np.maximum(fraud_times + lag_ms, labels.times_ms[rows][frauds])
    first = merchant.first_after(frauds, counted_after)
    for name, width in MERCHANT_WINDOWS.items():
        count = known_hi - merchant.first_at_or_after(known_until - width)
        last = merchant.first_after(frauds, fraud_times + lag_ms + width)
        known = merchant.count_covering(first, last)
        with np.errstate(invalid="ignore", divide="ignore"):
            risk = np.where(count > 0, known / count, np.nan)
        matrix.put(f"merchant_risk_{name}", risk, rows)


def _card_profile_features(
    matrix: _FeatureMatrix,
    *,
    spec: FeatureSpec,
    frame: pd.DataFrame,
    card: GroupedTimes,
    amount: FloatArray,
    labels: LabelArrival | None,
) -> None:
    """The optional card-profile groups the spec has, as `state.card_profile_features`."""
    profile = spec.profile
    rows = card.order
    times = card.times
    hi = card.first_at_or_after(times)
    lo = card.first_at_or_after(times - CARD_HISTORY_MS)
    merchants = value_codes(columns.texts(frame, profile.merchant_id))[rows]
    categories = value_codes(columns.texts(frame, profile.category))[rows]
    if spec.has_card_fraud_history and labels is not None:
        known, since = _known_frauds(card, labels, lag_ms=spec.label_lag_ms)
        matrix.put("card_known_frauds_30d", known, rows)
        matrix.put("card_days_since_known_fraud", since, rows)
    if spec.has_card_merchant_novelty:
        novel = _no_purchase_at_merchant(card, merchants)
        matrix.put("card_new_merchant_30d", np.where(merchants != 0, novel, np.nan), rows)
    windows = {
        name: card.first_at_or_after(times - width)
        for name, width in CARD_DIVERSITY_WINDOWS.items()
    }
    for wanted, values, kind in (
        (spec.has_card_merchant_diversity, merchants, "merchants"),
        (spec.has_card_category_diversity, categories, "categories"),
    ):
        if wanted:
            following = _next_same(card, values)
            for name, start in windows.items():
                distinct = _distinct(values, following, lo=start, hi=hi)
                matrix.put(f"card_distinct_{kind}_{name}", distinct, rows)
    if spec.has_card_category_amount:
        count, total = _matching_sums(categories, amount[rows], lo=lo, hi=hi)
        ratio = amount_ratio_array(amount=amount[rows], count=count, total=total)
        matrix.put("card_category_amount_ratio_30d", ratio, rows)
    if spec.has_card_hour_profile:
        hour = (times // MS_PER_HOUR) % 24
        cos_sum = card.sequential_cumsum(HOUR_COS[hour])
        sin_sum = card.sequential_cumsum(HOUR_SIN[hour])
        similarity = hour_similarity_array(
            hour=hour,
            count=hi - lo,
            cos_sum=card.before(cos_sum, hi) - card.before(cos_sum, lo),
            sin_sum=card.before(sin_sum, hi) - card.before(sin_sum, lo),
        )
        matrix.put("card_hour_similarity_30d", similarity, rows)


def _known_frauds(
    card: GroupedTimes, labels: LabelArrival, *, lag_ms: int
) -> tuple[FloatArray, FloatArray]:
    """Per sorted event at t: the card's frauds in [t - g - 30 days, t - g) (g the label lag)
    whose label is known at t (the rule of merchant risk), and days since the latest of them."""
    rows = card.order
    frauds = np.flatnonzero(labels.fraud[rows])  # sorted positions of frauds that arrive
    fraud_times = card.times[frauds]
    # A fraud at s, known at L, counts for each later event of its card at t with
    # t - g - 30 days <= s < t - g and L < t: t in (max(s + g, L), s + g + 30 days].
    counted_after = np.maximum(fraud_times + lag_ms, labels.times_ms[rows][frauds])
    first = card.first_after(frauds, counted_after)
    end = card.first_after(frauds, fraud_times + lag_ms + CARD_HISTORY_MS)
    count = card.count_covering(first, end)
    latest = np.zeros(len(card.times), dtype=np.int64)
    # Frauds in sorted order: a card's later fraud overwrites an earlier one where both count.
    for fraud_time, start, stop in zip(
        fraud_times.tolist(), first.tolist(), end.tolist(), strict=True
    ):
        latest[start:stop] = fraud_time
    since = np.where(count > 0, (card.times - latest) / MS_PER_DAY, np.nan)
    return count.astype(np.float64), since


def _no_purchase_at_merchant(card: GroupedTimes, merchants: IntArray) -> FloatArray:
    """Per sorted event: 1 if its card bought nothing at its merchant in the history window."""
    merchant_codes, uniques = pd.factorize(merchants)
    pair = group_codes(pd.Series(card.codes * (len(uniques) + 1) + merchant_codes))
    pairs = GroupedTimes(pair, card.times, tie_ids=None)
    count = pairs.first_at_or_after(pairs.times) - pairs.first_at_or_after(
        pairs.times - CARD_HISTORY_MS
    )
    novel = np.empty(len(merchants))
    novel[pairs.order] = count == 0
    return novel


def _next_same(card: GroupedTimes, values: IntArray) -> IntArray:
    """Per sorted event, the position of its card's next event with the same value (or n)."""
    size = len(values)
    order = np.lexsort((np.arange(size), values, card.codes))
    same = (card.codes[order[1:]] == card.codes[order[:-1]]) & (
        values[order[1:]] == values[order[:-1]]
    )
    following = np.full(size, size, dtype=np.int64)
    following[order[:-1][same]] = order[1:][same]
    return following


def _distinct(values: IntArray, following: IntArray, *, lo: IntArray, hi: IntArray) -> IntArray:
    """Distinct non-missing values among each range [lo, hi) of sorted events.

    An event counts if the next one with its value is at or after `hi`. The loop runs over
    offsets into the ranges (as many as the longest range), on the ranges still that long.
    """
    distinct = np.zeros(len(lo), dtype=np.int64)
    span = hi - lo
    active = np.flatnonzero(span > 0)
    offset = 0
    while len(active):
        at = lo[active] + offset
        distinct[active] += (values[at] != 0) & (following[at] >= hi[active])
        offset += 1
        active = active[span[active] > offset]
    return distinct


def _matching_sums(
    values: IntArray, amounts: FloatArray, *, lo: IntArray, hi: IntArray
) -> tuple[IntArray, FloatArray]:
    """Count and sum of the amounts in [lo, hi) with the event's own (non-missing) value,
    added one by one in time order as the online engine adds them."""
    count = np.zeros(len(lo), dtype=np.int64)
    total = np.zeros(len(lo))
    span = hi - lo
    active = np.flatnonzero((span > 0) & (values != 0))
    offset = 0
    while len(active):
        at = lo[active] + offset
        match = values[at] == values[active]
        total[active] += np.where(match, amounts[at], 0.0)
        count[active] += match
        offset += 1
        active = active[span[active] > offset]
    return count, total


def _longest(windows: dict[str, int]) -> str:
    """Name of the widest window."""
    return max(windows, key=lambda name: windows[name])
