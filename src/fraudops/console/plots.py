"""The console's plots, drawn on the server as SVG: plain values in, an SVG document out.

SVG images carry no script and load as `<img>`, so the pages' policy forbids inline
scripts and nothing is fetched from elsewhere. Text is kept as text (smaller, searchable).
"""

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import matplotlib as mpl
import numpy as np
import numpy.typing as npt
from matplotlib import dates as mdates
from matplotlib import ticker as mticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fraudops.storage.console import CardPoint, DayAlerts

BLUE, RED, GREY = "#2e86c1", "#c0392b", "#7f8c8d"
# The narrowest time axis of a card's timeline: a card with one purchase (or a burst within
# minutes) gets the day it falls on, where matplotlib's default would span years.
MIN_SPAN_DAYS = 1.0


def performance_bands(
    moments: Sequence[datetime],
    series: Mapping[str, Sequence[tuple[float | None, float | None, float | None]]],
) -> bytes:
    """Metrics (value, low, high) at each monitoring run, with their confidence bands."""
    figure, axes = _figure("Champion performance at each monitoring run")
    for (name, values), colour in zip(series.items(), (BLUE, RED, GREY), strict=False):
        points = [(m, v) for m, v in zip(moments, values, strict=True) if v[0] is not None]
        if not points:
            continue
        axes.plot(
            _days([m for m, _ in points]),
            _values(v[0] for _, v in points),
            marker="o",
            markersize=3,
            color=colour,
            label=name,
        )
        banded = [(m, v) for m, v in points if v[1] is not None and v[2] is not None]
        if banded:
            axes.fill_between(
                _days([m for m, _ in banded]),
                _values(v[1] for _, v in banded),
                _values(v[2] for _, v in banded),
                color=colour,
                alpha=0.15,
                linewidth=0,
            )
    axes.set(ylim=(0.0, 1.02), ylabel="value (band: confidence interval)", xlabel="as of")
    if moments:
        axes.legend(loc="lower left")
        _dates(axes)
    else:
        _nothing(axes, "no monitoring run yet")
    return _svg(figure)


def alert_volume(days: Sequence[DayAlerts]) -> bytes:
    """Reviews and declines per event day, stacked."""
    figure, axes = _figure("Alerts per day")
    if days:
        x = [mdates.date2num(d.day) for d in days]  # type: ignore[no-untyped-call]
        reviews = [d.reviews for d in days]
        axes.bar(x, reviews, width=0.8, color=BLUE, label="review")
        axes.bar(
            x, [d.declines for d in days], width=0.8, bottom=reviews, color=RED, label="decline"
        )
        axes.xaxis_date()
        # Room on each side, ticked in days: one day's bar alone filled an axis of hours.
        axes.set_xlim(min(x) - 1.5, max(x) + 1.5)
        axes.yaxis.set_major_locator(mticker.MaxNLocator(integer=True))
        axes.legend(loc="upper left")
        _dates(axes, days_only=True)
    else:
        _nothing(axes, "no alert in this period")
    axes.set(ylabel="transactions", xlabel="event day")
    return _svg(figure)


def score_histogram(frauds: Sequence[int], others: Sequence[int]) -> bytes:
    """Champion scores in equal bins: transactions labelled fraud against the rest."""
    figure, axes = _figure("Score distribution")
    bins = len(frauds)
    lefts = [number / bins for number in range(bins)]
    if sum(frauds) + sum(others):
        axes.bar(lefts, others, width=1 / bins, align="edge", color=BLUE, label="not known fraud")
        axes.bar(
            lefts, frauds, width=1 / bins, align="edge", bottom=others, color=RED, label="fraud"
        )
        axes.set_yscale("symlog")
        # Counts as plain numbers, up to 10 at least: a lone small bar is not "1.05 x 10^0".
        axes.set_ylim(0.0, max(10.0, 1.5 * max(f + o for f, o in zip(frauds, others, strict=True))))
        axes.yaxis.set_major_formatter(mticker.FuncFormatter(_count_label))
        axes.legend(loc="upper center")
    else:
        _nothing(axes, "no scored transaction in this period")
    axes.set(xlim=(0.0, 1.0), xlabel="fraud probability", ylabel="transactions (log)")
    return _svg(figure)


def card_timeline(points: Sequence[CardPoint], *, current: str) -> bytes:
    """A card's recent amounts (stems, the case in red) and champion scores (dots)."""
    figure, axes = _figure("This card's recent transactions")
    if points:
        colours = [RED if p.trans_num == current else BLUE for p in points]
        days = _days([p.event_time for p in points])
        # Stems, not bars: a burst of purchases minutes apart stays readable at any span.
        axes.vlines(
            days,
            0.0,
            _values(p.amount for p in points),
            colors=colours,
            linewidth=3,
        )
        axes.set_ylim(bottom=0.0)
        axes.set_ylabel("amount (stems; this case in red)")
        scores = axes.twinx()
        scored = [p for p in points if p.fraud_probability is not None]
        scores.plot(
            _days([p.event_time for p in scored]),
            _values(p.fraud_probability for p in scored),
            linestyle="",
            marker="o",
            markersize=4,
            color=GREY,
        )
        scores.set(ylim=(0.0, 1.02), ylabel="fraud probability (dots)")
        if days.max() - days.min() < MIN_SPAN_DAYS:  # the calendar day (or two) they fall on
            first = np.floor(days.min())
            axes.set_xlim(first, max(first + MIN_SPAN_DAYS, np.ceil(days.max())))
        _dates(axes)
    else:
        _nothing(axes, "no history")
    return _svg(figure)


def _count_label(value: float, _position: int) -> str:
    """A count on an axis: digits with thousands separators."""
    return f"{value:,.0f}"


def _days(moments: Sequence[datetime]) -> npt.NDArray[np.float64]:
    """Moments as matplotlib's day numbers."""
    return np.asarray(mdates.date2num(list(moments)), dtype=np.float64)  # type: ignore[no-untyped-call]


def _values(values: Iterable[float | None]) -> npt.NDArray[np.float64]:
    """Values as floats, None as NaN (a gap)."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _figure(title: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(8.0, 3.2), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def _dates(axes: Axes, *, days_only: bool = False) -> None:
    """Date ticks at a spacing that suits the span; with days_only, three days (the least
    an alerts plot shows) are ticked in days rather than in hours."""
    locator = mdates.AutoDateLocator(minticks=3 if days_only else 5)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _nothing(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color=GREY)


def _svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "fraudops"}):
        figure.savefig(buffer, format="svg")
    return buffer.getvalue()
