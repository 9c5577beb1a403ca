"""Batch feature engine: point-in-time features of a whole frame at once, vectorised.

Each transaction sees only events strictly before it, and a label only once it is known
(features.labels: from its `label_time`, or `label_delay` after its transaction for a frame
without label times), exactly as the online engine does while replaying the frame in time
order. A frame without a label column (scoring time) reads as having no known fraud, the
same as an online engine that has received no labels: merchant risk is then 0, or NaN
where the window is empty.
"""

import time

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from fraudops.features import columns
from fraudops.features.formulas import (
    FloatArray,
    IntArray,
    age_years_array,
    amount_vs_history_array,
    calendar_array,
    haversine_km_array,
    log_amount_array,
)
from fraudops.features.labels import LabelArrival, label_arrival
from fraudops.features.spec import CARD_WINDOWS, MERCHANT_WINDOWS, FeatureSpec
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
    if spec.has_card:
        _card_features(
            matrix,
            codes=group_codes(columns.texts(frame, profile.card_id)),
            times=times,
            amount=amount,
            ids=columns.transaction_ids(frame, profile.id_column),
        )
    if spec.has_merchant:
        _merchant_features(
            matrix,
            codes=group_codes(columns.texts(frame, profile.merchant_id)),
            times=times,
            labels=label_arrival(frame, profile, label_delay_ms=spec.label_delay_ms)
            if spec.has_merchant_risk
            else None,
            label_delay_ms=spec.label_delay_ms,
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


def _card_features(
    matrix: _FeatureMatrix,
    *,
    codes: IntArray,
    times: IntArray,
    amount: FloatArray,
    ids: "pd.Series[str]",
) -> None:
    """Per-card velocity over each window, amount against the card's history, recency."""
    card = GroupedTimes(codes, times, tie_ids=ids)
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
    label_delay_ms: int,
) -> None:
    """Per-merchant counts, and the fraud share over windows that end `label_delay` ago,
    of the frauds known by then."""
    merchant = GroupedTimes(codes, times, tie_ids=None)
    rows = merchant.order
    hi = merchant.first_at_or_after(merchant.times)
    for name, width in MERCHANT_WINDOWS.items():
        matrix.put(
            f"merchant_count_{name}", hi - merchant.first_at_or_after(merchant.times - width), rows
        )
    if labels is None:
        return
    known_until = merchant.times - label_delay_ms
    known_hi = merchant.first_at_or_after(known_until)
    frauds = np.flatnonzero(labels.fraud[rows])  # sorted positions of frauds that arrive
    fraud_times = merchant.times[frauds]
    # A fraud at s, known at L, counts in the window of width W of each later event at t
    # with t - d - W <= s < t - d and L < t: t in (max(s + d, L), s + d + W].
    counted_after = np.maximum(fraud_times + label_delay_ms, labels.times_ms[rows][frauds])
    first = merchant.first_after(frauds, counted_after)
    for name, width in MERCHANT_WINDOWS.items():
        count = known_hi - merchant.first_at_or_after(known_until - width)
        last = merchant.first_after(frauds, fraud_times + label_delay_ms + width)
        known = merchant.count_covering(first, last)
        with np.errstate(invalid="ignore", divide="ignore"):
            risk = np.where(count > 0, known / count, np.nan)
        matrix.put(f"merchant_risk_{name}", risk, rows)


def _longest(windows: dict[str, int]) -> str:
    """Name of the widest window."""
    return max(windows, key=lambda name: windows[name])
