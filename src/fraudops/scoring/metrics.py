"""Prometheus metrics of the scoring service, safe with several uvicorn workers.

With PROMETHEUS_MULTIPROC_DIR set (`fraudops serve --workers N` sets it before the workers
start), every worker writes its values to files there and /metrics adds them up;
otherwise the values live in this service's own registry. The HTTP adapter counts its
requests in the same registry (fraudops.api.metrics).
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
FAST_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
SCORE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


class ServiceMetrics:
    """Every metric the service exports, registered in one registry of its own."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "fraudops_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "fraudops_http_request_duration_seconds",
            "Server-side HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "fraudops_decisions",
            "Champion decisions on new transactions.",
            ["decision"],
            registry=r,
        )
        self.scores = Histogram(
            "fraudops_fraud_probability",
            "Champion fraud probability of new transactions.",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "fraudops_model_info",
            "Model versions in service (1 = serving) by role.",
            ["role", "name", "version"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.ready = Gauge(
            "fraudops_ready",
            "1 when the service is ready (champion loaded, feature state rebuilt, storage "
            "running), as /readyz says; set at each scrape.",
            multiprocess_mode="livemin",
            registry=r,
        )
        self.reloads = Counter(
            "fraudops_model_reloads",
            "Model reloads by outcome (swapped, unchanged, rejected, failed).",
            ["outcome"],
            registry=r,
        )
        self.feature_state = Histogram(
            "fraudops_feature_state_seconds",
            "Time to read and update one transaction's online feature state.",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.model_seconds = Histogram(
            "fraudops_model_seconds",
            "Time to score and explain one transaction with the champion.",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.store_seconds = Histogram(
            "fraudops_store_seconds",
            "Time to commit one group of scored transactions to the warehouse.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.store_batch = Histogram(
            "fraudops_store_batch_size",
            "Scored transactions per warehouse commit.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=r,
        )
        self.duplicates = Counter(
            "fraudops_duplicate_transactions",
            "Transactions sent again: the stored result was returned, nothing written.",
            registry=r,
        )
        self.labels = Counter(
            "fraudops_labels", "Labels received by outcome.", ["outcome"], registry=r
        )
        self.unknown_categories = Counter(
            "fraudops_unknown_category",
            "Transactions whose category the champion never saw in training (scored as none).",
            registry=r,
        )
        self.shadow = Counter(
            "fraudops_shadow_scores",
            "Challenger shadow scores by outcome (stored, dropped, failed).",
            ["outcome"],
            registry=r,
        )
        self.late = Counter(
            "fraudops_late_transactions",
            "Transactions accepted although much older than the latest event times seen "
            "(FRAUDOPS_LATE_EVENT_SECONDS).",
            registry=r,
        )
        self.refused = Counter(
            "fraudops_refused_transactions",
            "Transactions refused before scoring, by reason (invalid, conflict).",
            ["reason"],
            registry=r,
        )
        self.state_reconciled = Counter(
            "fraudops_state_rebuilds_for_unstored",
            "Rebuilds of the online state because it held transactions the warehouse never "
            "stored (a crash or failed commit between the state change and the commit).",
            registry=r,
        )

        # Known label values exported at 0 from the start: a rate or an alert on them has a
        # series before the first refusal, failed reload or shadow score.
        for reason in ("invalid", "conflict"):
            self.refused.labels(reason=reason)
        for outcome in ("swapped", "unchanged", "rejected", "failed"):
            self.reloads.labels(outcome=outcome)
        for outcome in ("stored", "dropped", "failed"):
            self.shadow.labels(outcome=outcome)

    def render(self) -> bytes:
        """The exposition text: every worker's values when running multi-process."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    def set_model(self, *, role: str, name: str, version: str | None, previous: str | None) -> None:
        """Mark the version now serving in a role, and the one it replaced as gone."""
        if previous is not None and previous != version:
            self.model_info.labels(role=role, name=name, version=previous).set(0)
        if version is not None:
            self.model_info.labels(role=role, name=name, version=version).set(1)
