"""The lifecycle facade: one decision for `monitor --json` and the DAGs, one retraining path.

The CLI, the API's retrain job and the loop's monitor job all retrain through
`Lifecycle.retrain`, so their evaluation reports land in one folder naming.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudops.api.routes import _retrain_and_reload
from fraudops.api.schemas import RetrainRequest
from fraudops.cli import app
from fraudops.config import Settings, get_settings
from fraudops.lifecycle import facade
from fraudops.lifecycle.facade import Lifecycle
from fraudops.lifecycle.retrain import RetrainError, retrain_folder
from fraudops.monitoring.policy import Policy
from fraudops.registry import InMemoryRegistry
from fraudops.scoring.serving import decide, decide_many
from fraudops.storage import ScoredTransaction, ScoreRecord, Warehouse
from fraudops.training.bundle import ModelBundle
from warehouse_fill import store_day, store_served

START = datetime(2024, 1, 1)  # as in the `simulated` fixture
AS_OF = START + timedelta(days=16)
# A champion older than a day of event time is due for retraining: the "schedule" reason.
POLICY = Policy(
    label_delay_days=2.0,
    performance_window_days=3.0,
    max_model_age_days=1.0,
    retrain_history_days=14.0,
    retrain_validation_days=5.0,
    retrain_trials=0,
    min_frauds=5,
    bootstrap_resamples=50,
)


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A home of the test's own for the CLI's settings."""
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FRAUDOPS_SERVICE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def champion_lifecycle(
    history: Warehouse, train_bundle: Callable[..., ModelBundle], home: Path, *, actor: str
) -> Lifecycle:
    """The facade over the history, a champion trained on its first eight days registered."""
    first = history.history_frame(START, START + timedelta(days=8), labels_known_by=START)
    champion = replace(
        train_bundle(first, threshold=0.5, seed=1),
        training={"trained_until": (START + timedelta(days=8)).isoformat()},
    )
    registry = InMemoryRegistry()
    registry.log_training(champion, input_example=None, dataset_fingerprint="t")  # type: ignore[arg-type]
    return Lifecycle.from_settings(
        Settings(home=home), history, registry=registry, policy=POLICY, actor=actor
    )


def test_monitor_json_carries_the_loops_decision(
    history: Warehouse,
    train_bundle: Callable[..., ModelBundle],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`fraudops monitor --json` prints the run with the library's decision: retrain now (no
    challenger waits), the verdict's reasons, the trigger, the stored run id; report written."""
    lifecycle = champion_lifecycle(history, train_bundle, tmp_path / "home", actor="cli")

    @contextmanager
    def opened(_: Settings, *, actor: str) -> Iterator[Lifecycle]:
        yield replace(lifecycle, actor=actor)

    monkeypatch.setattr(Lifecycle, "opened", opened)
    outcome = CliRunner().invoke(
        app, ["monitor", "--json", "--as-of", AS_OF.isoformat(), "--actor", "airflow"]
    )
    assert 0 == outcome.exit_code, outcome.output
    document = json.loads(outcome.output.strip().splitlines()[-1])
    (run,) = history.monitor_runs()
    assert {
        "run_id": run.id,
        "as_of": AS_OF.isoformat(),
        "retrain": True,
        "reasons": ["schedule"],
        "challenger_waiting": None,
        "trigger": "schedule",
    } == document["decision"]
    assert (["schedule"], True) == (run.reasons, run.retrain)
    assert "airflow" == history.events(kind="monitor")[0].actor
    report = tmp_path / "home" / "reports" / f"monitor-{AS_OF:%Y%m%dT%H%M%S}.html"
    assert (str(report), str(report)) == (document["report_path"], run.result["report_path"])
    assert report.is_file()


@dataclass
class Retrained:
    """What the stand-in for the training function answers."""

    version: int = 2
    alias: str = "challenger"

    def to_dict(self) -> dict[str, Any]:
        """As RetrainResult.to_dict, in short."""
        return {"version": self.version, "alias": self.alias}

    def summary(self) -> str:
        """As RetrainResult.summary, in short."""
        return f"version {self.version} became {self.alias}"


class Reloaded(Exception):  # noqa: N818 - a signal, not an error
    """The API job reached its service reload (after retraining)."""


@dataclass
class FakeService:
    """The parts of the scoring service the API's retrain job uses."""

    warehouse: Warehouse
    registry: InMemoryRegistry

    def reload(self) -> None:
        """Stop the job here: the retraining has happened."""
        raise Reloaded


def test_the_cli_the_api_and_the_loop_retrain_through_one_path(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each caller trains through Lifecycle.retrain with its own actor, from the same moment,
    into the same folder naming: HOME/models/retrain-<event time>."""
    calls: list[dict[str, Any]] = []

    def training(**arguments: Any) -> Retrained:
        calls.append(arguments)
        return Retrained()

    monkeypatch.setattr(facade, "retrain", training)
    home = tmp_path / "home"
    settings = Settings(home=home)
    registry = InMemoryRegistry()

    @contextmanager
    def opened(_: Settings, *, actor: str) -> Iterator[Lifecycle]:
        yield Lifecycle.from_settings(
            settings, warehouse, registry=registry, policy=POLICY, actor=actor
        )

    monkeypatch.setattr(Lifecycle, "opened", opened)
    outcome = CliRunner().invoke(app, ["retrain", "--json", "--as-of", AS_OF.isoformat()])
    assert 0 == outcome.exit_code, outcome.output

    with pytest.raises(Reloaded):
        _retrain_and_reload(
            FakeService(warehouse, registry),  # type: ignore[arg-type]
            settings.model_copy(update={"policy_file": None}),
            RetrainRequest(as_of=AS_OF, trigger="api"),
        )

    loop = Lifecycle.from_settings(
        settings, warehouse, registry=registry, policy=POLICY, actor="scheduler"
    )

    @dataclass
    class Alarm:
        retrain: bool = True
        reasons: tuple[str, ...] = ("feature_drift",)

    @dataclass
    class Decision:
        result: Any
        challenger_waiting: None = None
        trigger: str = "feature_drift"

    monkeypatch.setattr(
        Lifecycle, "monitor", lambda *_, **__: Decision(result=type("R", (), {"verdict": Alarm()}))
    )
    step = loop.monitor_job(AS_OF)
    assert "trained v2 as challenger" in step.summary()

    expected = home / "models" / f"retrain-{AS_OF:%Y%m%dT%H%M%S}"
    assert [
        ("cli", "manual", AS_OF, expected),
        ("api", "api", AS_OF, expected),
        ("scheduler", "feature_drift", AS_OF, expected),
    ] == [(c["actor"], c["trigger"], c["as_of"], c["out_dir"]) for c in calls]


def test_a_second_retraining_from_the_same_moment_gets_a_folder_of_its_own(
    tmp_path: Path,
) -> None:
    """retrain-<as_of>, then retrain-<as_of>-2; a loser's replacement is named for it."""
    first = retrain_folder(tmp_path, as_of=AS_OF, trigger="manual")
    first.mkdir()
    assert tmp_path / "retrain-20240117T000000-2" == retrain_folder(
        tmp_path, as_of=AS_OF, trigger="feature_drift"
    )
    assert tmp_path / "loser_replaced-20240117T000000" == retrain_folder(
        tmp_path, as_of=AS_OF, trigger="loser_replaced"
    )


def test_a_batch_is_decided_as_each_of_its_transactions_is() -> None:
    """decide_many gives, element by element, what decide gives (thresholds included)."""
    scores = np.array([0.0, 0.19, 0.2, 0.5, 0.79, 0.8, 1.0])
    expected = [decide(float(score), review=0.2, decline=0.8) for score in scores]
    assert ["approve", "approve", "review", "review", "review", "decline", "decline"] == expected
    assert expected == list(decide_many(scores, review=0.2, decline=0.8))


def test_retraining_on_an_empty_warehouse_fails_audited_and_writes_nothing(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """No transaction, so no moment: RetrainError, one failed retraining in the audit trail,
    no report folder."""
    lifecycle = Lifecycle.from_settings(
        Settings(home=tmp_path), warehouse, registry=InMemoryRegistry(), policy=POLICY, actor="cli"
    )
    with pytest.raises(RetrainError, match="no transactions"):
        lifecycle.retrain()
    assert [("retrain", "cli")] == [(e.kind, e.actor) for e in warehouse.events()]
    assert not (tmp_path / "models").exists()


def test_monitoring_waits_for_slow_labels_and_reports_the_immature(
    warehouse: Warehouse,
    simulated: pd.DataFrame,
    train_bundle: Callable[..., ModelBundle],
    tmp_path: Path,
) -> None:
    """Frauds reported 5 days late under a 2-day delay, quantile from the settings: the
    labelled window ends 5 days before as_of, the younger transactions are counted in the
    run's document and its HTML report."""
    store_served(warehouse, simulated, label_days=5)
    lifecycle = champion_lifecycle(warehouse, train_bundle, tmp_path / "home", actor="cli")
    lifecycle = replace(lifecycle, settings=Settings(home=tmp_path, label_maturity_quantile=0.5))

    result = lifecycle.monitor(AS_OF).result

    times = pd.to_datetime(simulated["trans_date_trans_time"])
    immature = int(((times >= AS_OF - timedelta(days=5)) & (times < AS_OF)).sum())
    assert AS_OF - timedelta(days=5) == result.performance.end
    assert (immature, 5.0, 0.5) == (
        result.immature,
        result.to_dict()["maturity"]["age_days"],
        result.to_dict()["maturity"]["quantile"],
    )
    assert immature == result.to_dict()["maturity"]["immature"]
    assert result.report_path is not None
    assert f"{immature} younger transactions left out as immature" in " ".join(
        result.report_path.read_text().split()
    )


def test_the_maturity_quantile_setting_reaches_the_comparison_and_the_quality_checks(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """FRAUDOPS_LABEL_MATURITY_QUANTILE is the one the champion/challenger comparison and the
    quality report's label coverage use; too few frauds leave the policy's delay."""
    store_day(warehouse)
    lifecycle = Lifecycle.from_settings(
        Settings(home=tmp_path, label_maturity_quantile=0.5),
        warehouse,
        registry=InMemoryRegistry(),
        policy=POLICY,
        actor="cli",
    )

    report = lifecycle.quality(datetime(2024, 3, 11), days=1)

    assert 0.5 == lifecycle.compare_options.maturity_quantile
    assert report.maturity is not None
    assert (0.5, timedelta(days=2), "delay") == (
        report.maturity.quantile,
        report.maturity.age,
        report.maturity.source,
    )
    assert 8 == report.immature  # the 2 days before as_of: 2024-03-10 and one on the 9th


def test_the_review_capacity_setting_reaches_monitoring_and_retraining(
    warehouse: Warehouse,
    simulated: pd.DataFrame,
    train_bundle: Callable[..., ModelBundle],
    tmp_path: Path,
) -> None:
    """FRAUDOPS_REVIEW_CAPACITY: the monitor counts the stored alerts against it, and
    retraining fits the review threshold to it; unset, the champion's own budget is kept."""
    day_before = simulated[simulated["trans_date_trans_time"].str.startswith("2024-01-16")]
    alerts = day_before.head(3).drop(columns=["is_fraud", "fraud_scenario"])
    review = ScoreRecord(
        model_name="fraud-detector",
        model_version="0",
        fraud_probability=0.9,
        decision="review",
        scored_at=AS_OF,
    )
    warehouse.store_scored_batch(
        [
            ScoredTransaction(transaction=record | {"trans_num": f"alert-{n}"}, score=review)
            for n, record in enumerate(alerts.to_dict(orient="records"))
        ]
    )
    first_week = simulated.head(3_000)
    champion = train_bundle(
        first_week.assign(event_time=pd.to_datetime(first_week["trans_date_trans_time"])),
        threshold=0.5,
        seed=1,
    )
    registry = InMemoryRegistry()
    registry.log_training(champion, input_example=None, dataset_fingerprint="t")  # type: ignore[arg-type]
    home = tmp_path / "home"
    plain = Lifecycle.from_settings(
        Settings(home=home), warehouse, registry=registry, policy=POLICY, actor="cli"
    )
    budgeted = replace(plain, settings=Settings(home=home, review_capacity=1.0))

    budget = budgeted.monitor(AS_OF).result.alert_budget
    assert budget is not None
    assert (1.0, 1, False) == (budget.capacity, budget.over_days, budget.overrun)
    assert [0, 0, 3] == [count for _, count in budget.days]  # 14, 15 and 16 January
    assert None is plain.monitor(AS_OF).result.alert_budget
    assert 1.0 == budgeted.retrain_options.review_capacity
    assert None is plain.retrain_options.review_capacity
    # Without the setting, a champion fitted to a budget passes it on to its successor.
    fitted = replace(champion, training=champion.training | {"review_capacity": "7.0"})
    registry.log_training(fitted, input_example=None, dataset_fingerprint="t")  # type: ignore[arg-type]
    registry.set_alias(2, "champion")
    assert 7.0 == plain.retrain_options.review_capacity
