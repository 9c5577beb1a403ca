"""Run by the tests with the Airflow venv's Python: parse the DAGs, or test-run one.

    python airflow_driver.py dags DAGS_FOLDER
    python airflow_driver.py test DAGS_FOLDER DAG_ID [RUN_CONF_JSON]

Prints one line `RESULT <json>` last: the import errors and each DAG's shape, or the run's
state, its task states and their XCom return values. Parses DAGs as Airflow's DAG processor
does (a bundle-aware DagBag, which puts the folder on sys.path for fraudops_common).
"""

import json
import sys
from pathlib import Path
from typing import Any

from airflow.dag_processing.dagbag import BundleDagBag


def load(folder: Path) -> BundleDagBag:
    """The DAG folder parsed as the DAG processor parses a bundle."""
    return BundleDagBag(dag_folder=folder, bundle_path=folder)


def shapes(folder: Path) -> dict[str, Any]:
    """Import errors, and per DAG its schedule, limits and tasks with their downstream tasks."""
    bag = load(folder)
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


def test_run(folder: Path, dag_id: str, conf: dict[str, Any] | None) -> dict[str, Any]:
    """dag.test() of one DAG; the run's state, task states and return values."""
    from airflow.models.xcom import XComModel  # noqa: PLC0415 - needs the configured home
    from airflow.utils.session import create_session  # noqa: PLC0415

    dag = load(folder).get_dag(dag_id)
    if dag is None:
        msg = f"no DAG {dag_id!r} in {folder}"
        raise SystemExit(msg)
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


def main(argv: list[str]) -> None:
    """Dispatch on the first argument and print the result line."""
    command, folder = argv[0], Path(argv[1])
    if command == "dags":
        result = shapes(folder)
    else:
        result = test_run(folder, argv[2], json.loads(argv[3]) if len(argv) > 3 else None)
    sys.stdout.write("RESULT " + json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
