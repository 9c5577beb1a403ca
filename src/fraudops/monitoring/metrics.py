"""The latest monitoring run as Prometheus metrics: a collector for /metrics, and a textfile.

The collector reads the latest stored run (cached for a few seconds, so frequent scrapes do
not query the warehouse each time) and yields gauges from its result document. A warehouse
that fails is logged and yields no monitoring metrics: the scrape itself never fails.
"""

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import structlog
from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fraudops.storage import MonitorRun
from fraudops.times import utc_aware

log = structlog.get_logger(__name__)

CACHE_SECONDS = 5.0
PERFORMANCE_METRICS = ("precision", "recall", "f1", "average_precision")
BOUNDS = {"estimate": "value", "low": "low", "high": "high"}


class MonitorRunSource(Protocol):
    """Where monitoring runs are kept (the warehouse)."""

    def monitor_runs(self, *, limit: int = 20) -> list[MonitorRun]:
        """The latest runs, newest first."""
        ...


def _families() -> dict[str, GaugeMetricFamily]:
    """Every gauge, empty, by name."""
    gauges: list[tuple[str, str, list[str]]] = [
        (
            "fraudops_monitor_performance",
            "Champion performance on the latest labelled window, with interval bounds.",
            ["metric", "bound"],
        ),
        ("fraudops_monitor_labelled_transactions", "Transactions in the labelled window.", []),
        ("fraudops_monitor_labelled_frauds", "Frauds in the labelled window.", []),
        (
            "fraudops_monitor_enough_evidence",
            "1 when the labelled window held enough frauds to judge performance.",
            [],
        ),
        ("fraudops_monitor_feature_psi", "Population stability index of a feature.", ["feature"]),
        (
            "fraudops_monitor_feature_drift_adjusted_p",
            "Drift test p-value of a feature, Benjamini-Hochberg adjusted.",
            ["feature"],
        ),
        ("fraudops_monitor_feature_drifted", "1 when a feature drifted.", ["feature"]),
        ("fraudops_monitor_score_psi", "Population stability index of the scores.", []),
        ("fraudops_monitor_score_drifted", "1 when the score distribution drifted.", []),
        (
            "fraudops_monitor_alerts_per_day",
            "Champion alerts (reviews and declines) per day over the alert-budget days.",
            [],
        ),
        ("fraudops_monitor_review_capacity", "Alerts per day the analysts can review.", []),
        (
            "fraudops_monitor_alert_budget_over_days",
            "Latest days in a row whose alerts were over capacity beyond the tolerance.",
            [],
        ),
        ("fraudops_monitor_retrain", "1 when the latest run's verdict is to retrain.", []),
        (
            "fraudops_monitor_info",
            "The latest run's champion and verdict (value 1).",
            ["model_name", "model_version", "verdict"],
        ),
        (
            "fraudops_monitor_as_of_timestamp_seconds",
            "Event-time moment the latest run looked from (Unix seconds).",
            [],
        ),
        (
            "fraudops_monitor_last_run_timestamp_seconds",
            "Wall-clock time of the latest run (Unix seconds).",
            [],
        ),
    ]
    return {
        name: GaugeMetricFamily(name, documentation, labels=labels)
        for name, documentation, labels in gauges
    }


def run_metrics(run: MonitorRun) -> list[Metric]:
    """The gauges of one stored monitoring run (values missing from it are left out)."""
    families = _families()

    def gauge(name: str, value: Any, labels: Iterable[str] = ()) -> None:
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, int | float):
            families[name].add_metric(list(labels), float(value))

    result = run.result
    performance: dict[str, Any] = result.get("performance") or {}
    for metric in PERFORMANCE_METRICS:
        estimate = performance.get(metric) or {}
        for bound, key in BOUNDS.items():
            gauge("fraudops_monitor_performance", estimate.get(key), (metric, bound))
    gauge(
        "fraudops_monitor_performance",
        performance.get("card_precision_at_k"),
        ("card_precision_at_k", "estimate"),
    )
    gauge("fraudops_monitor_labelled_transactions", performance.get("transactions"))
    gauge("fraudops_monitor_labelled_frauds", performance.get("frauds"))
    gauge("fraudops_monitor_enough_evidence", performance.get("enough_evidence"))
    drift: dict[str, Any] = result.get("drift") or {}
    for feature in drift.get("features") or []:
        name = (str(feature["feature"]),)
        gauge("fraudops_monitor_feature_psi", feature.get("psi"), name)
        gauge("fraudops_monitor_feature_drift_adjusted_p", feature.get("adjusted_p_value"), name)
        gauge("fraudops_monitor_feature_drifted", feature.get("drifted"), name)
    score = drift.get("score") or {}
    gauge("fraudops_monitor_score_psi", score.get("psi"))
    gauge("fraudops_monitor_score_drifted", score.get("drifted"))
    budget: dict[str, Any] = result.get("alert_budget") or {}
    gauge("fraudops_monitor_alerts_per_day", budget.get("alerts_per_day"))
    gauge("fraudops_monitor_review_capacity", budget.get("capacity"))
    gauge("fraudops_monitor_alert_budget_over_days", budget.get("over_days"))
    gauge("fraudops_monitor_retrain", run.retrain)
    status = (result.get("verdict") or {}).get("status", "retrain" if run.retrain else "ok")
    gauge(
        "fraudops_monitor_info",
        1,
        (run.model_name or "", run.model_version or "", str(status)),
    )
    gauge("fraudops_monitor_as_of_timestamp_seconds", _unix_seconds(run.as_of))
    if run.run_at is not None:
        gauge("fraudops_monitor_last_run_timestamp_seconds", _unix_seconds(run.run_at))
    return [family for family in families.values() if family.samples]


def _unix_seconds(moment: datetime) -> float:
    """Unix seconds of a naive UTC time (or an aware one)."""
    return float(utc_aware(moment).timestamp())


T = TypeVar("T")


class _Cached(Generic[T]):
    """A value read again at most every `seconds` (scrapes may come often; the warehouse is
    read once per period, by one thread). `read` gets the value it replaces."""

    def __init__(
        self, read: Callable[[T], T], initial: T, *, seconds: float, clock: Callable[[], float]
    ) -> None:
        self._read = read
        self._value = initial
        self._seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None

    def get(self) -> T:
        """The value, read again if the last read is `seconds` old."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._seconds:
                self._value = self._read(self._value)
                self._read_at = now
            return self._value


class MonitorCollector(Collector):
    """Prometheus collector of the latest monitoring run stored in a warehouse."""

    def __init__(
        self,
        warehouse: MonitorRunSource,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._warehouse = warehouse
        self._latest = _Cached[list[Metric]](
            lambda _previous: self._read(), [], seconds=cache_seconds, clock=clock
        )

    def describe(self) -> Iterator[Metric]:
        """The metric names, without reading the warehouse (called when registered)."""
        yield from _families().values()

    def collect(self) -> Iterator[Metric]:
        """The latest run's gauges; nothing when there is no run or the warehouse fails."""
        yield from self._latest.get()

    def _read(self) -> list[Metric]:
        """The gauges of the latest stored run, or none."""
        try:
            runs = self._warehouse.monitor_runs(limit=1)
        except Exception:  # a scrape must survive a broken database
            log.exception("reading the latest monitoring run failed")
            return []
        return run_metrics(runs[0]) if runs else []


def write_textfile(path: Path, warehouse: MonitorRunSource) -> Path:
    """Write the latest run's metrics in node-exporter textfile format (atomically)."""
    registry = CollectorRegistry()
    registry.register(MonitorCollector(warehouse, cache_seconds=0.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    return path


class LifecycleEventSource(Protocol):
    """Where the audit trail of the loop's decisions is kept (the warehouse)."""

    def event_counts(self) -> dict[tuple[str, str], int]:
        """Audited decisions by kind and verdict."""
        ...


class LifecycleEventCollector(Collector):
    """The audit trail as counters: decisions by kind and verdict, whoever took them.

    A failed retraining (kind `retrain`, verdict `failed`) is audited by the CLI, the loop,
    Airflow and POST /v1/retrain alike, so an alert on this counter sees every one of them.
    """

    def __init__(
        self,
        warehouse: LifecycleEventSource,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._warehouse = warehouse
        self._counts = _Cached[dict[tuple[str, str], int]](
            self._read, {}, seconds=cache_seconds, clock=clock
        )

    def describe(self) -> Iterator[Metric]:
        """The metric's name, without reading the warehouse."""
        yield _lifecycle_family()

    def collect(self) -> Iterator[Metric]:
        """The counts of the audit trail (the last ones read if the warehouse fails)."""
        family = _lifecycle_family()
        for (kind, verdict), count in sorted(self._counts.get().items()):
            family.add_metric([kind, verdict], float(count))
        yield family

    def _read(self, previous: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
        """The audit trail's counts, or the last ones read when the warehouse fails."""
        try:
            return self._warehouse.event_counts()
        except Exception:  # a scrape must survive a broken database
            log.exception("reading the lifecycle event counts failed")
            return previous


def _lifecycle_family() -> CounterMetricFamily:
    return CounterMetricFamily(
        "fraudops_lifecycle_events",
        "Audited lifecycle decisions (monitor, retrain, compare, promote, rollback) by verdict.",
        labels=["kind", "verdict"],
    )
