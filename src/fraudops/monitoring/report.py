"""A monitoring run for people: an HTML report (verdict first) and a terminal summary.

The HTML is rendered by jinja2 with autoescaping (feature names and reasons come from data)
and written atomically as `monitor-<as_of>.html` with a `latest.html` copy beside it; the
score distribution plot is a PNG in the same folder, referenced by its file name.
"""

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fraudops.monitoring.monitor import MonitorResult, budget_line

LATEST = "latest.html"
TOP_DRIFTED = 10
_STATUS_STYLE = {"retrain": "bold red", "ok": "bold green", "insufficient_evidence": "bold yellow"}
_STATUS_TEXT = {
    "retrain": "RETRAIN",
    "ok": "OK",
    "insufficient_evidence": "INSUFFICIENT EVIDENCE",
}
_REFERENCE_COLOUR = "#2e86c1"
_CURRENT_COLOUR = "#c0392b"

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>fraudops monitor: {{ r.model_name }} v{{ r.champion_version }} as of {{ as_of }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
.verdict { padding: 1em 1.5em; border-radius: 6px; color: #fff; }
.verdict h1 { margin: 0 0 .3em 0; }
.retrain { background: #c0392b; } .ok { background: #1e8449; }
.insufficient_evidence { background: #b7950b; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .3em .7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.drifted { background: #fdecea; font-weight: bold; }
.note { color: #555; }
</style>
</head>
<body>
<section class="verdict {{ v.status }}" id="verdict">
<h1>{{ status_text }}</h1>
{% if v.reasons %}<p>Reasons: {{ v.reasons | join(", ") }}</p>
{% else %}<p>No retraining reason found.</p>{% endif %}
{% if not v.enough_evidence %}<p>Performance could not be judged: {{ p.frauds }} frauds
in the labelled window, {{ p.min_frauds }} needed.</p>{% endif %}
</section>

<p>Champion <b>{{ r.model_name }} v{{ r.champion_version }}</b> (threshold {{ fmt(r.threshold) }}),
as of {{ as_of }} (event time){% if r.run_id is not none %}, run {{ r.run_id }}{% endif %}.</p>

<h2>Performance</h2>
<p class="note">Labelled window [{{ p.start }}, {{ p.end }}), labels known by as of:
{{ p.transactions }} transactions, {{ p.frauds }} frauds, {{ p.alerts }} alerts;
{{ r.excluded_labelled }} labelled transactions not scored by this champion left out.
{% if r.maturity is not none %}{{ r.immature }} younger transactions left out as immature
({{ r.maturity }}).{% endif %}
Intervals at {{ pct(confidence) }} confidence.</p>
<table id="performance">
<tr><th>metric</th><th>value</th><th>low</th><th>high</th><th>interval</th><th>floor</th></tr>
{% for name, e in estimates %}
<tr><td>{{ name }}</td><td>{{ fmt(e.value) }}</td><td>{{ fmt(e.low) }}</td>
<td>{{ fmt(e.high) }}</td><td>{{ e.method }}</td><td>{{ floor(name) }}</td></tr>
{% endfor %}
<tr><td>card precision@{{ p.k }}</td><td>{{ fmt(p.card_precision_at_k) }}</td>
<td colspan="3">best possible {{ fmt(p.card_precision_best_possible) }}</td><td></td></tr>
</table>

<h2>Drift</h2>
{% if d.skipped %}<p class="note">Not measured: {{ d.skipped }}.</p>
{% else %}
<p class="note">Window [{{ d.start }}, {{ d.end }}): {{ d.rows }} transactions scored by the
champion{% if d.other_version_rows %} ({{ d.other_version_rows }} scored by other versions
left out){% endif %}, against {{ d.reference_rows }} reference rows. A feature drifts when its
Benjamini-Hochberg adjusted p-value is below {{ r.policy.drift_alpha }} and its PSI at least
{{ r.policy.drift_min_psi }}.</p>
{% if d.score %}<p>Score distribution: PSI {{ fmt(d.score.psi) }}, KS p {{ sci(d.score.p_value) }}
- <b>{{ "drifted" if d.score.drifted else "stable" }}</b>.</p>{% endif %}
{% if plot %}<p><img src="{{ plot }}" alt="score distribution, reference against served"></p>
{% endif %}
<table id="drift">
<tr><th>feature</th><th>kind</th><th>test</th><th>statistic</th><th>p</th><th>adjusted p</th>
<th>PSI</th><th>drifted</th></tr>
{% for f in features %}
<tr class="{{ 'drifted' if f.drifted else 'stable' }}"><td>{{ f.feature }}</td><td>{{ f.kind }}</td>
<td>{{ f.test }}</td><td>{{ fmt(f.statistic) }}</td><td>{{ sci(f.p_value) }}</td>
<td>{{ sci(f.adjusted_p_value) }}</td><td>{{ fmt(f.psi) }}</td>
<td>{{ "yes" if f.drifted else "no" }}</td></tr>
{% endfor %}
</table>
{% if d.ignored %}<p class="note">Left out by the policy: {{ d.ignored | join(", ") }}.</p>
{% endif %}
{% endif %}

<h2>Alert budget</h2>
{% if b is none %}<p class="note">No review capacity set (FRAUDOPS_REVIEW_CAPACITY, or a
champion trained with --review-capacity): not checked.</p>
{% else %}
<p>{{ "%.1f" | format(b.alerts_per_day) }} alerts per day against a capacity of {{ b.capacity }}
(a day is over above {{ "%.1f" | format(b.limit) }}); {{ b.over_days }} latest day(s) over,
{{ b.required_days }} in a row trigger retraining.</p>
<table id="alert-budget">
<tr><th>day</th><th>alerts</th><th>over</th></tr>
{% for day, count in b.days %}<tr><td>{{ day }}</td><td>{{ count }}</td>
<td>{{ "yes" if count > b.limit else "no" }}</td></tr>
{% endfor %}
</table>
{% endif %}

<h2>Policy</h2>
<table id="policy">
{% for key, value in policy.items() %}<tr><td>{{ key }}</td><td>{{ value }}</td></tr>
{% endfor %}
</table>
</body>
</html>
"""


def _format(value: float | None) -> str:
    """A number in 4 decimals, or n/a."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _scientific(value: float | None) -> str:
    """A p-value in 2 significant digits, or n/a."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2g}"


def render_html(result: MonitorResult, *, plot: str | None = None) -> str:
    """The report's HTML; `plot` is the score plot's path relative to the report, if any."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    floors = result.verdict.detail.get("floors", {})

    def floor(metric: str) -> str:
        entry = floors.get(metric)
        return "" if not entry or entry["floor"] is None else _format(entry["floor"])

    return environment.from_string(_TEMPLATE).render(
        r=result,
        v=result.verdict,
        p=result.performance,
        d=result.drift,
        b=result.alert_budget,
        as_of=result.as_of.isoformat(sep=" "),
        status_text=_STATUS_TEXT[result.verdict.status],
        estimates=list(result.performance.estimates().items()),
        confidence=result.policy.confidence,
        features=result.drift.ranked(),
        policy=result.policy.model_dump(mode="json"),
        plot=plot,
        fmt=_format,
        sci=_scientific,
        pct=lambda share: f"{share:.0%}",
        floor=floor,
    )


def write_report(
    result: MonitorResult,
    directory: Path,
    *,
    reference_scores: npt.ArrayLike | None = None,
    current_scores: npt.ArrayLike | None = None,
) -> Path:
    """Write `monitor-<as_of>.html`, its score plot and a `latest.html` copy; the report path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = result.as_of.strftime("%Y%m%dT%H%M%S")
    plot = None
    if reference_scores is not None and current_scores is not None:
        plot_path = directory / f"monitor-{stamp}-scores.png"
        figure = score_distribution_figure(
            np.asarray(reference_scores, dtype=np.float64),
            np.asarray(current_scores, dtype=np.float64),
            threshold=result.threshold,
        )
        with _atomic(plot_path) as temporary:
            figure.savefig(temporary, format="png", dpi=100)
        plot = plot_path.name
    path = directory / f"monitor-{stamp}.html"
    html = render_html(result, plot=plot)
    for target in (path, directory / LATEST):
        with _atomic(target) as temporary:
            temporary.write_text(html, encoding="utf-8")
    return path


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` that replaces it once written (never half a file)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def score_distribution_figure(
    reference: npt.NDArray[np.float64], current: npt.NDArray[np.float64], *, threshold: float
) -> Figure:
    """Histograms (shares per bin, log scale) of the reference and served scores."""
    figure = Figure(figsize=(7.0, 4.0), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title("Score distribution: training reference against served")
    bins = [step / 40 for step in range(41)]
    for values, label, colour in (
        (reference, f"reference ({reference.size})", _REFERENCE_COLOUR),
        (current, f"served ({current.size})", _CURRENT_COLOUR),
    ):
        if values.size:
            weights = np.full(values.size, 1.0 / values.size)
            axes.hist(
                values, bins=bins, weights=weights, histtype="step", label=label, color=colour
            )
    axes.axvline(threshold, color="#555", linestyle="--", label=f"threshold {threshold:.3f}")
    axes.set(xlabel="fraud probability", ylabel="share of transactions", yscale="log")
    axes.legend()
    return figure


def render_monitor(result: MonitorResult) -> RenderableType:
    """The terminal summary the CLI prints: verdict, performance with intervals, top drift."""
    verdict = result.verdict
    headline = Text()
    headline.append(_STATUS_TEXT[verdict.status], style=_STATUS_STYLE[verdict.status])
    headline.append(
        f"  {result.model_name} v{result.champion_version} as of {result.as_of:%Y-%m-%d %H:%M}"
    )
    if verdict.reasons:
        headline.append(f"\nreasons: {', '.join(verdict.reasons)}")
    performance = result.performance
    table = Table(
        title=f"Performance on [{performance.start}, {performance.end}): "
        f"{performance.transactions} transactions, {performance.frauds} frauds "
        f"(at least {performance.min_frauds} needed)",
        title_justify="left",
    )
    for column in ("metric", "value", f"{result.policy.confidence:.0%} interval", "floor"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    floors: dict[str, Any] = verdict.detail.get("floors", {})
    for name, estimate in performance.estimates().items():
        floor = floors.get(name, {}).get("floor")
        table.add_row(
            name,
            _format(estimate.value),
            f"{_format(estimate.low)} - {_format(estimate.high)}",
            "" if floor is None else _format(floor),
        )
    table.add_row(
        f"card precision@{performance.k}", _format(performance.card_precision_at_k), "", ""
    )
    parts: list[RenderableType] = [headline, table, _drift_summary(result)]
    if result.alert_budget is not None:
        style = "bold red" if result.alert_budget.overrun else ""
        parts.append(Text(budget_line(result.alert_budget), style=style))
    return Group(*parts)


def _drift_summary(result: MonitorResult) -> RenderableType:
    """The drifted features (at most TOP_DRIFTED) and the score drift, or why there is none."""
    drift = result.drift
    if drift.skipped:
        return Text(f"drift not measured: {drift.skipped}", style="yellow")
    score = drift.score
    score_line = Text(
        "score distribution: "
        + ("n/a" if score is None else f"PSI {_format(score.psi)}, ")
        + ("" if score is None else ("drifted" if score.drifted else "stable"))
    )
    drifted = [d for d in drift.ranked() if d.drifted][:TOP_DRIFTED]
    if not drifted:
        return Group(Text(f"no feature drifted ({len(drift.features)} tested)"), score_line)
    table = Table(
        title=f"Drifted features ({len(drift.drifted)} of {len(drift.features)} tested)",
        title_justify="left",
    )
    for column in ("feature", "test", "adjusted p", "PSI"):
        table.add_column(column, justify="left" if column == "feature" else "right")
    for feature in drifted:
        table.add_row(
            feature.feature,
            feature.test,
            _scientific(feature.adjusted_p_value),
            _format(feature.psi),
        )
    return Group(table, score_line)
