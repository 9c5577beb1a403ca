"""Drift events that change the simulated distribution from a given day, and their parser.

Syntax of a spec: `KIND@DAY[:key=value,key=value]`, DAY a day offset from the start or an
ISO date. Kinds: `scenario@20:name=card_testing,rate=0.01` (extra fraud of one scenario, as
a fraction of transactions), `amount@30:factor=1.5[,category=travel]` (inflate amounts),
`category@30:shopping_net=3,grocery_pos=0.5` (multiply category weights).
"""

import itertools
import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from fraudops.data.schema import SPARKOV_CATEGORIES
from fraudops.simulate.arrays import FloatArray, IntArray
from fraudops.simulate.catalogue import SCENARIOS

DRIFT_KINDS: tuple[str, ...] = ("scenario", "amount", "category")


class DriftSpecError(ValueError):
    """A drift spec that cannot be parsed, naming the part that is wrong."""


def _day_offset(at: int | date, start: date) -> int:
    """Days from `start` to the event day, whether given as an offset or a date."""
    return at if isinstance(at, int) else (at - start).days


def _format_day(at: int | date) -> str:
    """The event day as written in a spec."""
    return str(at) if isinstance(at, int) else at.isoformat()


@dataclass(frozen=True, kw_only=True)
class ScenarioDrift:
    """From day `at`, add fraud of one scenario at `rate` of the transactions."""

    at: int | date
    scenario: str
    rate: float

    def __post_init__(self) -> None:
        """Reject unknown scenarios and rates outside (0, 0.5]."""
        if self.scenario not in SCENARIOS:
            msg = f"unknown scenario {self.scenario!r} (expected one of {', '.join(SCENARIOS)})"
            raise DriftSpecError(msg)
        if not 0.0 < self.rate <= 0.5:
            msg = f"scenario rate must be in (0, 0.5], got {self.rate}"
            raise DriftSpecError(msg)

    def day_offset(self, start: date) -> int:
        """The day, counted from the simulation start, the event takes effect."""
        return _day_offset(self.at, start)

    @property
    def spec(self) -> str:
        """The event in `--drift` syntax."""
        return f"scenario@{_format_day(self.at)}:name={self.scenario},rate={self.rate:g}"


@dataclass(frozen=True, kw_only=True)
class AmountDrift:
    """From day `at`, multiply amounts by `factor` (in one category, or all if None)."""

    at: int | date
    factor: float
    category: str | None = None

    def __post_init__(self) -> None:
        """Reject non-positive factors and unknown categories."""
        if not (math.isfinite(self.factor) and self.factor > 0.0):
            msg = f"amount factor must be a positive number, got {self.factor}"
            raise DriftSpecError(msg)
        if self.category is not None and self.category not in SPARKOV_CATEGORIES:
            msg = f"unknown category {self.category!r}"
            raise DriftSpecError(msg)

    def day_offset(self, start: date) -> int:
        """The day, counted from the simulation start, the event takes effect."""
        return _day_offset(self.at, start)

    @property
    def spec(self) -> str:
        """The event in `--drift` syntax."""
        scope = f",category={self.category}" if self.category is not None else ""
        return f"amount@{_format_day(self.at)}:factor={self.factor:g}{scope}"


@dataclass(frozen=True, kw_only=True)
class CategoryDrift:
    """From day `at`, multiply each named category's weight in every card's mix."""

    at: int | date
    factors: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        """Reject empty, unknown or non-positive category factors."""
        if not self.factors:
            msg = "category drift needs at least one CATEGORY=FACTOR"
            raise DriftSpecError(msg)
        for category, factor in self.factors:
            if category not in SPARKOV_CATEGORIES:
                known = ", ".join(SPARKOV_CATEGORIES)
                msg = f"unknown category {category!r} (expected one of {known})"
                raise DriftSpecError(msg)
            if not (math.isfinite(factor) and factor > 0.0):
                msg = f"category factor for {category} must be a positive number, got {factor}"
                raise DriftSpecError(msg)

    def day_offset(self, start: date) -> int:
        """The day, counted from the simulation start, the event takes effect."""
        return _day_offset(self.at, start)

    @property
    def spec(self) -> str:
        """The event in `--drift` syntax."""
        pairs = ",".join(f"{category}={factor:g}" for category, factor in self.factors)
        return f"category@{_format_day(self.at)}:{pairs}"


DriftEvent = ScenarioDrift | AmountDrift | CategoryDrift


def _parse_day(text: str) -> int | date:
    """A day offset (digits) or an ISO date."""
    if text.isdigit():
        return int(text)
    try:
        return date.fromisoformat(text)
    except ValueError:
        msg = f"day {text!r} is neither a day offset (0, 1, ...) nor an ISO date"
        raise DriftSpecError(msg) from None


class _Params:
    """The `key=value,...` part of a spec, read with errors that name the offending key."""

    def __init__(self, text: str) -> None:
        """Split into unique, non-empty key=value pairs."""
        self.values: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = (piece.strip() for piece in part.partition("="))
            if not sep or not key or not value:
                msg = f"parameter {part!r} is not key=value"
                raise DriftSpecError(msg)
            if key in self.values:
                msg = f"parameter {key!r} is given twice"
                raise DriftSpecError(msg)
            self.values[key] = value

    def only(self, *allowed: str) -> "_Params":
        """Refuse keys other than `allowed`."""
        unknown = sorted(set(self.values) - set(allowed))
        if unknown:
            msg = f"unknown parameter {unknown[0]!r} (expected {', '.join(sorted(allowed))})"
            raise DriftSpecError(msg)
        return self

    def text(self, key: str, hint: str = "") -> str:
        """The value of a required key."""
        if key not in self.values:
            msg = f"missing parameter {key}={hint}"
            raise DriftSpecError(msg)
        return self.values[key]

    def number(self, key: str) -> float:
        """The value of a required numeric key."""
        value = self.text(key)
        try:
            return float(value)
        except ValueError:
            msg = f"{key}={value!r} is not a number"
            raise DriftSpecError(msg) from None


def _event(kind: str, *, at: int | date, params: _Params) -> DriftEvent:
    """The drift event of one kind from its parameters."""
    if kind == "scenario":
        params.only("name", "rate")
        name = params.text("name", f" (one of {', '.join(SCENARIOS)})")
        return ScenarioDrift(at=at, scenario=name, rate=params.number("rate"))
    if kind == "amount":
        params.only("factor", "category")
        factor = params.number("factor")
        return AmountDrift(at=at, factor=factor, category=params.values.get("category"))
    return CategoryDrift(
        at=at, factors=tuple((name, params.number(name)) for name in params.values)
    )


def parse_drift(spec: str) -> DriftEvent:
    """Parse one `KIND@DAY[:key=value,...]` spec into a drift event, or say what is wrong."""
    head, _, tail = spec.strip().partition(":")
    kind, at_sign, day_text = (piece.strip() for piece in head.partition("@"))
    try:
        if not at_sign or not day_text:
            msg = "expected KIND@DAY[:key=value,...], e.g. amount@30:factor=1.5"
            raise DriftSpecError(msg)
        if kind not in DRIFT_KINDS:
            msg = f"unknown kind {kind!r} (expected {', '.join(DRIFT_KINDS)})"
            raise DriftSpecError(msg)
        return _event(kind, at=_parse_day(day_text), params=_Params(tail))
    except DriftSpecError as exc:
        msg = f"drift {spec!r}: {exc}"
        raise DriftSpecError(msg) from None


def category_periods(
    events: tuple[DriftEvent, ...], *, start: date, days: int
) -> list[tuple[int, int, FloatArray]]:
    """Split the days into periods of constant category multipliers (compounded by event)."""
    changes = sorted(
        (event.day_offset(start), event) for event in events if isinstance(event, CategoryDrift)
    )
    bounds = sorted({0, days, *(day for day, _ in changes)})
    periods: list[tuple[int, int, FloatArray]] = []
    for lo, hi in itertools.pairwise(bounds):
        multipliers = np.ones(len(SPARKOV_CATEGORIES))
        for day, event in changes:
            if day <= lo:
                for category, factor in event.factors:
                    multipliers[SPARKOV_CATEGORIES.index(category)] *= factor
        periods.append((lo, hi, multipliers))
    return periods


def amount_multipliers(
    events: tuple[DriftEvent, ...], *, start: date, day: IntArray, category: IntArray
) -> FloatArray:
    """Each transaction's amount multiplier from the amount drift in force on its day."""
    multiplier = np.ones(day.shape[0])
    for event in events:
        if not isinstance(event, AmountDrift):
            continue
        hit = day >= event.day_offset(start)
        if event.category is not None:
            hit &= category == SPARKOV_CATEGORIES.index(event.category)
        multiplier[hit] *= event.factor
    return multiplier
