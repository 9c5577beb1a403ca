"""The audit trail as Prometheus counters, read from a real (SQLite) warehouse."""

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fraudops.monitoring.metrics import LifecycleEventCollector
from fraudops.storage import LifecycleEvent, Warehouse


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.labels["kind"], sample.labels["verdict"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fraudops_lifecycle_events_total"
    }


def test_failed_retrainings_and_promotions_are_counted_by_verdict(tmp_path: Path) -> None:
    """Two failed retrainings and one promotion: the counters say 2 and 1, per verdict."""
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    warehouse.migrate()
    for kind, verdict in (("retrain", "failed"), ("retrain", "failed"), ("promote", "promoted")):
        warehouse.record_event(
            LifecycleEvent(kind=kind, trigger="schedule", actor="test", verdict=verdict)
        )
    registry = CollectorRegistry()
    registry.register(LifecycleEventCollector(warehouse, cache_seconds=0.0))

    actual = _samples(registry)
    warehouse.dispose()

    assert {("retrain", "failed"): 2.0, ("promote", "promoted"): 1.0} == actual


class _BrokenWarehouse:
    def event_counts(self) -> dict[tuple[str, str], int]:
        raise OSError("database unreachable")


def test_a_broken_warehouse_leaves_the_scrape_working() -> None:
    """A warehouse that fails yields no counts, and the scrape itself succeeds."""
    registry = CollectorRegistry()
    registry.register(LifecycleEventCollector(_BrokenWarehouse(), cache_seconds=0.0))

    assert {} == _samples(registry)
