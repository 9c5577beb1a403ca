"""Monitor the champion daily; retrain a challenger when the policy says so.

monitor -> decide (keeps the monitoring run's id and verdict) -> branch -> retrain | no_retrain
-> end. The retraining looks from the same moment as the monitoring and names its reasons as
its trigger. Comparing and promoting is the champion-challenger DAG's job.
"""

from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param, TriggerRule, task
from fraudops_common import (
    ACTOR,
    AS_OF_ARGUMENT,
    AS_OF_ENV,
    DEFAULT_ARGS,
    MACROS,
    START_DATE,
    fraudops_task,
)

with DAG(
    dag_id="fraudops_monitor_retrain",
    description="Monitor drift and performance; retrain a challenger when needed",
    schedule="0 2 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"as_of": Param(None, type=["null", "string"], description="Event time (ISO)")},
    user_defined_macros=MACROS,
    doc_md=__doc__,
    tags=["fraudops"],
) as dag:
    monitor = fraudops_task(
        "monitor", f"monitor --json --actor {ACTOR} {AS_OF_ARGUMENT}", env=AS_OF_ENV
    )

    @task
    def decide(result: dict[str, Any]) -> dict[str, Any]:
        """The monitoring run's id, moment and verdict, and the retraining trigger."""
        return {
            "run_id": result["run_id"],
            "as_of": result["as_of"],
            "retrain": bool(result["retrain"]),
            # A challenger that already learnt from the window that raised the alarm waits
            # for its comparison: no second retraining (the in-process loop's rule).
            "challenger_waiting": result.get("challenger_waiting"),
            "trigger": "+".join(result["reasons"]) or "monitor",  # as the in-process loop
        }

    @task.branch
    def branch(decision: dict[str, Any]) -> str:
        """Retrain only when monitoring asked for it and no suitable challenger waits."""
        if decision["retrain"] and decision["challenger_waiting"] is None:
            return "retrain"
        return "no_retrain"

    decision = decide(monitor.output)
    retrain = fraudops_task(
        "retrain",
        f'retrain --json --as-of "$AS_OF" --trigger "$TRIGGER" --actor {ACTOR}',
        env={
            "AS_OF": "{{ ti.xcom_pull(task_ids='decide')['as_of'] }}",
            "TRIGGER": "{{ ti.xcom_pull(task_ids='decide')['trigger'] }}",
        },
    )
    no_retrain = EmptyOperator(task_id="no_retrain")
    end = EmptyOperator(task_id="end", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    branch(decision) >> [retrain, no_retrain] >> end
