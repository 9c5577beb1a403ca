"""Column arrays of simulated transactions, before they become a Sparkov frame."""

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, kw_only=True)
class TransactionArrays:
    """Parallel arrays, one entry per transaction; indices point into cards and merchants.

    `time` is naive local time in epoch seconds; `place` the city the purchase happened in
    (which outlet of a chain); `scenario` is 0 for legitimate transactions, else the 1-based
    position of the fraud scenario in SCENARIOS.
    """

    time: IntArray
    card: IntArray
    merchant: IntArray
    place: IntArray
    category: IntArray
    amount: FloatArray
    scenario: IntArray

    def __len__(self) -> int:
        """The number of transactions."""
        return int(self.time.shape[0])

    def take(self, index: IntArray | BoolArray) -> "TransactionArrays":
        """The transactions at `index` (positions or a mask), in that order."""
        return TransactionArrays(
            time=self.time[index],
            card=self.card[index],
            merchant=self.merchant[index],
            place=self.place[index],
            category=self.category[index],
            amount=self.amount[index],
            scenario=self.scenario[index],
        )

    @classmethod
    def empty(cls) -> "TransactionArrays":
        """No transactions."""
        no_ints = np.zeros(0, dtype=np.int64)
        return cls(
            time=no_ints,
            card=no_ints,
            merchant=no_ints,
            place=no_ints,
            category=no_ints,
            amount=np.zeros(0),
            scenario=no_ints,
        )

    @classmethod
    def concat(cls, parts: Sequence["TransactionArrays"]) -> "TransactionArrays":
        """All transactions of `parts`, one after the other."""
        if not parts:
            return cls.empty()
        return cls(
            time=np.concatenate([p.time for p in parts]),
            card=np.concatenate([p.card for p in parts]),
            merchant=np.concatenate([p.merchant for p in parts]),
            place=np.concatenate([p.place for p in parts]),
            category=np.concatenate([p.category for p in parts]),
            amount=np.concatenate([p.amount for p in parts]),
            scenario=np.concatenate([p.scenario for p in parts]),
        )


def offsets_within_groups(values: IntArray, sizes: IntArray) -> IntArray:
    """Running sums of `values` restarting at each group of consecutive `sizes` entries."""
    totals = np.cumsum(values)
    firsts = np.cumsum(sizes) - sizes
    before = np.where(firsts > 0, totals[np.maximum(firsts - 1, 0)], 0)
    return np.asarray(totals - np.repeat(before, sizes), dtype=np.int64)


def cents(amounts: FloatArray) -> FloatArray:
    """Amounts rounded to the cent, never below one dollar."""
    return np.maximum(np.round(amounts, 2), 1.0)


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per named stage, so stages do not disturb each other."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),))
    )


def cumulative(weights: FloatArray) -> FloatArray:
    """Cumulative distribution along the last axis, ending at exactly 1."""
    cdf = np.cumsum(weights, axis=-1)
    cdf /= cdf[..., -1:]
    cdf[..., -1] = 1.0
    return cdf


def sample_rows(rng: np.random.Generator, *, weights: FloatArray, row: IntArray) -> IntArray:
    """For each entry of `row`, a column index drawn with that row's `weights` (rows x k)."""
    k = weights.shape[1]
    flat = (cumulative(weights) + np.arange(weights.shape[0])[:, None]).ravel()
    position = np.searchsorted(flat, row + rng.random(row.shape[0]), side="right")
    return np.asarray(position - row * k, dtype=np.int64)
