"""write_report writes Markdown and HTML holding the metrics, context and plot links, escaped."""

from pathlib import Path

import numpy as np

from fraudops.training.metrics import evaluate
from fraudops.training.report import write_report

LABELS = np.array([0, 0, 1, 0, 1, 1, 0, 0])
SCORES = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.7, 0.2, 0.05])


def _write(
    tmp_path: Path, *, title: str = "Backtest", context: dict[str, str | float | int]
) -> dict[str, Path]:
    evaluation = evaluate(
        labels=LABELS,
        scores=SCORES,
        threshold=0.5,
        amounts=np.full(8, 10.0),
        days=[1, 1, 1, 1, 2, 2, 2, 2],
        cards=list("abcdaefg"),
        k=2,
    )
    plots = {"pr_curve": tmp_path / "pr_curve.png", "roc_curve": tmp_path / "roc_curve.png"}
    return write_report(
        out_dir=tmp_path, title=title, evaluation=evaluation, context=context, plots=plots
    )


def test_markdown_holds_metrics_context_and_image_links(tmp_path: Path) -> None:
    """AUC 0.8000, F1 0.6667, the model name and relative image links appear in report.md."""
    written = _write(tmp_path, context={"model": "xgboost", "delay_days": 7})
    text = written["markdown"].read_text()

    assert tmp_path / "report.md" == written["markdown"]
    assert "| roc_auc | 0.8000 |" in text
    assert "| f1 | 0.6667 |" in text
    assert "| card_precision_at_2 | 0.5000 |" in text
    assert "| delay_days | 7 |" in text
    assert "| model | xgboost |" in text
    assert "![pr_curve](pr_curve.png)" in text


def test_html_holds_metrics_and_relative_images(tmp_path: Path) -> None:
    """report.html has the metric rows and <img> tags pointing at the PNGs beside it."""
    written = _write(tmp_path, context={"data_fingerprint": "3fa9c0"})
    page = written["html"].read_text()

    assert '<td>roc_auc</td><td class="value">0.8000</td>' in page
    assert '<td>data_fingerprint</td><td class="value">3fa9c0</td>' in page
    assert '<img src="pr_curve.png" alt="pr_curve">' in page
    assert '<img src="roc_curve.png" alt="roc_curve">' in page


def test_html_escapes_title_and_context(tmp_path: Path) -> None:
    """Markup in the title or a context value is shown as text, never interpreted."""
    written = _write(
        tmp_path, title="<script>alert(1)</script>", context={"model": "a & b <i>x</i>"}
    )
    page = written["html"].read_text()

    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &amp; b &lt;i&gt;x&lt;/i&gt;" in page


def test_undefined_metrics_read_undefined(tmp_path: Path) -> None:
    """NaN metrics (AUC with one class) are written as "undefined", not "nan"."""
    evaluation = evaluate(labels=[0, 0], scores=[0.1, 0.9], threshold=0.5)
    written = write_report(out_dir=tmp_path, title="t", evaluation=evaluation, context={}, plots={})

    assert "| roc_auc | undefined |" in written["markdown"].read_text()


def test_cost_metrics_are_shown_as_money(tmp_path: Path) -> None:
    """Frauds of 10 each: baseline 30.00 and savings to cents, the ratio to 4 decimals."""
    text = _write(tmp_path, context={})["markdown"].read_text()

    assert "| cost_baseline | 30.00 |" in text
    assert "| cost_model | 25.00 |" in text
    assert "| cost_savings_ratio | 0.1667 |" in text
