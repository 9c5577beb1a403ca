"""Vectorised window tools for the batch engine: grouped time search, sums and maxima.

Every operation works on all groups (cards, merchants) at once; the only Python loops run
over length classes and sparse-table levels, a few dozen iterations at most.
"""

from typing import Any

import numpy as np
import pandas as pd

from fraudops.features.formulas import FloatArray, IntArray

# Room left in int64 when group code and time are packed into one sort key.
_KEY_LIMIT = 2**62


def group_codes(keys: "pd.Series[Any]") -> IntArray:
    """Dense codes 0..k-1 for group keys; each missing key becomes a group of its own."""
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    missing = codes < 0
    if missing.any():
        codes[missing] = len(uniques) + np.arange(int(missing.sum()), dtype=np.int64)
    return codes


class GroupedTimes:
    """Events sorted by (group, time[, tie id]), searchable per group by time."""

    def __init__(
        self, codes: IntArray, times: IntArray, *, tie_ids: "pd.Series[str] | None"
    ) -> None:
        self._base = int(times.min()) if len(times) else 0
        self._last = int(times.max()) if len(times) else 0
        groups = int(codes.max()) + 1 if len(codes) else 1
        span = int(times.max()) - self._base + 1 if len(times) else 1
        self._distinct: IntArray | None = None
        if groups * span >= _KEY_LIMIT:
            # Too wide to pack: search on time ranks instead (same order, smaller numbers).
            self._distinct = np.unique(times)
            span = len(self._distinct) + 1
        self._span = span
        key = self._keys(codes, times)
        tie = _tie_ranks(key, tie_ids) if tie_ids is not None else None
        self.order: IntArray = (
            np.argsort(key, kind="stable") if tie is None else np.lexsort((tie, key))
        ).astype(np.int64)
        self._sorted_keys = key[self.order]
        self.codes: IntArray = codes[self.order]
        self.times: IntArray = times[self.order]
        self.lengths: IntArray = np.bincount(self.codes, minlength=groups).astype(np.int64)
        self.starts: IntArray = (np.cumsum(self.lengths) - self.lengths)[self.codes]

    def _keys(self, codes: IntArray, times: IntArray) -> IntArray:
        """Pack (group, time) into one monotone int64; times before the first event clip."""
        clipped = np.maximum(times, self._base)
        if self._distinct is None:
            offset = clipped - self._base
        else:
            offset = np.searchsorted(self._distinct, clipped, side="left").astype(np.int64)
        keys: IntArray = codes * self._span + offset
        return keys

    def first_at_or_after(self, times: IntArray) -> IntArray:
        """Per sorted event, the sorted position of its group's first event at or after `times`."""
        found = np.searchsorted(self._sorted_keys, self._keys(self.codes, times), side="left")
        return found.astype(np.int64)

    def first_after(self, positions: IntArray, times: IntArray) -> IntArray:
        """For the sorted events at `positions`, the sorted position of their group's first
        event strictly after `times` (the group's end if there is none)."""
        # Past the last event, every time reads as one after it: the group's end.
        bounded = np.minimum(times, self._last) + 1
        keys = self._keys(self.codes[positions], bounded)
        found = np.searchsorted(self._sorted_keys, keys, side="left")
        return found.astype(np.int64)

    def count_covering(self, first: IntArray, end: IntArray) -> IntArray:
        """Per sorted event, how many of the ranges [first, end) of sorted positions hold it."""
        steps = np.zeros(len(self.times) + 1, dtype=np.int64)
        np.add.at(steps, first, 1)
        np.add.at(steps, np.maximum(end, first), -1)
        counts: IntArray = np.cumsum(steps[:-1])
        return counts

    def before(self, inclusive: FloatArray, positions: IntArray) -> FloatArray:
        """Prefix value before `positions` within each group (0 at the group's start)."""
        previous = inclusive[np.maximum(positions - 1, 0)]
        return np.where(positions > self.starts, previous, 0.0)

    def sequential_cumsum(self, values: FloatArray) -> FloatArray:
        """Per-group running sums of sorted values, added one by one from each group's start.

        Row-wise cumsum of a padded grid is strictly sequential, so these are the very
        floats the online engine gets appending one event at a time. Groups are binned by
        length (powers of two) so padding at most doubles the memory.
        """
        out = np.empty(len(values))
        if not len(values):
            return out
        position = np.arange(len(values), dtype=np.int64) - self.starts
        length_class = np.frexp(self.lengths.astype(np.float64))[1]
        row_class = length_class[self.codes]
        for size in np.unique(length_class[self.lengths > 0]):
            groups = np.flatnonzero(length_class == size)
            groups = groups[self.lengths[groups] > 0]
            slot = np.zeros(len(self.lengths), dtype=np.int64)
            slot[groups] = np.arange(len(groups))
            rows = np.flatnonzero(row_class == size)
            grid = np.zeros((len(groups), int(self.lengths[groups].max())))
            cells = (slot[self.codes[rows]], position[rows])
            grid[cells] = values[rows]
            out[rows] = np.cumsum(grid, axis=1)[cells]
        return out


def _tie_ranks(key: IntArray, tie_ids: "pd.Series[str]") -> IntArray | None:
    """Rank of the id among events sharing a key (Python string order), None if none share."""
    shared = pd.Series(key).duplicated(keep=False).to_numpy(dtype=bool)
    if not shared.any():
        return None
    ranks = np.zeros(len(key), dtype=np.int64)
    tied = np.asarray(tie_ids.to_numpy(dtype=object)[shared], dtype=object)
    _, inverse = np.unique(tied, return_inverse=True)
    ranks[shared] = inverse.astype(np.int64)
    return ranks


class RangeMax:
    """Maximum over any range [lo, hi) of an array, by a sparse table of power-of-two spans."""

    def __init__(self, values: FloatArray, *, longest: int) -> None:
        self._levels = [values]
        span = 1
        while 2 * span <= longest:
            previous = self._levels[-1]
            self._levels.append(np.maximum(previous[:-span], previous[span:]))
            span *= 2

    def query(self, lo: IntArray, hi: IntArray) -> FloatArray:
        """Max of each range; NaN for an empty one."""
        length = hi - lo
        level = np.frexp(np.maximum(length, 1).astype(np.float64))[1] - 1
        out = np.full(len(lo), np.nan)
        for number, table in enumerate(self._levels):
            rows = np.flatnonzero((level == number) & (length > 0))
            if len(rows):
                first = table[lo[rows]]
                second = table[hi[rows] - (1 << number)]
                out[rows] = np.maximum(first, second)
        return out
