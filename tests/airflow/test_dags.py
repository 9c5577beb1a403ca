"""The DAGs in dags/, parsed and run by real Apache Airflow from its own venv (.venv-airflow).

Airflow runs in subprocesses with a private AIRFLOW_HOME and SQLite metadata; the DAG tasks
call the project's real `fraudops` command on an embedded stack (SQLite warehouse, MLflow
registry under FRAUDOPS_HOME) prepared here with the library: simulated traffic whose
amounts triple for the last three days, a champion trained before that, everything scored
and stored with labels two days behind.
"""

import json
import os
import secrets
import subprocess
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis

from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.ingest.app import IngestConfig, ingest
from fraudops.ingest.runner import IngestOptions
from fraudops.lifecycle.registration import train_and_register
from fraudops.monitoring.daily import daily_report
from fraudops.monitoring.quality import run_quality
from fraudops.registry.tracking import MlflowRegistry
from fraudops.simulate import SimulationConfig, parse_drift, simulate, write_transactions
from fraudops.storage import Warehouse
from fraudops.times import utc_now
from fraudops.training.trainer import TrainingConfig
from smtp_server import body_of, running_smtp_server
from warehouse_fill import store_day

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
AIRFLOW_PYTHON = REPO / ".venv-airflow" / "bin" / "python"
DRIVER = Path(__file__).with_name("airflow_driver.py")
FRAUDOPS = REPO / ".venv" / "bin" / "fraudops"
TIMEOUT_S = 280

DAYS = 24
CARDS = 400
HISTORY_DAYS = 14
LABEL_DELAY_DAYS = 2.0
POLICY = f"""\
label_delay_days = {LABEL_DELAY_DAYS}
performance_window_days = 3.0
retrain_history_days = 21.0
retrain_validation_days = 3.0
retrain_trials = 1
"""
# The same, but nothing can trigger a retraining: no floors, no drift large enough.
QUIET_POLICY = f"""\
label_delay_days = {LABEL_DELAY_DAYS}
performance_window_days = 3.0
f1_floor = 0.0
average_precision_floor = 0.0
drift_min_psi = 1000.0
score_drift = false
"""


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    """The Airflow venv's Python; skipped when `make airflow` has not run, except under CI."""
    if not AIRFLOW_PYTHON.is_file():
        message = f"Apache Airflow is not installed in {AIRFLOW_PYTHON.parents[1]}: make airflow"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the Airflow tests must run, not skip)")
        pytest.skip(message)
    return AIRFLOW_PYTHON


@pytest.fixture(scope="session")
def airflow_env(airflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of an Airflow with a home and SQLite metadata of its own, migrated."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "FRAUDOPS_"))
        and key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_CURRENT_TEST")
    }
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    migrate = subprocess.run(
        [str(airflow_python), "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert 0 == migrate.returncode, (migrate.stdout + migrate.stderr)[-4000:]
    return env


def run_airflow(env: Mapping[str, str], *args: str, log: Path) -> dict[str, Any]:
    """Run the driver with the Airflow venv's Python; its RESULT document (output in `log`)."""
    process = subprocess.run(
        [str(AIRFLOW_PYTHON), str(DRIVER), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    output = process.stdout + "\n" + process.stderr
    log.write_text(output, encoding="utf-8")
    results = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    assert 0 == process.returncode and results, f"Airflow failed (log {log}):\n{output[-4000:]}"
    return dict(json.loads(results[-1].removeprefix("RESULT ")))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """An embedded fraudops home: a champion, 24 days scored and stored, the last 3 drifted."""
    home = tmp_path_factory.mktemp("fraudops-home")
    (home / "policy.toml").write_text(POLICY, encoding="utf-8")
    settings = Settings(  # type: ignore[call-arg]
        home=home, database_url=None, tracking_uri=None, redis_url=None, _env_file=None
    )
    frame = simulate(
        SimulationConfig(
            days=DAYS, cards=CARDS, seed=5, drift=(parse_drift(f"amount@{DAYS - 3}:factor=3"),)
        )
    )
    times = pd.to_datetime(frame["trans_date_trans_time"])
    stream_start = (times.min().normalize() + pd.Timedelta(days=HISTORY_DAYS)).to_pydatetime()
    history = write_transactions(frame[times < stream_start], home / "history.parquet")
    everything = write_transactions(frame, home / "transactions.parquet")
    train_and_register(
        data=history,
        profile=SPARKOV,
        config=TrainingConfig(
            delay_days=LABEL_DELAY_DAYS,
            validation_days=3.0,
            trials=1,
            seed=5,
            labelled_end=stream_start - timedelta(days=LABEL_DELAY_DAYS),
        ),
        out_dir=home / "champion",
        registry=MlflowRegistry(settings),
    )
    ingest(
        IngestConfig(
            source="file",
            data=everything,
            label_delay_ms=int(LABEL_DELAY_DAYS * 86_400_000),
            state_dir=home / "ingest",
            options=IngestOptions(batch_size=500),
        ),
        settings,
    )
    return settings


def with_home(env: Mapping[str, str], settings: Settings, **extra: str) -> dict[str, str]:
    """The Airflow environment with the stack's FRAUDOPS_HOME (and more) for its tasks."""
    return {**env, "FRAUDOPS_HOME": str(settings.home), **extra}


def test_every_dag_imports_with_its_tasks_in_order(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    """No import errors; each DAG has its schedule, limits and task graph."""
    result = run_airflow(airflow_env, "dags", str(DAGS), log=tmp_path / "dagbag.log")
    assert {} == result["errors"]
    dags = result["dags"]
    assert {
        "fraudops_ingest_score": {"ingest": []},
        "fraudops_monitor_retrain": {
            "monitor": ["decide"],
            "decide": ["branch"],
            "branch": ["no_retrain", "retrain"],
            "retrain": ["end"],
            "no_retrain": ["end"],
            "end": [],
        },
        "fraudops_champion_challenger": {"compare": []},
        "fraudops_data_quality": {"quality": []},
        "fraudops_daily_report": {"report": []},
    } == {
        dag_id: {task: shape["downstream"] for task, shape in dag["tasks"].items()}
        for dag_id, dag in dags.items()
    }
    assert {
        "fraudops_ingest_score": "0:05:00",
        "fraudops_monitor_retrain": "0 2 * * *",
        "fraudops_champion_challenger": "0 4 * * *",
        "fraudops_data_quality": "0 6 * * 1",
        "fraudops_daily_report": "0 7 * * *",
    } == {dag_id: dag["schedule"] for dag_id, dag in dags.items()}
    assert {1} == {dag["max_active_runs"] for dag in dags.values()}
    assert {False} == {dag["catchup"] for dag in dags.values()}
    fraudops_calls = {"ingest", "monitor", "retrain", "compare", "quality", "report"}
    assert {"BashOperator"} == {
        shape["operator"]
        for dag in dags.values()
        for task, shape in dag["tasks"].items()
        if task in fraudops_calls
    }
    assert ["consumer", "group", "max_seconds", "service_url", "stream"] == dags[
        "fraudops_ingest_score"
    ]["params"]
    assert ["date"] == dags["fraudops_daily_report"]["params"]


def test_monitor_retrain_dag_retrains_a_challenger_on_drift(
    airflow_env: dict[str, str], stack: Settings, tmp_path: Path
) -> None:
    """dag.test(): monitoring finds the drift, the branch retrains, and the warehouse and
    registry hold the monitoring run, the audited retraining and the new challenger."""
    env = with_home(airflow_env, stack)  # FRAUDOPS_BIN unset: <repo>/.venv/bin/fraudops
    result = run_airflow(
        env, "test", str(DAGS), "fraudops_monitor_retrain", log=tmp_path / "run.log"
    )
    assert "success" == result["state"]
    assert {
        "monitor": "success",
        "decide": "success",
        "branch": "success",
        "retrain": "success",
        "no_retrain": "skipped",
        "end": "success",
    } == result["tasks"]
    decision = result["xcoms"]["decide"]
    warehouse = Warehouse.from_settings(stack)
    run = warehouse.monitor_runs()[0]
    assert (run.id, True) == (decision["run_id"], decision["retrain"])
    assert run.retrain and "feature_drift" in run.reasons
    assert "+".join(run.reasons) == decision["trigger"]
    assert warehouse.event_clock() == run.as_of  # no as_of given: the latest event
    retrained = result["xcoms"]["retrain"]
    assert ("challenger", 2) == (retrained["alias"], retrained["version"])
    registry = MlflowRegistry(stack)
    assert (1, 2) == (registry.resolve("champion").version, registry.resolve("challenger").version)
    event = warehouse.events(kind="retrain")[0]
    assert ("airflow", decision["trigger"], "2") == (
        event.actor,
        event.trigger,
        event.challenger_version,
    )
    assert "airflow" == warehouse.events(kind="monitor")[0].actor


def test_monitor_retrain_dag_skips_retraining_when_the_policy_sees_no_reason(
    airflow_env: dict[str, str], stack: Settings, tmp_path: Path
) -> None:
    """A policy nothing can trigger: the branch takes no_retrain; the as_of parameter and the
    fraudops_bin Variable (over FRAUDOPS_BIN) reach the command."""
    quiet = tmp_path / "quiet.toml"
    quiet.write_text(QUIET_POLICY, encoding="utf-8")
    warehouse = Warehouse.from_settings(stack)
    latest = warehouse.event_clock()
    assert latest is not None
    as_of = (latest - timedelta(days=1)).replace(microsecond=0)
    env = with_home(
        airflow_env,
        stack,
        FRAUDOPS_POLICY_FILE=str(quiet),
        FRAUDOPS_BIN="/nonexistent/fraudops",
        AIRFLOW_VAR_FRAUDOPS_BIN=str(FRAUDOPS),
    )
    result = run_airflow(
        env,
        "test",
        str(DAGS),
        "fraudops_monitor_retrain",
        json.dumps({"as_of": as_of.isoformat()}),
        log=tmp_path / "run.log",
    )
    assert "success" == result["state"]
    assert {
        "monitor": "success",
        "decide": "success",
        "branch": "success",
        "retrain": "skipped",
        "no_retrain": "success",
        "end": "success",
    } == result["tasks"]
    decision = result["xcoms"]["decide"]
    run = warehouse.monitor_runs()[0]
    assert (run.id, False, as_of) == (decision["run_id"], decision["retrain"], run.as_of)


def test_data_quality_dag_reports_what_the_library_finds(
    airflow_env: dict[str, str], stack: Settings, tmp_path: Path
) -> None:
    """dag.test() with days=3: the task's XCom is the library's report of those three days."""
    result = run_airflow(
        with_home(airflow_env, stack),
        "test",
        str(DAGS),
        "fraudops_data_quality",
        json.dumps({"days": 3}),
        log=tmp_path / "run.log",
    )
    assert ("success", {"quality": "success"}) == (result["state"], result["tasks"])
    expected = run_quality(
        Warehouse.from_settings(stack), days=3, label_delay_days=LABEL_DELAY_DAYS
    ).to_dict()
    assert expected == result["xcoms"]["quality"]
    assert 3.0 == result["xcoms"]["quality"]["days"]


def test_ingest_score_dag_scores_what_the_redis_stream_holds(
    airflow_env: dict[str, str], stack: Settings, redis_url: str, tmp_path: Path
) -> None:
    """dag.test() on a stream of 40 transactions: all scored by the champion and stored in a
    fresh warehouse, every entry acknowledged, and the run ends within its max_seconds."""
    prefix = f"fraudops-airflow-test-{secrets.token_hex(4)}"
    stream = f"{prefix}:transactions"
    records = pd.read_parquet(stack.home / "transactions.parquet").tail(40)
    records = records.drop(columns=["fraud_scenario", "is_fraud"])
    client = redis.Redis.from_url(redis_url)
    try:
        for record in records.to_dict(orient="records"):
            client.xadd(stream, {"transaction": json.dumps(record)})
        database = tmp_path / "warehouse.db"
        env = with_home(
            airflow_env,
            stack,
            FRAUDOPS_DATABASE_URL=f"sqlite:///{database}",
            FRAUDOPS_REDIS_URL=redis_url,
            FRAUDOPS_REDIS_PREFIX=prefix,
        )
        conf = {"stream": stream, "group": "airflow-test", "consumer": "airflow", "max_seconds": 30}
        result = run_airflow(
            env,
            "test",
            str(DAGS),
            "fraudops_ingest_score",
            json.dumps(conf),
            log=tmp_path / "run.log",
        )
        assert ("success", {"ingest": "success"}) == (result["state"], result["tasks"])
        pending = client.xpending(stream, "airflow-test")
        assert 0 == pending["pending"]
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
    warehouse = Warehouse(f"sqlite:///{database}")
    stored = [warehouse.get_transaction(t) for t in records["trans_num"]]
    assert [] == [t for t, s in zip(records["trans_num"], stored, strict=True) if s is None]
    assert {"1"} == {s.champion.model_version for s in stored if s and s.champion}
    warehouse.dispose()


def test_daily_report_dag_emails_the_report_once(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    """dag.test() with date=2024-03-10 on a warehouse holding that day: one e-mail with its
    figures to a real SMTP server, the report with its delivery as the XCom. Without a date,
    the day before the run's logical date. (That a day is sent once, whoever asks again, is
    the command's rule, tested in tests/integration/test_daily_report_email.py.)"""
    home = tmp_path / "home"
    settings = Settings(home=home, _env_file=None)  # type: ignore[call-arg]
    warehouse = Warehouse.from_settings(settings)
    warehouse.migrate()
    store_day(warehouse)
    warehouse.dispose()
    with running_smtp_server() as smtp:
        env = with_home(
            airflow_env,
            settings,
            FRAUDOPS_SMTP_URL=smtp.url,
            FRAUDOPS_ALERT_EMAIL_TO="fraud-team@example.test",
            FRAUDOPS_CONSOLE_URL="http://console.test",
        )
        runs = [
            run_airflow(
                env,
                "test",
                str(DAGS),
                "fraudops_daily_report",
                json.dumps(conf),
                log=tmp_path / f"run{number}.log",
            )
            for number, conf in enumerate(({"date": "2024-03-10"}, {}))
        ]
    assert [("success", {"report": "success"})] * 2 == [(r["state"], r["tasks"]) for r in runs]
    first, default = (run["xcoms"]["report"] for run in runs)
    expected = daily_report(Warehouse.from_settings(settings), date(2024, 3, 10)).to_dict()
    assert expected == {key: value for key, value in first.items() if key != "delivery"}
    assert (True, True) == (first["delivery"]["queued"], first["delivery"]["delivered"])
    yesterday = (utc_now() - timedelta(days=1)).date().isoformat()
    assert (yesterday, True) == (default["day"], default["empty"])
    subjects = [str(mail["Subject"]) for mail in smtp.inbox.messages]
    assert [
        "[fraudops] Daily operations report 2024-03-10: 7 scored, 2 declines, 3 reviews, "
        "3 frauds confirmed",
        f"[fraudops] Daily operations report {yesterday}: 0 scored, 0 declines, 0 reviews, "
        "0 frauds confirmed",
    ] == subjects
    assert "http://console.test/reports/daily?date=2024-03-10" in body_of(smtp.inbox.messages[0])
