"""The lifecycle on real parts: warehouse (SQLite, PostgreSQL), embedded MLflow, real training.

The simulated world has no card testing until day DRIFT_DAY, then card testing starts: a
champion trained before it cannot see it, a challenger retrained after it learnt it.
"""

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from fraudops.config import Settings
from fraudops.lifecycle.compare import CompareOptions, run_champion_challenger
from fraudops.lifecycle.models import ModelOpsError, list_models, rollback
from fraudops.lifecycle.retrain import RetrainError, RetrainOptions, retrain
from fraudops.registry import CHALLENGER, CHAMPION, MlflowRegistry
from fraudops.simulate import ScenarioMix, SimulationConfig, parse_drift, simulate
from fraudops.storage import Warehouse
from mlflow_store import seeded_home
from warehouse_fill import store_served

pytestmark = pytest.mark.slow

START = datetime(2024, 1, 1)
DAYS = 49
DRIFT_DAY = 28
LABEL_DAYS = 2  # a fraud is reported this long after it happened
RETRAIN = RetrainOptions(trials=0, history_days=28, validation_days=3)
COMPARE = CompareOptions(resamples=200)


def day(number: float) -> datetime:
    """The moment `number` days after the simulation starts."""
    return START + timedelta(days=number)


@pytest.fixture(scope="module")
def drifted() -> pd.DataFrame:
    """Seven weeks of 400 cards: no card testing before DRIFT_DAY, card testing after it."""
    return simulate(
        SimulationConfig(
            days=DAYS,
            cards=400,
            scenario_mix=ScenarioMix(
                card_testing=0, compromised_merchant=0.5, stolen_credentials=0.5
            ),
            drift=(parse_drift(f"scenario@{DRIFT_DAY}:name=card_testing,rate=0.01"),),
        )
    )


def store_history(warehouse: Warehouse, frame: pd.DataFrame) -> None:
    """Store a simulated frame as served transactions, each fraud labelled LABEL_DAYS later."""
    store_served(warehouse, frame, label_days=LABEL_DAYS)


@pytest.fixture
def registry(tmp_path: Path) -> MlflowRegistry:
    """The embedded MLflow registry in a home of the test's own."""
    home = seeded_home(tmp_path / "home")
    return MlflowRegistry(Settings(home=home, _env_file=None))  # type: ignore[call-arg]


def test_drift_challenger_is_promoted_the_loser_replaced_and_rollback_restores(
    warehouse: Warehouse, registry: MlflowRegistry, drifted: pd.DataFrame, tmp_path: Path
) -> None:
    """Retrain, compare, promote with evidence, replace the loser, audit it all, roll back."""
    store_history(warehouse, drifted)
    settings = Settings(home=tmp_path / "home", _env_file=None)  # type: ignore[call-arg]
    train_champion_and_challenger(warehouse, registry, report=tmp_path / "report")

    outcome = run_champion_challenger(
        warehouse=warehouse,
        registry=registry,
        options=COMPARE,
        retrain_options=RETRAIN,
        as_of=day(DAYS),
        actor="test",
        settings=settings,
        out_dir=tmp_path / "models",
    )

    comparison = outcome.comparison
    assert comparison is not None
    assert comparison.evidence is not None
    assert "promote" == outcome.verdict
    # The window starts where the challenger's training ended and ends a label delay ago.
    assert (day(DRIFT_DAY + 3), day(DAYS - 7)) == (comparison.window_start, comparison.window_end)
    assert comparison.frauds >= COMPARE.min_frauds
    assert comparison.evidence.difference.low > 0
    assert 2 == registry.resolve(CHAMPION).version
    assert outcome.replacement is not None
    assert (3, CHALLENGER) == (outcome.replacement.version, outcome.replacement.alias)
    assert 3 == registry.resolve(CHALLENGER).version
    assert ("not_configured", "not_configured") == outcome.notified
    assert (tmp_path / "models" / "loser_replaced-20240219T000000" / "report.md").is_file()
    check_audit_trail(warehouse, comparison.to_dict())
    check_version_tags(registry)
    check_waiting_then_rollback(warehouse, registry)


def train_champion_and_challenger(
    warehouse: Warehouse, registry: MlflowRegistry, *, report: Path
) -> None:
    """A champion that never saw card testing, a challenger retrained ten days into it."""
    champion = retrain(
        warehouse=warehouse,
        registry=registry,
        options=RETRAIN,
        as_of=day(DRIFT_DAY),
        trigger="manual",
        actor="test",
        out_dir=report,
    )
    challenger = retrain(
        warehouse=warehouse,
        registry=registry,
        options=RETRAIN,
        as_of=day(DRIFT_DAY + 10),
        trigger="feature_drift",
        actor="test",
    )
    assert (1, CHAMPION) == (champion.version, champion.alias)
    assert "no champion yet" in champion.note
    assert champion.summary().startswith("version 1 became champion")
    assert f"({champion.rows} transactions, {champion.frauds} frauds)" in champion.summary()
    assert (2, CHALLENGER) == (challenger.version, challenger.alias)
    assert day(DRIFT_DAY - 7) == champion.labelled_end
    assert (report / "report.md").is_file()


def check_audit_trail(warehouse: Warehouse, comparison: dict[str, object]) -> None:
    """Every decision of the run is in the audit table, newest first, with its evidence."""
    events = warehouse.events()
    assert [
        ("retrain", "loser_replaced", "registered"),
        ("promote", "compare", "promoted"),
        ("compare", "schedule", "promote"),
        ("retrain", "feature_drift", "registered"),
        ("retrain", "manual", "registered"),
    ] == [(e.kind, e.trigger, e.verdict) for e in events]
    promotion, compare = events[1], events[2]
    assert ("2", 1) == (promotion.champion_version, promotion.detail["previous_champion"])
    assert ("1", "2") == (compare.champion_version, compare.challenger_version)
    assert comparison == compare.detail


def check_version_tags(registry: MlflowRegistry) -> None:
    """The decisions are on the MLflow versions too."""
    tags = {info.version: info.tags for info in registry.versions()}
    assert {"promote"} == {tags[v]["fraudops.last_compare_verdict"] for v in (1, 2)}
    assert (CHAMPION, CHALLENGER) == (
        tags[1]["fraudops.last_compare_role"],
        tags[2]["fraudops.last_compare_role"],
    )
    assert float(tags[2]["fraudops.last_compare_difference"]) > 0
    assert "1" == tags[2]["fraudops.previous_champion"]
    assert "loser_replaced" == tags[3]["fraudops.trigger"]
    assert day(DAYS - 7).isoformat() == tags[3]["fraudops.trained_until"]
    assert "warehouse" == tags[3]["fraudops.data_source"]


def check_waiting_then_rollback(warehouse: Warehouse, registry: MlflowRegistry) -> None:
    """Nothing newer than the new challenger's training: wait; then roll back by hand."""
    waited = run_champion_challenger(
        warehouse=warehouse,
        registry=registry,
        options=COMPARE,
        retrain_options=RETRAIN,
        as_of=day(DAYS),
        actor="test",
    )
    assert waited.comparison is not None
    assert ("insufficient_evidence", 0) == (waited.verdict, waited.comparison.rows)
    assert (None, None) == (waited.promotion, waited.replacement)
    assert (2, 3) == (registry.resolve(CHAMPION).version, registry.resolve(CHALLENGER).version)

    restored = rollback(
        registry=registry, warehouse=warehouse, actor="test", reason="pager", settings=None
    )
    assert (1, 2) == (restored.champion, restored.previous)
    assert (1, 3) == (registry.resolve(CHAMPION).version, registry.resolve(CHALLENGER).version)
    latest = warehouse.events(limit=1)[0]
    assert ("rollback", "manual", "rolled_back", "1") == (
        latest.kind,
        latest.trigger,
        latest.verdict,
        latest.champion_version,
    )
    with pytest.raises(ModelOpsError, match="nothing to roll back to"):
        rollback(registry=registry, warehouse=warehouse, actor="test", reason="", settings=None)

    rows = {row.version: row for row in list_models(registry, warehouse)}
    assert [3, 2, 1] == list(rows)
    assert ((CHALLENGER,), (), (CHAMPION,)) == tuple(rows[v].aliases for v in (3, 2, 1))
    assert str(rows[1].last_decision).startswith("rollback: rolled_back (manual)")
    assert str(rows[3].last_decision).startswith("compare: insufficient_evidence")


def test_retraining_without_fraud_in_a_period_fails_clearly_and_is_audited(
    warehouse: Warehouse, registry: MlflowRegistry, drifted: pd.DataFrame
) -> None:
    """Too little history leaves an empty training period: RetrainError, a "failed" audit row."""
    store_history(warehouse, drifted[drifted["trans_date_trans_time"] < "2024-01-12"])

    with pytest.raises(RetrainError, match="has 0 transactions of which 0 fraud"):
        retrain(
            warehouse=warehouse,
            registry=registry,
            options=RETRAIN,
            as_of=day(11),
            trigger="manual",
            actor="test",
        )

    event = warehouse.events()[0]
    assert ("retrain", "failed") == (event.kind, event.verdict)
    assert "it needs both fraud and legitimate" in event.detail["error"]
    assert [] == registry.versions()
