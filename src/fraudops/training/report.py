"""A model's evaluation report as Markdown and as one self-contained HTML page.

The HTML carries its own style and links the plot PNGs relatively, so the folder can be
logged as an MLflow artifact or opened from disk as it is. Every value is escaped.
"""

import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from fraudops.training.metrics import EvaluationResult

ContextValue = str | float | int

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.8rem; text-align: left; }
td.value { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0 1rem 1rem 0; }
img { max-width: 28rem; }
"""


def format_value(value: ContextValue, *, money: bool = False) -> str:
    """A value as shown in reports: counts whole, money to cents, other numbers to 4 decimals."""
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "undefined"
    return f"{value:,.2f}" if money else f"{value:.4f}"


def _metric_rows(metrics: Mapping[str, float]) -> list[tuple[str, str]]:
    """Metric name and shown value; the cost metrics other than the ratio are money."""
    return [
        (name, format_value(value, money=name.startswith("cost_") and name != "cost_savings_ratio"))
        for name, value in metrics.items()
    ]


def write_report(
    *,
    out_dir: Path,
    title: str,
    evaluation: EvaluationResult,
    context: Mapping[str, ContextValue],
    plots: Mapping[str, Path],
) -> dict[str, Path]:
    """Write report.md and report.html into out_dir; returns them as "markdown" and "html"."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = evaluation.to_dict()
    images = {name: _relative_link(path, out_dir) for name, path in plots.items()}
    markdown = out_dir / "report.md"
    markdown.write_text(_markdown(title, metrics, evaluation, context, images), encoding="utf-8")
    page = out_dir / "report.html"
    page.write_text(_html(title, metrics, evaluation, context, images), encoding="utf-8")
    return {"markdown": markdown, "html": page}


def _relative_link(path: Path, out_dir: Path) -> str:
    """The plot's path relative to the report, as a URL path."""
    return quote(Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix())


def _card_rows(evaluation: EvaluationResult) -> list[tuple[str, str, str, str]]:
    """Per-day card precision rows: day, precision, compromised and detected cards."""
    cards = evaluation.card_precision
    if cards is None:
        return []
    return [
        (str(day), format_value(value), format_value(compromised), format_value(detected))
        for day, value, compromised, detected in zip(
            cards.days,
            cards.per_day,
            cards.compromised_cards_per_day,
            cards.detected_cards_per_day,
            strict=True,
        )
    ]


def _md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _markdown(
    title: str,
    metrics: Mapping[str, float],
    evaluation: EvaluationResult,
    context: Mapping[str, ContextValue],
    images: Mapping[str, str],
) -> str:
    """The report as Markdown."""
    lines = [f"# {_md_cell(title)}", ""]
    if context:
        lines += ["## Context", ""]
        lines += _md_table(
            ("item", "value"), [(key, format_value(value)) for key, value in context.items()]
        )
    lines += ["## Metrics", ""]
    lines += _md_table(("metric", "value"), _metric_rows(metrics))
    card_rows = _card_rows(evaluation)
    if card_rows and evaluation.card_precision is not None:
        lines += [f"## Card precision@{evaluation.card_precision.k} per day", ""]
        lines += _md_table(("day", "precision", "compromised cards", "detected cards"), card_rows)
    if images:
        lines += ["## Plots", ""]
        lines += [f"![{_md_cell(name)}]({link})" for name, link in images.items()]
        lines.append("")
    return "\n".join(lines)


def _html_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """An HTML table, every cell escaped and all but the first right-aligned."""
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr><td>"
        + html.escape(row[0])
        + "</td>"
        + "".join(f'<td class="value">{html.escape(cell)}</td>' for cell in row[1:])
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(
    title: str,
    metrics: Mapping[str, float],
    evaluation: EvaluationResult,
    context: Mapping[str, ContextValue],
    images: Mapping[str, str],
) -> str:
    """The report as one HTML page with inline style and relative image links."""
    safe_title = html.escape(title)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{safe_title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{safe_title}</h1>",
    ]
    if context:
        rows = [(key, format_value(value)) for key, value in context.items()]
        parts += ["<h2>Context</h2>", _html_table(("item", "value"), rows)]
    parts += ["<h2>Metrics</h2>", _html_table(("metric", "value"), _metric_rows(metrics))]
    card_rows = _card_rows(evaluation)
    if card_rows and evaluation.card_precision is not None:
        header = ("day", "precision", "compromised cards", "detected cards")
        parts += [
            f"<h2>Card precision@{evaluation.card_precision.k} per day</h2>",
            _html_table(header, card_rows),
        ]
    if images:
        parts.append("<h2>Plots</h2>")
        parts += [
            f'<figure><img src="{html.escape(link)}" alt="{html.escape(name)}">'
            f"<figcaption>{html.escape(name)}</figcaption></figure>"
            for name, link in images.items()
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
