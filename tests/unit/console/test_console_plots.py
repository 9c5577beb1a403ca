"""The monitoring page's plots on the smallest data: one day of alerts, one scored transaction."""

import re
from datetime import date

from fraudops.console.plots import alert_volume, score_histogram
from fraudops.storage.console import DayAlerts


def texts(svg: bytes) -> set[str]:
    """The text of every label in an SVG drawn by matplotlib (text kept as text)."""
    return set(re.findall(r"<text[^>]*>([^<]*)</text>", svg.decode()))


def test_one_day_of_alerts_is_a_bar_among_days_not_a_bar_filling_hours() -> None:
    """The day's bar stands between the days around it; the axis is ticked in whole days,
    counted in whole transactions."""
    svg = alert_volume([DayAlerts(day=date(2024, 3, 10), reviews=2, declines=1)])

    labels = texts(svg)
    assert {"09", "10", "11", "2024-Mar"} <= labels, sorted(labels)
    assert not any(re.fullmatch(r"\d\d:\d\d", label) for label in labels), sorted(labels)
    assert {"0", "1", "2", "3"} <= labels
    assert not any(re.fullmatch(r"\d\.\d", label) for label in labels), sorted(labels)


def test_a_lone_scored_transaction_is_counted_in_plain_numbers() -> None:
    """One transaction in one bin: the count axis reads 0, 1 and 10, with no powers of ten."""
    frauds, others = [0] * 20, [0] * 20
    frauds[17] = 1

    labels = texts(score_histogram(frauds, others))

    assert {"0", "1", "10"} <= labels, sorted(labels)
    powers = [label for label in labels if "10^" in label or "\N{MULTIPLICATION SIGN}" in label]
    assert not powers, sorted(labels)
