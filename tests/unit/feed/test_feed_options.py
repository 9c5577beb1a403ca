"""Feed option parsers: request rates and durations."""

import pytest

from fraudops.feed import RateLimit, parse_duration, parse_rate


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("5/minute", RateLimit(requests=5, period_s=60.0)),
        ("10/second", RateLimit(requests=10, period_s=1.0)),
        ("100/hour", RateLimit(requests=100, period_s=3600.0)),
        ("3/min", RateLimit(requests=3, period_s=60.0)),
        (" 2 / s ", RateLimit(requests=2, period_s=1.0)),
        ("7/Minutes", RateLimit(requests=7, period_s=60.0)),
    ],
)
def test_parse_rate_reads_count_per_period(spec: str, expected: RateLimit) -> None:
    """N/second, N/minute and N/hour (and short forms) give N requests per that many seconds."""
    assert expected == parse_rate(spec)


@pytest.mark.parametrize("spec", ["", "5", "five/minute", "0/minute", "5/fortnight", "-1/s"])
def test_parse_rate_refuses_malformed_specs(spec: str) -> None:
    """A rate that is not a positive N per known period is refused with the spec quoted."""
    with pytest.raises(ValueError, match="invalid rate limit"):
        parse_rate(spec)


@pytest.mark.parametrize(
    ("spec", "seconds"),
    [
        ("3600", 3600.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("12h", 43200.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        ("1.5h", 5400.0),
        ("3 days", 259200.0),
        ("0", 0.0),
    ],
)
def test_parse_duration_reads_seconds_and_units(spec: str, seconds: float) -> None:
    """A bare number is seconds; s, m, h, d and w suffixes scale it."""
    assert seconds == parse_duration(spec)


@pytest.mark.parametrize("spec", ["", "-5", "7y", "d7", "1h30m"])
def test_parse_duration_refuses_malformed_specs(spec: str) -> None:
    """Negative, unit-less garbage and unknown units are refused."""
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(spec)
