"""Parsers for the feed's options: request rates ("5/minute") and durations ("7d", "12h")."""

import re
from dataclasses import dataclass

_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)

_PERIOD_SECONDS: dict[str, float] = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
}


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `requests` requests in any window of `period_s` seconds."""

    requests: int
    period_s: float

    def __post_init__(self) -> None:
        if self.requests < 1 or self.period_s <= 0:
            msg = f"a rate limit needs at least 1 request per positive period, got {self}"
            raise ValueError(msg)

    def __str__(self) -> str:
        return f"{self.requests} per {self.period_s:g} s"


def _unit_seconds(unit: str, *, spec: str, what: str) -> float:
    """Seconds in one named unit (s, min, hour, day, week; plural forms accepted)."""
    key = unit.lower()
    if key not in _PERIOD_SECONDS and key.endswith("s"):
        key = key[:-1]
    if key not in _PERIOD_SECONDS:
        msg = f"invalid {what} {spec!r}: unknown unit {unit!r} (use s, m, h, d or w)"
        raise ValueError(msg)
    return _PERIOD_SECONDS[key]


def parse_rate(spec: str) -> RateLimit:
    """Read a rate such as "5/minute", "10/second" or "100/hour" (also "5/min", "5/s")."""
    match = _RATE.match(spec)
    if match is None:
        msg = f"invalid rate limit {spec!r}: expected N/second, N/minute or N/hour"
        raise ValueError(msg)
    requests = int(match.group(1))
    if requests < 1:
        msg = f"invalid rate limit {spec!r}: the number of requests must be at least 1"
        raise ValueError(msg)
    period = _unit_seconds(match.group(2), spec=spec, what="rate limit")
    return RateLimit(requests=requests, period_s=period)


def parse_duration(spec: str) -> float:
    """Read a duration in seconds: a plain number of seconds, or "90s", "15m", "12h", "7d", "2w"."""
    match = _DURATION.match(spec)
    if match is None:
        msg = f"invalid duration {spec!r}: expected seconds or a number with s, m, h, d or w"
        raise ValueError(msg)
    amount = float(match.group(1))
    unit = match.group(2)
    return amount * (_unit_seconds(unit, spec=spec, what="duration") if unit else 1.0)
