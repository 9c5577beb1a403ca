"""Fraud scenarios with ground truth: card testing, compromised merchant, stolen credentials.

Each scenario adds fraud transactions on top of a card's own purchases and returns at most
`target` of them inside a time window. docs/simulator.md describes each one's signature.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fraudops.data.schema import SPARKOV_CATEGORIES
from fraudops.simulate.arrays import (
    SECONDS_PER_DAY,
    BoolArray,
    FloatArray,
    IntArray,
    TransactionArrays,
    cents,
    offsets_within_groups,
    sample_rows,
)
from fraudops.simulate.behaviour import Habits, rhythm_hours
from fraudops.simulate.catalogue import SCENARIOS
from fraudops.simulate.merchants import VISIT_WEIGHT, Marketplace
from fraudops.simulate.population import CITY_KM, N_CATEGORIES, N_CITIES, Cardholders

HOUR = 3_600


def _categories(*names: str) -> IntArray:
    """Category codes of the named Sparkov categories."""
    return np.array([SPARKOV_CATEGORIES.index(name) for name in names], dtype=np.int64)


# Card testing: small probes on online shops, mostly between 22:00 and 04:00.
TESTING_CATEGORIES = _categories("misc_net", "shopping_net", "grocery_net")
NIGHT_HOURS = np.array([22, 23, 0, 1, 2, 3])
NIGHT_SHARE = 0.8
# Compromised merchant: cloned cards are used mostly in shops near the victim's home.
CLONED_CATEGORIES = _categories(
    "shopping_pos", "grocery_pos", "gas_transport", "misc_pos", "shopping_net", "misc_net"
)
CLONED_WEIGHTS = np.array([0.3, 0.15, 0.15, 0.15, 0.15, 0.1])
MAX_BREACHES = 500
MIN_VICTIMS, MAX_VICTIMS = 3, 80
# Stolen credentials: spending far from home, favouring goods that resell or travel.
MIN_AWAY_KM = 500.0
_STOLEN_FAVOURITES = {
    "shopping_pos": 3.0, "shopping_net": 3.0, "misc_pos": 2.0, "travel": 2.0,
    "entertainment": 1.5, "gas_transport": 1.5, "grocery_pos": 1.5, "food_dining": 1.0,
}  # fmt: skip
STOLEN_CATEGORY_SHARE = np.array([_STOLEN_FAVOURITES.get(c, 0.5) for c in SPARKOV_CATEGORIES])
STOLEN_CATEGORY_SHARE /= STOLEN_CATEGORY_SHARE.sum()


@dataclass(frozen=True, kw_only=True)
class World:
    """The simulated population and its legitimate purchases, which fraud acts on."""

    cardholders: Cardholders
    habits: Habits
    market: Marketplace
    legit: TransactionArrays
    start: int
    end: int


class CardPool:
    """Hands out cards for fraud, each card at most once while unused cards remain."""

    def __init__(self, rng: np.random.Generator, cards: int) -> None:
        """Start with every card unused."""
        self._rng = rng
        self._used = np.zeros(cards, dtype=np.bool_)

    def is_free(self, cards: IntArray) -> BoolArray:
        """Whether each of `cards` is still untouched by any scenario."""
        return ~self._used[cards]

    def claim(self, cards: IntArray) -> None:
        """Mark cards as defrauded."""
        self._used[cards] = True

    def draw(self, count: int) -> IntArray:
        """`count` random unused cards; once all are used, cards are reused."""
        chosen = self._rng.permutation(np.flatnonzero(~self._used))[:count]
        if chosen.shape[0] < count:
            reused = self._rng.integers(0, self._used.shape[0], count - chosen.shape[0])
            chosen = np.concatenate([chosen, reused])
        self.claim(chosen)
        return chosen.astype(np.int64)


class ScenarioGenerator(Protocol):
    """Draws up to `target` fraud transactions of one scenario within `window` (seconds)."""

    def __call__(
        self,
        rng: np.random.Generator,
        *,
        world: World,
        pool: CardPool,
        target: int,
        window: tuple[int, int],
    ) -> TransactionArrays: ...


def _incidents_for(sizes: IntArray, target: int) -> int:
    """How many incidents of these sizes reach `target` transactions."""
    return min(int(np.searchsorted(np.cumsum(sizes), target)) + 1, int(sizes.shape[0]))


def _fraud(
    name: str,
    *,
    time: IntArray,
    card: IntArray,
    merchant: IntArray,
    place: IntArray,
    category: IntArray,
    amount: FloatArray,
) -> TransactionArrays:
    """Fraud transactions of scenario `name`, amounts rounded to the cent."""
    scenario = np.full(time.shape[0], SCENARIOS.index(name) + 1, dtype=np.int64)
    return TransactionArrays(
        time=time,
        card=card,
        merchant=merchant,
        place=place,
        category=category,
        amount=cents(amount),
        scenario=scenario,
    )


def card_testing(
    rng: np.random.Generator, *, world: World, pool: CardPool, target: int, window: tuple[int, int]
) -> TransactionArrays:
    """Bursts on one card: small online probes minutes apart, then a few large purchases."""
    if target <= 0:
        return TransactionArrays.empty()
    probes, large = rng.integers(3, 9, target), rng.integers(1, 4, target)
    k = _incidents_for(probes + large, target)
    probes, sizes = probes[:k], (probes + large)[:k]
    lo, hi = window
    night = rng.random(k) < NIGHT_SHARE
    hour = np.where(night, rng.choice(NIGHT_HOURS, k), rng.integers(0, 24, k))
    day = rng.integers(0, max(1, (hi - lo) // SECONDS_PER_DAY), k)
    begin = lo + day * SECONDS_PER_DAY + hour * HOUR + rng.integers(0, HOUR, k)
    begin = np.minimum(begin, hi - 4 * HOUR)
    incident = np.repeat(np.arange(k), sizes)
    n = incident.shape[0]
    position = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    probe = position < probes[incident]
    gap = np.where(probe, rng.integers(10, 240, n), rng.integers(30, 600, n))
    gap[position == probes[incident]] = rng.integers(120, 1_800, k)
    gap[position == 0] = 0
    category = np.where(
        probe,
        rng.choice(TESTING_CATEGORIES, n, p=[0.5, 0.3, 0.2]),
        rng.choice(TESTING_CATEGORIES, n, p=[0.3, 0.6, 0.1]),
    )
    big = np.clip(np.exp(rng.normal(np.log(500.0), 0.6, n)), 150.0, 3_000.0)
    merchant, place = world.market.elsewhere(rng, category=category)
    result = _fraud(
        "card_testing",
        time=begin[incident] + offsets_within_groups(gap, sizes),
        card=pool.draw(k)[incident],
        merchant=merchant,
        place=place,
        category=category,
        amount=np.where(probe, rng.uniform(1.0, 20.0, n), big),
    )
    return result.take(np.arange(min(n, target)))


class _OutletVisits:
    """Legitimate purchases grouped by outlet (merchant and city), each group in time order."""

    def __init__(self, legit: TransactionArrays, merchants: int) -> None:
        """Sort purchases by outlet then time, and count each outlet's purchases."""
        self.legit = legit
        key = legit.merchant * N_CITIES + legit.place
        self.order = np.lexsort((legit.time, key))
        self.bounds = np.searchsorted(key[self.order], np.arange(merchants * N_CITIES + 1))
        popularity = np.bincount(key, minlength=merchants * N_CITIES)
        self.outlets = np.flatnonzero(popularity)
        self.popularity = popularity[self.outlets].astype(np.float64)

    def visits(self, outlet: int, *, lo: int, hi: int) -> tuple[IntArray, IntArray]:
        """Cards that bought at `outlet` in [lo, hi) and the time of their first visit."""
        rows = self.order[self.bounds[outlet] : self.bounds[outlet + 1]]
        rows = rows[(self.legit.time[rows] >= lo) & (self.legit.time[rows] < hi)]
        cards, first = np.unique(self.legit.card[rows], return_index=True)
        return cards, self.legit.time[rows][first]


def _cloned_card_use(
    rng: np.random.Generator, *, world: World, cards: IntArray, visit: IntArray
) -> TransactionArrays:
    """Fraud on breached cards: 2-5 purchases near home, 1-10 days after the visit, 2-5x usual."""
    victims = int(cards.shape[0])
    sizes = rng.integers(2, 6, victims)
    victim = np.repeat(np.arange(victims), sizes)
    n = int(victim.shape[0])
    first_day = visit + (rng.uniform(1.0, 10.0, victims) * SECONDS_PER_DAY).astype(np.int64)
    first_day -= first_day % SECONDS_PER_DAY
    spread = rng.integers(1, 4, victims)[victim]
    day = first_day[victim] + (rng.random(n) * spread).astype(np.int64) * SECONDS_PER_DAY
    card = cards[victim]
    category = rng.choice(CLONED_CATEGORIES, n, p=CLONED_WEIGHTS)
    home = world.cardholders.city[card]
    return _fraud(
        "compromised_merchant",
        time=day + rhythm_hours(rng, n) * HOUR + rng.integers(0, HOUR, n),
        card=card,
        merchant=world.market.pick(city=home, category=category, quantile=rng.random(n)),
        place=home,
        category=category,
        amount=world.habits.usual_amount(card, category) * rng.uniform(2.0, 5.0, n),
    )


def compromised_merchant(
    rng: np.random.Generator, *, world: World, pool: CardPool, target: int, window: tuple[int, int]
) -> TransactionArrays:
    """A breached outlet: some cards that shopped there in a 14-28 day window get defrauded."""
    visits = _OutletVisits(world.legit, len(world.market.merchants))
    weights = visits.popularity.copy()
    lo, hi = window
    parts: list[TransactionArrays] = []
    produced = 0
    for _ in range(MAX_BREACHES):
        if produced >= target or weights.sum() <= 0:
            break
        chosen = int(rng.choice(weights.shape[0], p=weights / weights.sum()))
        weights[chosen] = 0.0
        length = int(rng.integers(14, 29)) * SECONDS_PER_DAY
        latest = max(0, (hi - lo - length) // SECONDS_PER_DAY)
        breach = lo + int(rng.integers(0, latest + 1)) * SECONDS_PER_DAY
        cards, visit = visits.visits(
            int(visits.outlets[chosen]), lo=breach, hi=min(breach + length, hi)
        )
        victim = pool.is_free(cards) & (rng.random(int(cards.shape[0])) < rng.uniform(0.2, 0.5))
        victim[np.flatnonzero(victim)[MAX_VICTIMS:]] = False
        if victim.sum() < MIN_VICTIMS:
            continue
        part = _cloned_card_use(rng, world=world, cards=cards[victim], visit=visit[victim])
        part = part.take(np.flatnonzero(part.time < hi)[: target - produced])
        pool.claim(np.unique(part.card))
        parts.append(part)
        produced += len(part)
    return TransactionArrays.concat(parts)


def stolen_credentials(
    rng: np.random.Generator, *, world: World, pool: CardPool, target: int, window: tuple[int, int]
) -> TransactionArrays:
    """A card used in a far city, 3-10x its usual amounts, several times a day for 1-5 days."""
    if target <= 0:
        return TransactionArrays.empty()
    days = rng.integers(1, 6, target)
    per_day = np.where(np.arange(5) < days[:, None], rng.integers(2, 6, (target, 5)), 0)
    k = _incidents_for(per_day.sum(axis=1), target)
    days, per_day = days[:k], per_day[:k]
    cards = pool.draw(k)
    home = world.cardholders.city[cards]
    far = (CITY_KM[home] >= MIN_AWAY_KM) * VISIT_WEIGHT
    far[far.sum(axis=1) == 0] = VISIT_WEIGHT
    away = sample_rows(rng, weights=far, row=np.arange(k))
    lo, hi = window
    window_days = max(1, (hi - lo) // SECONDS_PER_DAY)
    first = (rng.random(k) * np.maximum(1, window_days - days + 1)).astype(np.int64)
    incident = np.repeat(np.arange(k), per_day.sum(axis=1))
    day = first[incident] + np.repeat(np.tile(np.arange(5), k), per_day.ravel())
    n = incident.shape[0]
    category = rng.choice(N_CATEGORIES, n, p=STOLEN_CATEGORY_SHARE)
    card = cards[incident]
    result = _fraud(
        "stolen_credentials",
        time=lo + day * SECONDS_PER_DAY + rhythm_hours(rng, n) * HOUR + rng.integers(0, HOUR, n),
        card=card,
        merchant=world.market.pick(city=away[incident], category=category, quantile=rng.random(n)),
        place=away[incident],
        category=category,
        amount=world.habits.usual_amount(card, category) * rng.uniform(3.0, 10.0, n),
    )
    return result.take(np.flatnonzero(result.time < hi)[:target])


GENERATORS: dict[str, ScenarioGenerator] = {
    "card_testing": card_testing,
    "compromised_merchant": compromised_merchant,
    "stolen_credentials": stolen_credentials,
}
