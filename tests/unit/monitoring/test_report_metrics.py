"""The run for people (HTML report, terminal summary) and for Prometheus (collector, textfile)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from fraudops.monitoring.drift import drift_report
from fraudops.monitoring.metrics import MonitorCollector, write_textfile
from fraudops.monitoring.monitor import DriftResult, MonitorResult
from fraudops.monitoring.performance import window_performance
from fraudops.monitoring.policy import Policy, decide
from fraudops.monitoring.report import LATEST, render_monitor, write_report
from fraudops.storage import MonitorRun

AS_OF = datetime(2024, 3, 1, 12, 30)
HOSTILE = "<b>injected</b>"


@pytest.fixture(scope="module")
def result() -> MonitorResult:
    """A run whose amounts drifted (and a feature with an HTML-looking name that did not)."""
    rng = np.random.default_rng(7)
    reference = pd.DataFrame(
        {"amount": rng.lognormal(3, 1, 4_000), "hour": rng.integers(0, 24, 4_000).astype(float)}
    )
    reference[HOSTILE] = rng.normal(size=4_000)
    current = pd.DataFrame(
        {"amount": rng.lognormal(3, 1, 2_000) * 1.8, "hour": rng.integers(0, 24, 2_000) * 1.0}
    )
    current[HOSTILE] = rng.normal(size=2_000)
    features = drift_report(reference, current)
    (score,) = drift_report(
        pd.DataFrame({"score": rng.beta(1, 30, 4_000)}),
        pd.DataFrame({"score": rng.beta(1, 10, 2_000)}),
    )
    labels = (rng.random(3_000) < 0.02).astype(int)
    scores = np.clip(rng.normal(0.2 + 0.5 * labels, 0.2), 0, 1)
    performance = window_performance(
        labels=labels,
        scores=scores,
        alerts=scores >= 0.5,
        resamples=50,
        start=AS_OF - timedelta(days=14),
        end=AS_OF - timedelta(days=7),
    )
    policy = Policy()
    verdict = decide(
        policy=policy,
        as_of=AS_OF,
        performance=performance,
        feature_drift=features,
        score_drift=score,
        champion_metrics={"validation_f1": 0.3, "validation_average_precision": 0.3},
    )
    return MonitorResult(
        as_of=AS_OF,
        model_name="fraud-detector",
        champion_version="3",
        threshold=0.5,
        performance=performance,
        excluded_labelled=4,
        drift=DriftResult(
            start=AS_OF - timedelta(days=1),
            end=AS_OF,
            rows=2_000,
            other_version_rows=0,
            reference_rows=4_000,
            features=tuple(features),
            score=score,
            ignored=("weekday",),
        ),
        verdict=verdict,
        policy=policy,
    )


def test_the_fixture_is_a_drift_verdict(result: MonitorResult) -> None:
    """What the following tests rely on: amount drifted, the rest did not, retrain."""
    assert ["amount"] == result.drift.drifted
    assert result.drift.score is not None and result.drift.score.drifted
    assert ["feature_drift", "score_drift"] == result.verdict.reasons


def test_the_report_puts_the_verdict_first_and_escapes_names(
    result: MonitorResult, tmp_path: Path
) -> None:
    """Verdict before the tables, drifted rows first, data escaped, plot beside it, a copy."""
    reference = np.random.default_rng(1).beta(1, 30, 500)
    path = write_report(result, tmp_path, reference_scores=reference, current_scores=reference * 2)
    assert tmp_path / "monitor-20240301T123000.html" == path
    html = path.read_text()
    assert html == (tmp_path / LATEST).read_text()
    assert html.index("RETRAIN") < html.index('id="performance"') < html.index('id="drift"')
    assert "feature_drift, score_drift" in html
    drift_table = html[html.index('id="drift"') :]
    assert drift_table.index(">amount<") < drift_table.index(">hour<")
    assert "&lt;b&gt;injected&lt;/b&gt;" in html and HOSTILE not in html
    assert '<img src="monitor-20240301T123000-scores.png"' in html
    assert (tmp_path / "monitor-20240301T123000-scores.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latest.html",
        "monitor-20240301T123000-scores.png",
        "monitor-20240301T123000.html",
    ]


def test_a_report_without_scores_has_no_plot(result: MonitorResult, tmp_path: Path) -> None:
    """No score arrays, no image and no PNG file."""
    html = write_report(result, tmp_path).read_text()
    assert "<img" not in html
    assert [] == list(tmp_path.glob("*.png"))


def test_the_terminal_summary_shows_verdict_intervals_and_drift(result: MonitorResult) -> None:
    """The rich summary names the verdict, the reasons, the F1 interval and the drifted feature."""
    console = Console(record=True, width=120)
    console.print(render_monitor(result))
    text = console.export_text()
    f1 = result.performance.f1
    assert text.startswith("RETRAIN")
    assert "feature_drift, score_drift" in text
    assert f"{f1.low:.4f} - {f1.high:.4f}" in text
    assert "Drifted features (1 of 3 tested)" in text and "amount" in text


def test_the_result_document_is_strict_json(result: MonitorResult) -> None:
    """to_dict survives JSON without NaN, and says what the policy decided."""
    document = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert ["feature_drift", "score_drift"] == document["verdict"]["reasons"]
    assert "retrain" == document["verdict"]["status"]
    assert (True, ["feature_drift", "score_drift"]) == (document["retrain"], document["reasons"])
    assert "amount" == document["drift"]["features"][0]["feature"]
    assert "2024-03-01T12:30:00" == document["as_of"]
    assert "RETRAIN" not in str(result) and "retrain (feature_drift, score_drift)" in str(result)


class Runs:
    """A stand-in warehouse holding monitoring runs, counting the reads."""

    def __init__(self, runs: list[MonitorRun], *, broken: bool = False) -> None:
        self.runs = runs
        self.broken = broken
        self.reads = 0

    def monitor_runs(self, *, limit: int = 20) -> list[MonitorRun]:
        """The latest runs, or a database failure."""
        self.reads += 1
        if self.broken:
            raise ConnectionError("database is down")
        return self.runs[:limit]


def stored(result: MonitorResult) -> MonitorRun:
    """The run as the warehouse gives it back."""
    return MonitorRun(
        as_of=result.as_of,
        model_name=result.model_name,
        model_version=result.champion_version,
        retrain=result.verdict.retrain,
        reasons=result.verdict.reasons,
        result=result.to_dict(),
        run_at=datetime(2026, 1, 2, 3, 4, 5),
        id=1,
    )


def scrape(collector: MonitorCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a scrape in the exposition format, by name and labels."""
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_collector_exports_the_latest_run(result: MonitorResult) -> None:
    """Performance bounds, per-feature drift, score PSI, the verdict and both times."""
    samples = scrape(MonitorCollector(Runs([stored(result)])))
    f1 = result.performance.f1
    performance = "fraudops_monitor_performance"
    assert f1.low == samples[(performance, (("bound", "low"), ("metric", "f1")))]
    assert f1.value == samples[(performance, (("bound", "estimate"), ("metric", "f1")))]
    assert 1.0 == samples[("fraudops_monitor_feature_drifted", (("feature", "amount"),))]
    assert 0.0 == samples[("fraudops_monitor_feature_drifted", (("feature", "hour"),))]
    assert result.drift.score is not None
    assert result.drift.score.psi == samples[("fraudops_monitor_score_psi", ())]
    assert 1.0 == samples[("fraudops_monitor_retrain", ())]
    as_of = AS_OF.replace(tzinfo=UTC).timestamp()
    assert as_of == samples[("fraudops_monitor_as_of_timestamp_seconds", ())]
    run_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert run_at == samples[("fraudops_monitor_last_run_timestamp_seconds", ())]


def test_a_broken_database_or_no_run_yields_nothing_and_the_scrape_survives(
    result: MonitorResult,
) -> None:
    """A failing warehouse is logged, not raised; without a run there is nothing to say."""
    assert {} == scrape(MonitorCollector(Runs([stored(result)], broken=True)))
    assert {} == scrape(MonitorCollector(Runs([])))


def test_the_collector_reads_the_warehouse_at_most_once_per_cache_period(
    result: MonitorResult,
) -> None:
    """Scrapes within cache_seconds reuse the read; registering reads nothing."""
    now = [100.0]
    runs = Runs([stored(result)])
    collector = MonitorCollector(runs, cache_seconds=5.0, clock=lambda: now[0])
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    assert 0 == runs.reads
    generate_latest(registry)
    now[0] += 4.9
    generate_latest(registry)
    assert 1 == runs.reads
    now[0] += 0.2
    generate_latest(registry)
    assert 2 == runs.reads


def test_the_textfile_holds_the_same_metrics(result: MonitorResult, tmp_path: Path) -> None:
    """node-exporter textfile format, parsed back: the verdict gauge is there."""
    path = write_textfile(tmp_path / "metrics" / "fraudops.prom", Runs([stored(result)]))
    families = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    assert [1.0] == [s.value for s in families["fraudops_monitor_retrain"].samples]
    info = families["fraudops_monitor_info"].samples[0].labels
    assert {"model_name": "fraud-detector", "model_version": "3", "verdict": "retrain"} == info
