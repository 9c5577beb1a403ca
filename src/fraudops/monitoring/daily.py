"""The daily operations report: what a fraud team reads every morning about one day.

One calendar day of event time (naive UTC, [D 00:00, D+1 00:00)): transactions and amount
scored, reviews and declines (the champion's decisions), frauds confirmed (current labels
saying fraud) and the amount they carried, the alerts (reviews and declines) that were worked
(carry a label of any source: analyst, chargeback, ...), how long they waited for it, the
alerts' precision with a Wilson interval, and the model versions that decided that day.

The wait for a label runs from the transaction's event time to the label's time, not from
`scored_at`: scoring happens within milliseconds of the event when serving live, but a
replay or a backfill scores on today's wall clock while its labels keep the data's own clock
(a chargeback arrives days after the purchase, not after the replay), so only the event time
is on the same clock as `label_time` in every case.
"""

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fraudops.monitoring.performance import DEFAULT_CONFIDENCE, Estimate, wilson_interval
from fraudops.storage.reports import DayTotals, LabelledAlert, ServedModel

DAY = timedelta(days=1)


class DailyReads(Protocol):
    """What the report reads from the warehouse (storage.reports)."""

    def day_totals(self, start: datetime, end: datetime) -> DayTotals:
        """Transactions, decisions and confirmed frauds of the window, with their amounts."""
        ...

    def labelled_alerts(self, start: datetime, end: datetime) -> list[LabelledAlert]:
        """The window's reviews and declines that carry a label."""
        ...

    def served_models(self, start: datetime, end: datetime) -> list[ServedModel]:
        """The champion versions that scored the window's transactions."""
        ...


@dataclass(frozen=True, kw_only=True)
class LabelWait:
    """Hours from an alert's event time to its label: median and 90th percentile."""

    labelled: int
    median_hours: float | None
    p90_hours: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "labelled": self.labelled,
            "median_hours": self.median_hours,
            "p90_hours": self.p90_hours,
        }


@dataclass(frozen=True, kw_only=True)
class DailyReport:
    """The daily operations report of one day."""

    day: date
    totals: DayTotals
    alerts: int  # reviews + declines
    alert_amount: float
    alerts_labelled: int
    labelled_by_source: dict[str, int]
    label_wait: LabelWait
    precision: Estimate  # labelled frauds among labelled alerts
    frauds_among_labelled_alerts: int
    models: list[ServedModel] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether no transaction of that day is stored."""
        return self.totals.transactions == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO strings, NaN as None)."""
        t = self.totals
        return {
            "day": self.day.isoformat(),
            "empty": self.empty,
            "transactions": t.transactions,
            "scored": {"count": t.scored, "amount": round(t.scored_amount, 2)},
            "reviews": {"count": t.reviews, "amount": round(t.review_amount, 2)},
            "declines": {"count": t.declines, "amount": round(t.decline_amount, 2)},
            "frauds_confirmed": {"count": t.frauds, "amount": round(t.fraud_amount, 2)},
            "alerts": {
                "count": self.alerts,
                "amount": round(self.alert_amount, 2),
                "labelled": self.alerts_labelled,
                "labelled_by_source": dict(self.labelled_by_source),
                "frauds": self.frauds_among_labelled_alerts,
                "time_to_label": self.label_wait.to_dict(),
                "precision": self.precision.to_dict(),
            },
            "models": [
                {
                    "model_name": m.model_name,
                    "model_version": m.model_version,
                    "scored": m.scored,
                    "first_scored_at": m.first_scored_at.isoformat(),
                    "last_scored_at": m.last_scored_at.isoformat(),
                }
                for m in self.models
            ],
        }


def report_day(text: str) -> date:
    """The day a YYYY-MM-DD text names, if a report can cover it; ValueError saying why not."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as error:
        msg = f"{text!r} is not a day (YYYY-MM-DD)"
        raise ValueError(msg) from error
    if day == date.max:  # the report reads up to the next midnight, which is no date
        msg = f"{text!r} is the last day a date can hold; the report needs the one after it"
        raise ValueError(msg)
    return day


def daily_report(
    reads: DailyReads, day: date, *, confidence: float = DEFAULT_CONFIDENCE
) -> DailyReport:
    """The report of `day` (event time, UTC) from what the warehouse holds now."""
    start = datetime(day.year, day.month, day.day)
    end = start + DAY
    totals = reads.day_totals(start, end)
    labelled = reads.labelled_alerts(start, end)
    by_source: dict[str, int] = {}
    for alert in labelled:
        by_source[alert.source] = by_source.get(alert.source, 0) + 1
    frauds = sum(alert.is_fraud for alert in labelled)
    low, high = wilson_interval(frauds, len(labelled), confidence=confidence)
    precision = Estimate(
        value=frauds / len(labelled) if labelled else float("nan"),
        low=low,
        high=high,
        confidence=confidence,
        method="wilson",
    )
    return DailyReport(
        day=day,
        totals=totals,
        alerts=totals.reviews + totals.declines,
        alert_amount=totals.review_amount + totals.decline_amount,
        alerts_labelled=len(labelled),
        labelled_by_source=dict(sorted(by_source.items(), key=lambda item: (-item[1], item[0]))),
        label_wait=label_wait(labelled),
        precision=precision,
        frauds_among_labelled_alerts=frauds,
        models=reads.served_models(start, end),
    )


def label_wait(alerts: list[LabelledAlert]) -> LabelWait:
    """Median and 90th percentile (linear interpolation) of the hours from event to label."""
    hours = sorted((a.label_time - a.event_time).total_seconds() / 3600 for a in alerts)
    if not hours:
        return LabelWait(labelled=0, median_hours=None, p90_hours=None)
    p90 = hours[0] if len(hours) == 1 else statistics.quantiles(hours, n=10, method="inclusive")[8]
    return LabelWait(labelled=len(hours), median_hours=statistics.median(hours), p90_hours=p90)


def render_daily(report: DailyReport) -> RenderableType:
    """A terminal view: a heading, the day's figures, and the models in service."""
    heading = Text.assemble(("Daily operations report ", "bold"), f"{report.day.isoformat()} UTC")
    if report.empty:
        return Group(heading, Text(f"No transaction is stored for {report.day.isoformat()}."))
    t = report.totals
    figures = Table(show_header=True)
    figures.add_column("figure")
    figures.add_column("count", justify="right")
    figures.add_column("amount", justify="right")
    figures.add_row("transactions scored", f"{t.scored:,}", f"{t.scored_amount:,.2f}")
    figures.add_row("reviews", f"{t.reviews:,}", f"{t.review_amount:,.2f}")
    figures.add_row("declines", f"{t.declines:,}", f"{t.decline_amount:,.2f}")
    figures.add_row("frauds confirmed", f"{t.frauds:,}", f"{t.fraud_amount:,.2f}")
    sources = ", ".join(f"{name} {count}" for name, count in report.labelled_by_source.items())
    figures.add_row(
        "alerts labelled",
        f"{report.alerts_labelled:,} of {report.alerts:,}",
        sources or "-",
    )
    wait = report.label_wait
    figures.add_row(
        "hours from alert to label",
        "-" if wait.median_hours is None else f"median {wait.median_hours:.1f}",
        "-" if wait.p90_hours is None else f"p90 {wait.p90_hours:.1f}",
    )
    figures.add_row("precision of alerts", _estimate_text(report.precision), "")
    models = Table(show_header=True, title="Models in service")
    for column in ("model", "version", "scored", "first", "last"):
        models.add_column(column, justify="right" if column == "scored" else "left")
    for m in report.models:
        models.add_row(
            m.model_name,
            m.model_version,
            f"{m.scored:,}",
            f"{m.first_scored_at:%Y-%m-%d %H:%M}",
            f"{m.last_scored_at:%Y-%m-%d %H:%M}",
        )
    return Group(heading, figures, models)


def _estimate_text(estimate: Estimate) -> str:
    """A proportion with its interval, or a dash when nothing was labelled."""
    shown = estimate.to_dict()
    if shown["value"] is None:
        return "-"
    return (
        f"{estimate.value:.1%} [{estimate.low:.1%}, {estimate.high:.1%}] "
        f"({estimate.confidence:.0%} Wilson)"
    )


def daily_text(report: DailyReport) -> str:
    """The report in plain text, one figure a line, as the daily e-mail carries it."""
    day = report.day.isoformat()
    if report.empty:
        return f"Daily operations report {day} (event time, UTC): no transaction is stored."
    t = report.totals
    wait = report.label_wait
    sources = ", ".join(f"{name} {count:,}" for name, count in report.labelled_by_source.items())
    lines = [
        f"Daily operations report {day} (event time, UTC)",
        "",
        f"Transactions scored:  {t.scored:,} ({t.scored_amount:,.2f})",
        f"Reviews:              {t.reviews:,} ({t.review_amount:,.2f})",
        f"Declines:             {t.declines:,} ({t.decline_amount:,.2f})",
        f"Frauds confirmed:     {t.frauds:,} ({t.fraud_amount:,.2f})",
        f"Alerts labelled:      {report.alerts_labelled:,} of {report.alerts:,}"
        + (f" ({sources})" if sources else ""),
        "Hours alert to label: "
        + (
            "-"
            if wait.median_hours is None or wait.p90_hours is None
            else f"median {wait.median_hours:.1f}, p90 {wait.p90_hours:.1f}"
        ),
        f"Precision of alerts:  {_estimate_text(report.precision)}",
        "",
        "Models in service:",
    ]
    lines += [
        f"- {m.model_name} v{m.model_version}: {m.scored:,} scored, "
        f"{m.first_scored_at:%Y-%m-%d %H:%M} to {m.last_scored_at:%Y-%m-%d %H:%M}"
        for m in report.models
    ] or ["- none"]
    return "\n".join(lines)
