"""Daily performance over a period, and its plot with the lifecycle's events marked.

Each transaction is judged by the model that scored it as champion then, at that model's
own threshold, so a timeline across promotions shows what the service actually decided.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.figure import Figure

from fraudops.monitoring.performance import DAILY_COLUMNS, DEFAULT_CONFIDENCE, daily_performance
from fraudops.storage import TransactionStore

TIMELINE_COLUMNS = (DAILY_COLUMNS[0], "champion_version", *DAILY_COLUMNS[1:])
Thresholds = Mapping[str, float] | Callable[[str], float]


def performance_timeline(
    warehouse: TransactionStore,
    start: datetime,
    end: datetime,
    *,
    labels_known_by: datetime,
    thresholds: Thresholds | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = 200,
) -> pd.DataFrame:
    """One row per day of [start, end) with labelled transactions: daily_performance's columns
    plus `champion_version`, the versions that scored that day in order of first use ("1,2").

    `thresholds` gives each version's alert threshold (a mapping by version, or a function);
    without it an alert is what the service declined (at its decline threshold, by default
    the model's own threshold).
    """
    labelled = warehouse.labelled_between(start, end, labels_known_by=labels_known_by)
    probability = pd.to_numeric(labelled["fraud_probability"], errors="coerce")
    labelled = labelled.loc[probability.notna()].assign(
        fraud_probability=probability.loc[probability.notna()],
        model_version=lambda frame: frame["model_version"].astype(str),
    )
    if labelled.empty:
        return pd.DataFrame(columns=list(TIMELINE_COLUMNS))
    scores = labelled["fraud_probability"].to_numpy(dtype=np.float64)
    if thresholds is None:
        alerts = (labelled["decision"] == "decline").to_numpy(dtype=np.bool_)
    else:
        threshold_of = thresholds if callable(thresholds) else thresholds.__getitem__
        versions = labelled["model_version"]
        by_version = {v: float(threshold_of(v)) for v in versions.unique()}
        alerts = scores >= versions.map(by_version).to_numpy(dtype=np.float64)
    times = pd.to_datetime(labelled["event_time"])
    daily = daily_performance(
        times=times.to_numpy(dtype="datetime64[ns]"),
        labels=labelled["is_fraud"].to_numpy(dtype=np.int64),
        scores=scores,
        alerts=alerts,
        confidence=confidence,
        resamples=resamples,
    )
    versions = (
        labelled.assign(date=times.dt.date.to_numpy())
        .groupby("date", sort=True)["model_version"]
        .agg(lambda served: ",".join(dict.fromkeys(served)))
    )
    daily.insert(1, "champion_version", daily["date"].map(versions).to_numpy())
    return daily


def plot_timeline(
    timeline: pd.DataFrame, events: Sequence[tuple[datetime, str]], path: Path
) -> Path:
    """Daily average precision and F1 with their intervals, events as labelled vertical lines.

    Days with too few frauds to judge (`enough_evidence` False) are drawn hollow.
    """
    figure = Figure(figsize=(10.0, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title("Champion performance per day")
    dates = pd.to_datetime(timeline["date"])
    for metric, label, colour in (
        ("average_precision", "average precision", "#2e86c1"),
        ("f1", "F1", "#c0392b"),
    ):
        if timeline.empty:
            break
        values = timeline[metric].to_numpy(dtype=np.float64)
        axes.plot(dates, values, marker="o", markersize=3, label=label, color=colour)
        # Hollow markers: days with too few frauds for their value to mean much.
        thin = ~timeline["enough_evidence"].to_numpy(dtype=np.bool_)
        axes.scatter(
            dates[thin], values[thin], s=30, facecolors="white", edgecolors=colour, zorder=3
        )
        axes.fill_between(
            dates,
            timeline[f"{metric}_low"].to_numpy(dtype=np.float64),
            timeline[f"{metric}_high"].to_numpy(dtype=np.float64),
            color=colour,
            alpha=0.15,
            linewidth=0,
        )
    for moment, label in events:
        x = float(mdates.date2num(moment))  # type: ignore[no-untyped-call]
        axes.axvline(x, color="#555", linestyle="--", linewidth=1)
        axes.annotate(
            label,
            xy=(x, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=8,
        )
    axes.set(ylim=(0.0, 1.02), ylabel="metric (band: confidence interval)", xlabel="event day")
    if not timeline.empty:
        axes.legend(loc="lower left")
    figure.autofmt_xdate()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path
