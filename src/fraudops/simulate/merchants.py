"""Merchants, local shops and chains, and how cards find one of a category in a city.

A local merchant has one shop in one city. A chain has an outlet in every city (at a fixed
spot near its centre), so every card has merchants of every category close to home however
few merchants there are; the outlet a purchase used is the city it happened in.
"""

from dataclasses import dataclass

import numpy as np

from fraudops.simulate.arrays import FloatArray, IntArray
from fraudops.simulate.catalogue import LAST_NAMES, MERCHANT_PATTERNS
from fraudops.simulate.population import (
    CATEGORY_SHARE,
    CITY_LAT,
    CITY_LONG,
    CITY_POPULATION,
    N_CATEGORIES,
    N_CITIES,
    Cardholders,
    StrArray,
)

CHAIN_SHARE = 0.4
SHOP_SPREAD_DEG = 0.12
# Where trips and remote fraudsters go: bigger places more often.
VISIT_WEIGHT = (
    CITY_POPULATION.astype(np.float64) ** 0.7 / (CITY_POPULATION.astype(np.float64) ** 0.7).sum()
)


@dataclass(frozen=True)
class Merchants:
    """One entry per merchant: Sparkov-style name, one category, local shop or chain."""

    name: StrArray
    category: IntArray
    city: IntArray
    lat: FloatArray
    long: FloatArray
    chain_rank: IntArray
    outlet_offset: FloatArray

    def __len__(self) -> int:
        """The number of merchants."""
        return int(self.category.shape[0])

    def location(self, merchant: IntArray, place: IntArray) -> tuple[FloatArray, FloatArray]:
        """Coordinates of the shop used: a local's own, or the chain's outlet in `place`."""
        rank = self.chain_rank[merchant]
        chain = rank >= 0
        offset = self.outlet_offset[np.where(chain, rank, 0), place]
        lat = np.where(chain, CITY_LAT[place] + offset[:, 0], self.lat[merchant])
        long = np.where(chain, CITY_LONG[place] + offset[:, 1], self.long[merchant])
        return np.round(lat, 6).astype(np.float64), np.round(long, 6).astype(np.float64)


def _merchant_names(rng: np.random.Generator, count: int) -> StrArray:
    """Unique names in the style of the Sparkov data, e.g. 'fraud_Kirlin and Sons'."""
    names: dict[str, None] = {}
    last = np.array(LAST_NAMES)
    while len(names) < count:
        batch = 2 * (count - len(names)) + 16
        pattern = rng.integers(0, len(MERCHANT_PATTERNS), batch)
        parts = last[rng.integers(0, len(last), size=(batch, 3))]
        for p, (a, b, c) in zip(pattern, parts, strict=True):
            names.setdefault("fraud_" + MERCHANT_PATTERNS[p].format(a=a, b=b, c=c))
    return np.array(list(names)[:count])


def generate_merchants(
    rng: np.random.Generator, *, count: int, cardholders: Cardholders
) -> Merchants:
    """Draw merchants: chains (one per category at least) and local shops where cards live."""
    category = np.concatenate(
        [
            rng.permutation(N_CATEGORIES),
            rng.choice(N_CATEGORIES, size=count - N_CATEGORIES, p=CATEGORY_SHARE),
        ]
    )
    chain = np.arange(count) < N_CATEGORIES
    chain[N_CATEGORIES:] = rng.random(count - N_CATEGORIES) < CHAIN_SHARE
    residents = np.bincount(cardholders.city, minlength=N_CITIES).astype(np.float64) ** 0.8
    city = rng.choice(N_CITIES, size=count, p=residents / residents.sum())
    rank = np.where(chain, np.cumsum(chain) - 1, -1)
    return Merchants(
        name=_merchant_names(rng, count),
        category=category.astype(np.int64),
        city=city.astype(np.int64),
        lat=np.round(CITY_LAT[city] + rng.normal(0.0, SHOP_SPREAD_DEG, count), 6),
        long=np.round(CITY_LONG[city] + rng.normal(0.0, SHOP_SPREAD_DEG, count), 6),
        chain_rank=rank.astype(np.int64),
        outlet_offset=rng.normal(0.0, SHOP_SPREAD_DEG, (int(chain.sum()), N_CITIES, 2)),
    )


class Marketplace:
    """The merchants of each category trading in each city, picked in one vectorised call."""

    def __init__(self, merchants: Merchants) -> None:
        """List, for every (city, category), its local shops followed by the category's chains."""
        self.merchants = merchants
        chains = merchants.chain_rank >= 0
        members: list[IntArray] = []
        for city in range(N_CITIES):
            for category in range(N_CATEGORIES):
                of_category = merchants.category == category
                local = np.flatnonzero(of_category & ~chains & (merchants.city == city))
                members.append(np.concatenate([local, np.flatnonzero(of_category & chains)]))
        self._count = np.array([m.shape[0] for m in members], dtype=np.int64)
        self._start = np.cumsum(self._count) - self._count
        self._members = np.concatenate(members).astype(np.int64)

    def pick(self, *, city: IntArray, category: IntArray, quantile: FloatArray) -> IntArray:
        """The merchant at `quantile` in [0, 1) of those of `category` trading in `city`."""
        bucket = city * N_CATEGORIES + category
        offset = (quantile * self._count[bucket]).astype(np.int64)
        return np.asarray(self._members[self._start[bucket] + offset], dtype=np.int64)

    def elsewhere(
        self, rng: np.random.Generator, *, category: IntArray
    ) -> tuple[IntArray, IntArray]:
        """Merchants of `category` in randomly visited cities, and those cities."""
        n = int(category.shape[0])
        city = rng.choice(N_CITIES, size=n, p=VISIT_WEIGHT).astype(np.int64)
        return self.pick(city=city, category=category, quantile=rng.random(n)), city
