"""The DAGs in dags/, parsed and run by real Apache Airflow from its own venv (.venv-airflow).

What runs where: the `airflow_batch` fixture prepares everything once and runs every DAG run
in ONE Airflow process (tests/airflow/airflow_driver.py: Airflow imported and the DAG folder
parsed once), then the tests only assert on what it recorded. It prepares:

- an Airflow home with SQLite metadata, migrated (`airflow db migrate`);
- an embedded fraudops stack (SQLite warehouse, MLflow registry under FRAUDOPS_HOME) made
  with the library: simulated traffic whose amounts triple for the last three days, a
  champion trained before that, everything scored by it and stored with labels two days
  behind (fraudops.ingest.backfill);
- a Redis stream of 40 of those transactions, under a key prefix of its own;
- a second home whose warehouse holds one reported day, and a real SMTP server (aiosmtpd).

The runs, in this order (each with its own environment, which its bash tasks inherit):
monitor-retrain with drift (retrains challenger v2), monitor-retrain under a quiet policy,
data-quality, ingest-score from the stream (scored by champion v1, into a fresh warehouse),
daily-report for 2024-03-10 and without a date. Each run's failure is recorded with its
traceback, so one broken run fails only its own test.

Under pytest-xdist one worker does all this, under a file lock in the session's shared
temporary folder, and writes the results as JSON; the other workers read that JSON. The
Redis keys are deleted and the SMTP server stopped as soon as the batch has ended.
"""

import json
import os
import secrets
import subprocess
import traceback
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
from filelock import FileLock

from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.ingest.backfill import backfill
from fraudops.lifecycle.registration import train_and_register
from fraudops.monitoring.daily import daily_report
from fraudops.monitoring.quality import run_quality
from fraudops.registry.tracking import MlflowRegistry
from fraudops.simulate import SimulationConfig, parse_drift, simulate, write_transactions
from fraudops.storage import MonitorRun, Warehouse
from fraudops.times import utc_now
from fraudops.training.trainer import TrainingConfig
from smtp_server import body_of, running_smtp_server
from warehouse_fill import store_day

# Each worker's first test here waits for the whole batch (migrate, stack, every DAG run).
pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
AIRFLOW_PYTHON = REPO / ".venv-airflow" / "bin" / "python"
DRIVER = Path(__file__).with_name("airflow_driver.py")
FRAUDOPS = REPO / ".venv" / "bin" / "fraudops"
MIGRATE_TIMEOUT_S = 280
BATCH_TIMEOUT_S = 600

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
STREAM_GROUP = "airflow-test"
REPORT_DAY = "2024-03-10"


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    """The Airflow venv's Python; skipped when `make airflow` has not run, except under CI."""
    if not AIRFLOW_PYTHON.is_file():
        message = f"Apache Airflow is not installed in {AIRFLOW_PYTHON.parents[1]}: make airflow"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the Airflow tests must run, not skip)")
        pytest.skip(message)
    return AIRFLOW_PYTHON


def migrated_airflow_env(airflow_python: Path, home: Path) -> dict[str, str]:
    """The environment of an Airflow with a home and SQLite metadata of its own, migrated."""
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
        timeout=MIGRATE_TIMEOUT_S,
        check=False,
    )
    assert 0 == migrate.returncode, (migrate.stdout + migrate.stderr)[-4000:]
    return env


def stack_settings(home: Path) -> Settings:
    """The embedded stack's settings: everything under `home`, nothing from the environment."""
    return Settings(  # type: ignore[call-arg]
        home=home, database_url=None, tracking_uri=None, redis_url=None, _env_file=None
    )


def build_stack(home: Path) -> Settings:
    """An embedded fraudops home: a champion, 24 days scored and stored, the last 3 drifted."""
    home.mkdir(parents=True)
    (home / "policy.toml").write_text(POLICY, encoding="utf-8")
    settings = stack_settings(home)
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
    backfill(everything, settings, label_delay_ms=int(LABEL_DELAY_DAYS * 86_400_000))
    return settings


def stream_records(stack_home: Path) -> pd.DataFrame:
    """The 40 transactions put on the Redis stream: the stack's last, without their labels."""
    records = pd.read_parquet(stack_home / "transactions.parquet").tail(40)
    return records.drop(columns=["fraud_scenario", "is_fraud"])


def report_settings(home: Path) -> Settings:
    """A home whose warehouse holds the reported day (tests/warehouse_fill.py)."""
    settings = Settings(home=home, _env_file=None)  # type: ignore[call-arg]
    warehouse = Warehouse.from_settings(settings)
    warehouse.migrate()
    store_day(warehouse)
    warehouse.dispose()
    return settings


def run_batch(env: dict[str, str], runs: list[dict[str, Any]], *, folder: Path) -> dict[str, Any]:
    """The driver's RESULT document for these runs, in one Airflow process (output in a log)."""
    runs_file = folder / "runs.json"
    runs_file.write_text(json.dumps(runs), encoding="utf-8")
    process = subprocess.run(
        [str(AIRFLOW_PYTHON), str(DRIVER), "batch", str(DAGS), str(runs_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=BATCH_TIMEOUT_S,
        check=False,
    )
    output = process.stdout + "\n" + process.stderr
    log = folder / "batch.log"
    log.write_text(output, encoding="utf-8")
    results = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    assert 0 == process.returncode and results, f"Airflow failed (log {log}):\n{output[-4000:]}"
    return dict(json.loads(results[-1].removeprefix("RESULT ")))


def stack_runs(stack: Settings, *, quiet_policy: Path, as_of: datetime) -> list[dict[str, Any]]:
    """Monitor-retrain with drift (it retrains), then under the quiet policy; data-quality."""
    home = {"FRAUDOPS_HOME": str(stack.home)}
    quiet = home | {
        "FRAUDOPS_POLICY_FILE": str(quiet_policy),
        "FRAUDOPS_BIN": "/nonexistent/fraudops",
        "AIRFLOW_VAR_FRAUDOPS_BIN": str(FRAUDOPS),
    }
    return [
        {"name": "monitor_drift", "dag_id": "fraudops_monitor_retrain", "env": home},
        {
            "name": "monitor_quiet",
            "dag_id": "fraudops_monitor_retrain",
            "conf": {"as_of": as_of.isoformat()},
            "env": quiet,
        },
        {"name": "quality", "dag_id": "fraudops_data_quality", "conf": {"days": 3}, "env": home},
    ]


def ingest_run(stack: Settings, *, redis_url: str, prefix: str, database: Path) -> dict[str, Any]:
    """Ingest-score from the stream under `prefix`, scored by the stack's champion."""
    return {
        "name": "ingest_score",
        "dag_id": "fraudops_ingest_score",
        "conf": {
            "stream": f"{prefix}:transactions",
            "group": STREAM_GROUP,
            "consumer": "airflow",
            "max_seconds": 30,
        },
        "env": {
            "FRAUDOPS_HOME": str(stack.home),
            "FRAUDOPS_DATABASE_URL": f"sqlite:///{database}",
            "FRAUDOPS_REDIS_URL": redis_url,
            "FRAUDOPS_REDIS_PREFIX": prefix,
        },
    }


def report_runs(report: Settings, *, smtp_url: str) -> list[dict[str, Any]]:
    """Daily-report for REPORT_DAY, then without a date, sending to the SMTP server."""
    env = {
        "FRAUDOPS_HOME": str(report.home),
        "FRAUDOPS_SMTP_URL": smtp_url,
        "FRAUDOPS_ALERT_EMAIL_TO": "fraud-team@example.test",
        "FRAUDOPS_CONSOLE_URL": "http://console.test",
    }
    return [
        {
            "name": "report_day",
            "dag_id": "fraudops_daily_report",
            "conf": {"date": REPORT_DAY},
            "env": env,
        },
        {"name": "report_default", "dag_id": "fraudops_daily_report", "env": env},
    ]


def produce_batch(folder: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Prepare the stack, stream, report warehouse and SMTP server; run every DAG run once."""
    env = migrated_airflow_env(request.getfixturevalue("airflow_python"), folder / "airflow")
    stack = build_stack(folder / "fraudops-home")
    quiet_policy = folder / "quiet.toml"
    quiet_policy.write_text(QUIET_POLICY, encoding="utf-8")
    warehouse = Warehouse.from_settings(stack)
    latest = warehouse.event_clock()
    warehouse.dispose()
    assert latest is not None
    as_of = (latest - timedelta(days=1)).replace(microsecond=0)
    runs = stack_runs(stack, quiet_policy=quiet_policy, as_of=as_of)
    try:
        redis_url = request.getfixturevalue("redis_url")
        skipped = None
    except pytest.skip.Exception as skip:
        redis_url, skipped = None, str(skip)
    prefix = f"fraudops-airflow-test-{secrets.token_hex(4)}"
    database = folder / "ingest-warehouse.db"
    report = report_settings(folder / "report-home")
    client = None if redis_url is None else redis.Redis.from_url(redis_url)
    try:
        if client is not None and redis_url is not None:
            for record in stream_records(stack.home).to_dict(orient="records"):
                client.xadd(f"{prefix}:transactions", {"transaction": json.dumps(record)})
            runs.append(ingest_run(stack, redis_url=redis_url, prefix=prefix, database=database))
        with running_smtp_server() as smtp:
            runs += report_runs(report, smtp_url=smtp.url)
            yesterday = (utc_now() - timedelta(days=1)).date().isoformat()
            result = run_batch(env, runs, folder=folder)
            mails = [
                {"subject": str(mail["Subject"]), "body": body_of(mail)}
                for mail in smtp.inbox.messages
            ]
        pending = None if client is None else pending_entries(client, f"{prefix}:transactions")
    finally:
        if client is not None:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
            client.close()
    return {
        "result": result,
        "stack_home": str(stack.home),
        "quiet_as_of": as_of.isoformat(),
        "ingest": {"skipped": skipped, "database": str(database), "pending": pending},
        "report_home": str(report.home),
        "yesterday": yesterday,
        "mails": mails,
    }


def pending_entries(client: redis.Redis, stream: str) -> int | str:
    """How many of the stream's entries the group has not acknowledged (or why none can say)."""
    try:
        return int(client.xpending(stream, STREAM_GROUP)["pending"])
    except redis.RedisError as error:
        return f"no pending count: {error}"


@pytest.fixture(scope="session")
def airflow_batch(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[str, Any]:
    """The batch's recorded results, produced once per session whatever the workers."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return produce_batch(tmp_path_factory.mktemp("airflow-batch"), request)
    # pytest-xdist's documented pattern: the first worker produces, the others read.
    shared = tmp_path_factory.getbasetemp().parent
    document = shared / "airflow-batch.json"
    with FileLock(str(document) + ".lock"):
        if not document.is_file():
            try:
                produced = produce_batch(shared / "airflow-batch", request)
            except pytest.skip.Exception as skip:
                produced = {"skipped": str(skip)}
            except (Exception, pytest.fail.Exception):
                produced = {"failed": traceback.format_exc()}
            document.write_text(json.dumps(produced, default=str), encoding="utf-8")
        batch: dict[str, Any] = json.loads(document.read_text(encoding="utf-8"))
    if "skipped" in batch:
        pytest.skip(batch["skipped"])
    if "failed" in batch:
        pytest.fail(f"the Airflow batch failed in another worker or this one:\n{batch['failed']}")
    return batch


def run_of(batch: dict[str, Any], name: str) -> dict[str, Any]:
    """One run's recorded result; the test fails with the run's traceback if it broke."""
    run: dict[str, Any] = batch["result"]["runs"][name]
    assert "error" not in run, f"the {name} run failed:\n{run['error']}"
    return run


def monitor_run(warehouse: Warehouse, run_id: int) -> MonitorRun:
    """The stored monitoring run with this id."""
    runs = [run for run in warehouse.monitor_runs() if run.id == run_id]
    assert 1 == len(runs), f"no monitoring run {run_id}"
    return runs[0]


def test_every_dag_imports_with_its_tasks_in_order(airflow_batch: dict[str, Any]) -> None:
    """No import errors; each DAG has its schedule, limits and task graph."""
    result = airflow_batch["result"]
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


def test_monitor_retrain_dag_retrains_a_challenger_on_drift(airflow_batch: dict[str, Any]) -> None:
    """dag.test(): monitoring finds the drift, the branch retrains, and the warehouse and
    registry hold the monitoring run, the audited retraining and the new challenger."""
    result = run_of(airflow_batch, "monitor_drift")  # FRAUDOPS_BIN unset: <repo>/.venv/...
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
    stack = stack_settings(Path(airflow_batch["stack_home"]))
    warehouse = Warehouse.from_settings(stack)
    run = monitor_run(warehouse, decision["run_id"])
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
    monitored = [e for e in warehouse.events(kind="monitor") if e.detail["run_id"] == run.id]
    assert ["airflow"] == [e.actor for e in monitored]
    warehouse.dispose()


def test_monitor_retrain_dag_skips_retraining_when_the_policy_sees_no_reason(
    airflow_batch: dict[str, Any],
) -> None:
    """A policy nothing can trigger: the branch takes no_retrain; the as_of parameter and the
    fraudops_bin Variable (over FRAUDOPS_BIN) reach the command."""
    result = run_of(airflow_batch, "monitor_quiet")
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
    warehouse = Warehouse.from_settings(stack_settings(Path(airflow_batch["stack_home"])))
    run = monitor_run(warehouse, decision["run_id"])
    as_of = datetime.fromisoformat(airflow_batch["quiet_as_of"])
    assert (False, as_of) == (decision["retrain"], run.as_of)
    assert not run.retrain
    warehouse.dispose()


def test_data_quality_dag_reports_what_the_library_finds(airflow_batch: dict[str, Any]) -> None:
    """dag.test() with days=3: the task's XCom is the library's report of those three days."""
    result = run_of(airflow_batch, "quality")
    assert ("success", {"quality": "success"}) == (result["state"], result["tasks"])
    warehouse = Warehouse.from_settings(stack_settings(Path(airflow_batch["stack_home"])))
    expected = run_quality(warehouse, days=3, label_delay_days=LABEL_DELAY_DAYS).to_dict()
    warehouse.dispose()
    assert expected == result["xcoms"]["quality"]
    assert 3.0 == result["xcoms"]["quality"]["days"]


def test_ingest_score_dag_scores_what_the_redis_stream_holds(
    airflow_batch: dict[str, Any],
) -> None:
    """dag.test() on a stream of 40 transactions: all scored by the champion and stored in a
    fresh warehouse, every entry acknowledged, and the run ends within its max_seconds."""
    ingested = airflow_batch["ingest"]
    if ingested["skipped"] is not None:
        pytest.skip(ingested["skipped"])
    result = run_of(airflow_batch, "ingest_score")
    assert ("success", {"ingest": "success"}) == (result["state"], result["tasks"])
    assert 0 == ingested["pending"]
    records = stream_records(Path(airflow_batch["stack_home"]))
    warehouse = Warehouse(f"sqlite:///{ingested['database']}")
    stored = [warehouse.get_transaction(t) for t in records["trans_num"]]
    assert [] == [t for t, s in zip(records["trans_num"], stored, strict=True) if s is None]
    assert {"1"} == {s.champion.model_version for s in stored if s and s.champion}
    warehouse.dispose()


def test_daily_report_dag_emails_the_report_once(airflow_batch: dict[str, Any]) -> None:
    """dag.test() with date=2024-03-10 on a warehouse holding that day: one e-mail with its
    figures to a real SMTP server, the report with its delivery as the XCom. Without a date,
    the day before the run's logical date. (That a day is sent once, whoever asks again, is
    the command's rule, tested in tests/integration/test_daily_report_email.py.)"""
    runs = [run_of(airflow_batch, name) for name in ("report_day", "report_default")]
    assert [("success", {"report": "success"})] * 2 == [(r["state"], r["tasks"]) for r in runs]
    first, default = (run["xcoms"]["report"] for run in runs)
    settings = Settings(home=Path(airflow_batch["report_home"]), _env_file=None)  # type: ignore[call-arg]
    warehouse = Warehouse.from_settings(settings)
    expected = daily_report(warehouse, date.fromisoformat(REPORT_DAY)).to_dict()
    warehouse.dispose()
    assert expected == {key: value for key, value in first.items() if key != "delivery"}
    assert (True, True) == (first["delivery"]["queued"], first["delivery"]["delivered"])
    yesterday = airflow_batch["yesterday"]
    assert (yesterday, True) == (default["day"], default["empty"])
    mails = airflow_batch["mails"]
    assert [
        "[fraudops] Daily operations report 2024-03-10: 7 scored, 2 declines, 3 reviews, "
        "3 frauds confirmed",
        f"[fraudops] Daily operations report {yesterday}: 0 scored, 0 declines, 0 reviews, "
        "0 frauds confirmed",
    ] == [mail["subject"] for mail in mails]
    assert "http://console.test/reports/daily?date=2024-03-10" in mails[0]["body"]
