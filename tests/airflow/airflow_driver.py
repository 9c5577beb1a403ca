"""Run by the tests with the Airflow venv's Python: parse the DAGs, then test-run a batch.

    python airflow_driver.py batch DAGS_FOLDER RUNS_JSON

RUNS_JSON is a file holding a list of runs, each `{"name", "dag_id", "conf", "env"}`. One
process (Airflow imported once, the DAG folder parsed once) reports the DAG shapes and then
runs each `dag.test()` in turn, with `env` added to os.environ for that run only (the
BashOperator tasks inherit it). Prints one line `RESULT <json>` last: the import errors and
each DAG's shape, and per run either its state, task states and XCom return values, or the
traceback of what failed, so that one broken run does not hide the others. Parses DAGs as
Airflow's DAG processor does (a bundle-aware DagBag, which puts the folder on sys.path for
fraudops_common).
"""

import json
import os
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow.dag_processing.dagbag import BundleDagBag


def load(folder: Path) -> BundleDagBag:
    """The DAG folder parsed as the DAG processor parses a bundle."""
    return BundleDagBag(dag_folder=folder, bundle_path=folder)


def shapes(bag: BundleDagBag) -> dict[str, Any]:
    """Import errors, and per DAG its schedule, limits and tasks with their downstream tasks."""
    return {
        "errors": {path: str(error) for path, error in bag.import_errors.items()},
        "dags": {
            dag.dag_id: {
                "schedule": str(dag.schedule),
                "max_active_runs": dag.max_active_runs,
                "catchup": dag.catchup,
                "params": sorted(dag.params),
                "tasks": {
                    task.task_id: {
                        "operator": type(task).__name__,
                        "downstream": sorted(task.downstream_task_ids),
                    }
                    for task in dag.tasks
                },
            }
            for dag in bag.dags.values()
        },
    }


@contextmanager
def environment(extra: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `extra` added while the block runs, exactly as before afterwards."""
    saved = dict(os.environ)
    os.environ.update(extra)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def parameters_restored(dag: Any) -> Iterator[None]:
    """The DAG's parameter values as parsed again after the block.

    A task run in process resolves the run's conf into the Param objects its DAG and tasks
    share (even through a deep copy), which would leak into the next run of the same DAG.
    """
    params = [param for holder in (dag, *dag.tasks) for param in holder.params.values()]
    parsed = [(param, param.value) for param in params]
    try:
        yield
    finally:
        for param, value in parsed:
            param.value = value


def test_run(bag: BundleDagBag, dag_id: str, conf: dict[str, Any] | None) -> dict[str, Any]:
    """dag.test() of one DAG; the run's state, task states and return values."""
    from airflow.models.xcom import XComModel  # noqa: PLC0415 - needs the configured home
    from airflow.utils.session import create_session  # noqa: PLC0415

    dag = bag.get_dag(dag_id)
    if dag is None:
        msg = f"no DAG {dag_id!r} in {bag.dag_folder}"
        raise LookupError(msg)
    with parameters_restored(dag):
        run = dag.test(run_conf=conf)
    with create_session() as session:
        states = {
            ti.task_id: None if ti.state is None else str(ti.state)
            for ti in run.get_task_instances(session=session)
        }
        rows = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=dag_id, key="return_value")
        ).all()
        values = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    return {"state": str(run.state), "tasks": states, "xcoms": values}


def batch(folder: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The DAG shapes, then each run's result (or its traceback) by the run's name."""
    bag = load(folder)
    parsed = shapes(bag)
    results: dict[str, Any] = {}
    for run in runs:
        with environment(run.get("env", {})):
            try:
                results[run["name"]] = test_run(bag, run["dag_id"], run.get("conf"))
            except Exception:  # recorded for the test of that run to report
                results[run["name"]] = {"error": traceback.format_exc()}
    return {**parsed, "runs": results}


def main(argv: list[str]) -> None:
    """Run the batch and print the result line."""
    command, folder, runs_file = argv
    if command != "batch":
        msg = f"unknown command {command!r}: expected batch"
        raise SystemExit(msg)
    runs = json.loads(Path(runs_file).read_text(encoding="utf-8"))
    result = batch(Path(folder), runs)
    sys.stdout.write("RESULT " + json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
