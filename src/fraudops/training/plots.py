"""Evaluation plots written as PNG files for a model's report and its MLflow run.

Figures are built with `matplotlib.figure.Figure` and rendered by Agg directly: no pyplot,
so no global figure registry to close and no backend switched for the rest of the process.
"""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from fraudops.training.metrics import binary_labels, confusion, finite_values

TOP_FEATURES = 20
_DPI = 100
_FRAUD_COLOUR = "#c0392b"
_LEGIT_COLOUR = "#2e86c1"


def write_plots(
    *,
    out_dir: Path,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    threshold: float,
    feature_importance: Mapping[str, float] | None = None,
) -> dict[str, Path]:
    """Write the evaluation PNGs into out_dir; returns each file by its name without suffix.

    Curves that need both classes show a note instead when one class is missing.
    feature_importance.png is written only when importances are given.
    """
    truth = binary_labels(labels)
    values = finite_values(scores, name="scores", size=truth.size)
    if not truth.size:
        raise ValueError("no transactions to plot")
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "pr_curve": _pr_curve(truth, values, threshold),
        "roc_curve": _roc_curve(truth, values, threshold),
        "score_distribution": _score_distribution(truth, values, threshold),
        "confusion_matrix": _confusion_matrix(truth, values, threshold),
    }
    if feature_importance:
        figures["feature_importance"] = _feature_importance(feature_importance)
    written: dict[str, Path] = {}
    for name, figure in figures.items():
        path = out_dir / f"{name}.png"
        figure.savefig(path, format="png", dpi=_DPI)
        written[name] = path
    return written


def _new_axes(title: str, *, size: tuple[float, float] = (6.0, 4.5)) -> tuple[Figure, Axes]:
    """A figure with one titled axes, laid out without pyplot."""
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def _undefined(axes: Axes, why: str) -> None:
    """Say on the axes why the plot cannot be drawn."""
    axes.text(0.5, 0.5, why, ha="center", va="center", transform=axes.transAxes)


def _pr_curve(
    truth: npt.NDArray[np.bool_], values: npt.NDArray[np.float64], threshold: float
) -> Figure:
    """Precision against recall, with the operating point at the threshold."""
    figure, axes = _new_axes("Precision-recall curve")
    axes.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1.02))
    if not truth.any():
        _undefined(axes, "undefined: no fraud in the data")
        return figure
    precision, recall, _ = precision_recall_curve(truth, values)
    axes.plot(recall, precision, drawstyle="steps-post", color=_FRAUD_COLOUR)
    axes.axhline(truth.mean(), color="grey", linestyle=":", label="fraud rate")
    point = confusion(truth, values >= threshold)
    axes.plot(point.recall, point.precision, "ko", label=f"threshold {threshold:.3g}")
    axes.legend(loc="upper right")
    return figure


def _roc_curve(
    truth: npt.NDArray[np.bool_], values: npt.NDArray[np.float64], threshold: float
) -> Figure:
    """True against false positive rate, with the operating point at the threshold."""
    figure, axes = _new_axes("ROC curve")
    axes.set(xlabel="False positive rate", ylabel="True positive rate", xlim=(0, 1), ylim=(0, 1))
    if truth.all() or not truth.any():
        _undefined(axes, "undefined: only one class in the data")
        return figure
    false_rate, true_rate, _ = roc_curve(truth, values)
    axes.plot(false_rate, true_rate, color=_FRAUD_COLOUR)
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    point = confusion(truth, values >= threshold)
    legit = point.false_positives + point.true_negatives
    axes.plot(point.false_positives / legit, point.recall, "ko", label=f"threshold {threshold:.3g}")
    axes.legend(loc="lower right")
    return figure


def _score_distribution(
    truth: npt.NDArray[np.bool_], values: npt.NDArray[np.float64], threshold: float
) -> Figure:
    """Histograms of fraud and legitimate scores on a log count axis, and the threshold."""
    figure, axes = _new_axes("Score distribution")
    # Probabilities always share the bins of [0, 1], so reports compare at a glance.
    low, high = min(0.0, float(values.min())), max(1.0, float(values.max()))
    bins = np.linspace(low, high, 51).tolist()
    for mask, name, colour in (
        (~truth, "legitimate", _LEGIT_COLOUR),
        (truth, "fraud", _FRAUD_COLOUR),
    ):
        if mask.any():
            axes.hist(values[mask], bins=bins, alpha=0.6, color=colour, label=name)
    axes.set_yscale("log")
    axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    axes.set(xlabel="Score", ylabel="Transactions (log scale)")
    axes.legend(loc="upper center")
    return figure


def _confusion_matrix(
    truth: npt.NDArray[np.bool_], values: npt.NDArray[np.float64], threshold: float
) -> Figure:
    """The 2x2 counts at the threshold, rows actual and columns predicted."""
    figure, axes = _new_axes(f"Confusion matrix at threshold {threshold:.3g}", size=(5.0, 4.5))
    counts = confusion(truth, values >= threshold)
    matrix = np.array(
        [
            [counts.true_negatives, counts.false_positives],
            [counts.false_negatives, counts.true_positives],
        ]
    )
    axes.imshow(matrix, cmap="Blues", vmin=0, vmax=max(1, int(matrix.max())))
    names = ["legitimate", "fraud"]
    axes.set_xticks([0, 1], labels=names)
    axes.set_yticks([0, 1], labels=names)
    axes.set(xlabel="Predicted", ylabel="Actual")
    middle = matrix.max() / 2
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > middle else "black"
        axes.text(column, row, f"{count:,}", ha="center", va="center", color=colour)
    return figure


def _feature_importance(importance: Mapping[str, float]) -> Figure:
    """The largest importances (by magnitude) as horizontal bars, largest on top."""
    ranked = sorted(importance.items(), key=lambda item: (-abs(item[1]), item[0]))[:TOP_FEATURES]
    height = 1.5 + 0.3 * len(ranked)
    figure, axes = _new_axes(f"Feature importance (top {len(ranked)})", size=(7.0, height))
    names = [name for name, _ in reversed(ranked)]
    weights = [weight for _, weight in reversed(ranked)]
    axes.barh(names, weights, color=_LEGIT_COLOUR)
    axes.set(xlabel="Importance")
    return figure
