"""Feature values as short sentences a fraud reviewer reads at a glance.

`describe(feature, value)` covers every feature family of the spec (see features/spec.py);
an unknown name (or an infinite value) reads "name = value". A missing value (None or NaN)
says what it means for that feature, e.g. no earlier purchase on the card. Pure and
deterministic.
"""

import math
from collections.abc import Callable
from functools import lru_cache

from fraudops.features.spec import NIGHT_HOURS
from fraudops.storage.base import Reason

__all__ = ["TOPIC_SHARERS", "Reason", "describe", "topic"]

_Formatter = Callable[[str, float | None], str]

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_CATEGORICAL_SUBJECTS = {"category": "category", "gender": "cardholder gender"}
_TIMES = "\N{MULTIPLICATION SIGN}"
_SECONDS_PER_MINUTE = 60.0
_SECONDS_PER_HOUR = 3_600.0
_SECONDS_PER_DAY = 86_400.0
_LARGEST_LOG = math.log(1.7e308)  # expm1 of more overflows a float


# Features that say the same thing in other words: a list of reasons names each topic once
# ("purchase at 02:00 (night)" and "purchase at night" would otherwise stand together).
_TOPICS = {
    "hour": "time of day",
    "is_night": "time of day",
    "weekday": "day of the week",
    "is_weekend": "day of the week",
    "amount": "amount",
    "log_amount": "amount",
}
TOPIC_SHARERS = len(_TOPICS) - len(set(_TOPICS.values()))
"""How many features at most a list of reasons skips for a topic already named."""


def topic(feature: str) -> str:
    """What a feature's reason is about: shared by features that say the same thing."""
    return _TOPICS.get(feature, feature)


def describe(feature: str, value: float | None) -> str:
    """A feature and value in words: "6 earlier purchases on this card in the last hour"."""
    if value is not None and math.isnan(value):
        value = None
    if value is not None and math.isinf(value):
        return _unknown(feature, value)
    formatter, argument = _formatter(feature)
    return formatter(argument, value)


@lru_cache(maxsize=4096)
def _formatter(feature: str) -> tuple[_Formatter, str]:
    """The sentence maker of a feature's family and its argument (window, column=value, name)."""
    if feature in _EXACT:
        return _EXACT[feature], feature
    for prefix, formatter in _WINDOWED:
        window = feature.removeprefix(prefix)
        if window != feature and _window(window) is not None:
            return formatter, window
    if "=" in feature:
        return _one_hot, feature
    return _unknown, feature


def _window(window: str) -> tuple[int, str] | None:
    """A window name ("1h", "30d") as its length and unit, None if it is not one."""
    number, unit = window[:-1], window[-1:]
    if not number.isdigit() or unit not in ("h", "d") or int(number) == 0:
        return None
    return int(number), unit


def _last(window: str) -> str:
    """ "the last hour", "the last 24 hours", "the last 7 days"."""
    number, unit = _window(window) or (0, "d")
    if unit == "h":
        return "the last hour" if number == 1 else f"the last {number} hours"
    return "the last 24 hours" if number == 1 else f"the last {number} days"


def _span(window: str) -> str:
    """ "1-hour", "1-day", "30-day": the window as an adjective."""
    number, unit = _window(window) or (0, "d")
    return f"{number}-{'hour' if unit == 'h' else 'day'}"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _count(value: float) -> str:
    return f"{round(value):,}"


def _plural(value: float, word: str) -> str:
    """ "1 earlier purchase", "6 earlier purchases"."""
    return f"{_count(value)} earlier {word}{'' if round(value) == 1 else 's'}"


def _times(ratio: float) -> str:
    """A ratio as "8.2x" with the multiplication sign (no decimals from 10, two below 0.1)."""
    if ratio >= 10.0:
        return f"{ratio:,.0f}{_TIMES}"
    return f"{ratio:.2f}{_TIMES}" if ratio < 0.1 else f"{ratio:.1f}{_TIMES}"


def _percent(rate: float) -> str:
    """A rate as "18%", "2.5%" or "0.40%"."""
    percent = 100.0 * rate
    if percent == 0.0 or percent >= 10.0:
        return f"{percent:.0f}%"
    return f"{percent:.1f}%" if percent >= 1.0 else f"{percent:.2f}%"


def _duration(seconds: float) -> str:
    """A duration as "12 s", "14 min", "3.5 h" or "4 days"."""
    if seconds < 2 * _SECONDS_PER_MINUTE:
        return f"{seconds:.0f} s"
    if seconds < 2 * _SECONDS_PER_HOUR:
        return f"{seconds / _SECONDS_PER_MINUTE:.0f} min"
    if seconds < 2 * _SECONDS_PER_DAY:
        return f"{seconds / _SECONDS_PER_HOUR:.1f} h"
    return f"{seconds / _SECONDS_PER_DAY:,.0f} days"


def _number(value: float) -> str:
    return f"{value:g}"


def _amount(_: str, value: float | None) -> str:
    return "amount unknown" if value is None else f"amount {_money(value)}"


def _log_amount(feature: str, value: float | None) -> str:
    if value is not None and value > _LARGEST_LOG:
        return _unknown(feature, value)
    return _amount(feature, None if value is None else math.expm1(value))


def _hour(_: str, value: float | None) -> str:
    if value is None:
        return "time of day unknown"
    hour = int(value) % 24
    return f"purchase at {hour:02d}:00{' (night)' if hour in NIGHT_HOURS else ''}"


def _weekday(_: str, value: float | None) -> str:
    if value is None:
        return "day of the week unknown"
    return f"purchase on a {_WEEKDAYS[int(value) % 7]}"


def _is_night(_: str, value: float | None) -> str:
    if value is None:
        return "time of day unknown"
    if value >= 0.5:
        return "purchase at night (22:00 to 06:00)"
    return "purchase in the daytime (06:00 to 22:00)"


def _is_weekend(_: str, value: float | None) -> str:
    if value is None:
        return "day of the week unknown"
    return "purchase at the weekend" if value >= 0.5 else "purchase on a weekday"


def _card_count(window: str, value: float | None) -> str:
    if value is None or round(value) == 0:
        return f"no earlier purchase on this card in {_last(window)}"
    return f"{_plural(value, 'purchase')} on this card in {_last(window)}"


def _card_sum(window: str, value: float | None) -> str:
    if value is None or value == 0.0:
        return f"nothing spent on this card in {_last(window)}"
    return f"{_money(value)} spent on this card in {_last(window)}"


def _card_mean(window: str, value: float | None) -> str:
    if value is None:
        return f"no earlier purchase on this card in {_last(window)}"
    return f"this card's average purchase in {_last(window)}: {_money(value)}"


def _card_max(window: str, value: float | None) -> str:
    if value is None:
        return f"no earlier purchase on this card in {_last(window)}"
    return f"this card's largest purchase in {_last(window)}: {_money(value)}"


def _card_ratio(window: str, value: float | None) -> str:
    if value is None:
        return f"no purchase on this card in {_last(window)} to compare the amount with"
    return f"amount is {_times(value)} this card's {_span(window)} average"


def _card_zscore(window: str, value: float | None) -> str:
    if value is None:
        return f"too few purchases on this card in {_last(window)} to judge the amount"
    side = "above" if value >= 0.0 else "below"
    return (
        f"amount is {abs(value):.1f} standard deviations {side} this card's {_span(window)} average"
    )


def _seconds_since_previous(_: str, value: float | None) -> str:
    if value is None:
        return "first purchase seen on this card"
    return f"{_duration(value)} since this card's previous purchase"


def _merchant_count(window: str, value: float | None) -> str:
    if value is None or round(value) == 0:
        return f"no earlier purchase at this merchant in {_last(window)}"
    return f"{_plural(value, 'purchase')} at this merchant in {_last(window)}"


def _merchant_risk(window: str, value: float | None) -> str:
    over = _last(window).removeprefix("the last ")
    rate = "unknown (no labelled purchases)" if value is None else _percent(value)
    return f"merchant's fraud rate over {over} (with label delay): {rate}"


def _known_frauds(window: str, value: float | None) -> str:
    over = _last(window).removeprefix("the last ")
    if value is None or round(value) == 0:
        return f"no confirmed fraud on this card over {over} (with label delay)"
    frauds = f"{_count(value)} confirmed fraud{'' if round(value) == 1 else 's'}"
    return f"{frauds} on this card over {over} (with label delay)"


def _days_since_known_fraud(_: str, value: float | None) -> str:
    if value is None:
        return "no confirmed fraud known on this card"
    return f"{_duration(value * _SECONDS_PER_DAY)} since this card's last confirmed fraud"


def _new_merchant(window: str, value: float | None) -> str:
    if value is None:
        return "merchant unknown"
    if value >= 0.5:
        return f"first purchase of this card at this merchant in {_last(window)}"
    return f"this card bought at this merchant before in {_last(window)}"


def _distinct_merchants(window: str, value: float | None) -> str:
    count = 0.0 if value is None else value
    word = "merchant" if round(count) == 1 else "merchants"
    return f"this card used {_count(count)} {word} in {_last(window)}"


def _distinct_categories(window: str, value: float | None) -> str:
    count = 0.0 if value is None else value
    word = "category" if round(count) == 1 else "categories"
    return f"this card bought in {_count(count)} {word} in {_last(window)}"


def _category_amount_ratio(window: str, value: float | None) -> str:
    if value is None:
        return f"no purchase on this card in this category in {_last(window)} to compare with"
    return f"amount is {_times(value)} this card's {_span(window)} average in this category"


def _hour_similarity(window: str, value: float | None) -> str:
    if value is None:
        return f"no purchase on this card in {_last(window)} to compare the hour with"
    usual = "a usual" if value >= 0.5 else "an unusual"
    return f"{usual} hour for this card (similarity {value:.2f} over {_last(window)})"


def _home_merchant_km(_: str, value: float | None) -> str:
    if value is None:
        return "distance from the cardholder's home unknown"
    distance = f"{value:.1f}" if value < 10.0 else f"{value:,.0f}"
    return f"merchant {distance} km from the cardholder's home"


def _age_years(_: str, value: float | None) -> str:
    return "cardholder's age unknown" if value is None else f"cardholder aged {math.floor(value)}"


def _city_pop(_: str, value: float | None) -> str:
    if value is None:
        return "population of the cardholder's city unknown"
    return f"cardholder's city has {_count(value)} inhabitants"


def _one_hot(feature: str, value: float | None) -> str:
    column, _, category = feature.partition("=")
    subject = _CATEGORICAL_SUBJECTS.get(column, column)
    if value is not None and value >= 0.5:
        return f"{subject}: {category}"
    return f"{subject} not {category}"


def _unknown(feature: str, value: float | None) -> str:
    return f"{feature} = {'missing' if value is None else _number(value)}"


_EXACT: dict[str, _Formatter] = {
    "amount": _amount,
    "log_amount": _log_amount,
    "hour": _hour,
    "weekday": _weekday,
    "is_night": _is_night,
    "is_weekend": _is_weekend,
    "card_seconds_since_previous": _seconds_since_previous,
    "card_days_since_known_fraud": _days_since_known_fraud,
    "home_merchant_km": _home_merchant_km,
    "age_years": _age_years,
    "city_pop": _city_pop,
}
_WINDOWED: tuple[tuple[str, _Formatter], ...] = (
    ("card_count_", _card_count),
    ("card_amount_sum_", _card_sum),
    ("card_amount_mean_", _card_mean),
    ("card_amount_max_", _card_max),
    ("card_amount_ratio_mean_", _card_ratio),
    ("card_amount_zscore_", _card_zscore),
    ("merchant_count_", _merchant_count),
    ("merchant_risk_", _merchant_risk),
    ("card_known_frauds_", _known_frauds),
    ("card_new_merchant_", _new_merchant),
    ("card_distinct_merchants_", _distinct_merchants),
    ("card_distinct_categories_", _distinct_categories),
    ("card_category_amount_ratio_", _category_amount_ratio),
    ("card_hour_similarity_", _hour_similarity),
)
