"""Legitimate transactions: every card's purchases over the period, drawn as whole arrays."""

from datetime import date

import numpy as np

from fraudops.data.schema import SPARKOV_CATEGORIES
from fraudops.simulate.arrays import (
    SECONDS_PER_DAY,
    IntArray,
    TransactionArrays,
    cents,
    cumulative,
    sample_rows,
)
from fraudops.simulate.behaviour import CATEGORY_SIGMA, Habits, day_weights, habitual_hours
from fraudops.simulate.config import SimulationConfig
from fraudops.simulate.drift import category_periods
from fraudops.simulate.merchants import Marketplace
from fraudops.simulate.population import Cardholders

# Share of purchases at the card's favourite shop of the category rather than any nearby one.
LOYALTY = 0.7
# Share of purchases made away from home (trips), by category.
AWAY_SHARE = np.array([0.25 if c == "travel" else 0.02 for c in SPARKOV_CATEGORIES])


def epoch_seconds(day: date) -> int:
    """Midnight of `day` as naive epoch seconds."""
    return int(np.datetime64(day, "s").astype(np.int64))


def _categories(
    rng: np.random.Generator,
    *,
    config: SimulationConfig,
    habits: Habits,
    card: IntArray,
    day: IntArray,
) -> IntArray:
    """Each transaction's category from its card's mix, shifted by category drift."""
    category = np.empty(card.shape[0], dtype=np.int64)
    periods = category_periods(config.drift, start=config.start, days=config.days)
    for lo, hi, multipliers in periods:
        in_period = (day >= lo) & (day < hi)
        category[in_period] = sample_rows(
            rng, weights=habits.category_weights * multipliers, row=card[in_period]
        )
    return category


def generate_legitimate(
    rng: np.random.Generator,
    *,
    config: SimulationConfig,
    cardholders: Cardholders,
    habits: Habits,
    market: Marketplace,
) -> TransactionArrays:
    """Every card's ordinary purchases: counts, days, categories, shops, amounts and times."""
    weights = day_weights(start=config.start, days=config.days)
    counts = rng.poisson(habits.daily_rate * weights.sum())
    card = np.repeat(np.arange(len(cardholders), dtype=np.int64), counts)
    n = card.shape[0]
    day = np.searchsorted(cumulative(weights), rng.random(n), side="right").astype(np.int64)
    category = _categories(rng, config=config, habits=habits, card=card, day=day)
    quantile = np.where(rng.random(n) < LOYALTY, habits.favourite[card, category], rng.random(n))
    place = cardholders.city[card]
    merchant = market.pick(city=place, category=category, quantile=quantile)
    away = np.flatnonzero(rng.random(n) < AWAY_SHARE[category])
    merchant[away], place[away] = market.elsewhere(rng, category=category[away])
    noise = np.exp(rng.normal(0.0, CATEGORY_SIGMA[category]))
    hour = habitual_hours(rng, habits=habits, card=card)
    seconds = day * SECONDS_PER_DAY + hour * 3_600 + rng.integers(0, 3_600, n)
    return TransactionArrays(
        time=epoch_seconds(config.start) + seconds,
        card=card,
        merchant=merchant,
        place=place,
        category=category,
        amount=cents(habits.amount_median[card, category] * noise),
        scenario=np.zeros(n, dtype=np.int64),
    )
