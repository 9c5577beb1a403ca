"""Each card's spending habits, and the daily, weekly and seasonal rhythm of spending."""

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from fraudops.data.schema import SPARKOV_CATEGORIES
from fraudops.simulate.arrays import FloatArray, IntArray
from fraudops.simulate.catalogue import CATEGORY_PROFILES
from fraudops.simulate.population import CATEGORY_SHARE, N_CATEGORIES

MEAN_DAILY_TRANSACTIONS = 1.7
# Spread of a card's own typical amount around the category's (log scale).
CARD_AMOUNT_SIGMA = 0.35
CATEGORY_SIGMA = np.array([CATEGORY_PROFILES[c].sigma for c in SPARKOV_CATEGORIES])
CATEGORY_MEAN = np.array([CATEGORY_PROFILES[c].mean_amount for c in SPARKOV_CATEGORIES])
# Median of one purchase so that the population mean matches CATEGORY_MEAN.
CATEGORY_MEDIAN = CATEGORY_MEAN / np.exp((CATEGORY_SIGMA**2 + CARD_AMOUNT_SIGMA**2) / 2)
ONLINE = np.array([CATEGORY_PROFILES[c].online for c in SPARKOV_CATEGORIES])

# Relative activity by hour of day: quiet at night, peaks at lunch and early evening.
DAILY_RHYTHM = np.array(
    [0.25, 0.15, 0.10, 0.10, 0.15, 0.30, 0.60, 1.00, 1.30, 1.40, 1.50, 1.60,
     1.80, 1.70, 1.50, 1.50, 1.60, 1.80, 1.90, 1.80, 1.50, 1.10, 0.80, 0.50]
)  # fmt: skip
HOUR_CDF = np.append(np.cumsum(DAILY_RHYTHM[:-1]) / DAILY_RHYTHM.sum(), 1.0)
# Relative activity Monday..Sunday: more on weekends.
WEEKLY_RHYTHM = np.array([0.95, 0.90, 0.88, 0.92, 1.05, 1.25, 1.15])
HOLIDAY_BOOST = 1.25


@dataclass(frozen=True)
class Habits:
    """Per-card spending habits; arrays of shape (cards,) or (cards, categories)."""

    daily_rate: FloatArray
    category_weights: FloatArray
    amount_median: FloatArray
    preferred_hour: FloatArray
    routine: FloatArray
    favourite: FloatArray

    def usual_amount(self, card: IntArray, category: IntArray) -> FloatArray:
        """The card's mean purchase in the category: the baseline fraud amounts exceed."""
        return self.amount_median[card, category] * np.exp(CATEGORY_SIGMA[category] ** 2 / 2)


def generate_habits(rng: np.random.Generator, *, cards: int) -> Habits:
    """Draw each card's activity, category mix, amount levels, hours and favourite shops."""
    return Habits(
        daily_rate=rng.gamma(2.0, MEAN_DAILY_TRANSACTIONS / 2.0, cards),
        category_weights=rng.dirichlet(CATEGORY_SHARE * 8.0, size=cards),
        amount_median=CATEGORY_MEDIAN
        * np.exp(rng.normal(0.0, CARD_AMOUNT_SIGMA, (cards, N_CATEGORIES))),
        preferred_hour=np.clip(rng.normal(14.5, 3.0, cards), 7.0, 21.0),
        routine=rng.uniform(0.3, 0.7, cards),
        favourite=rng.random((cards, N_CATEGORIES)),
    )


def day_weights(*, start: date, days: int) -> FloatArray:
    """Relative activity of each simulated day: weekly rhythm and a December holiday boost."""
    dates = [start + timedelta(days=d) for d in range(days)]
    weekly = WEEKLY_RHYTHM[[d.weekday() for d in dates]]
    holiday = np.array([HOLIDAY_BOOST if d.month == 12 and d.day <= 24 else 1.0 for d in dates])
    return np.asarray(weekly * holiday, dtype=np.float64)


def rhythm_hours(rng: np.random.Generator, count: int) -> IntArray:
    """Hours of day drawn from the population's daily rhythm."""
    return np.searchsorted(HOUR_CDF, rng.random(count), side="right").astype(np.int64)


def habitual_hours(rng: np.random.Generator, *, habits: Habits, card: IntArray) -> IntArray:
    """Hours of day for a card's purchases: its routine hour or the population rhythm."""
    around = np.rint(rng.normal(habits.preferred_hour[card], 2.5)).astype(np.int64) % 24
    routine = rng.random(card.shape[0]) < habits.routine[card]
    return np.where(routine, around, rhythm_hours(rng, card.shape[0]))
