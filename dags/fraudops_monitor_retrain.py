"""Monitor the champion daily; retrain a challenger when the policy says so.

monitor -> decide (the decision `fraudops monitor --json` carries: the monitoring run's id,
whether to retrain, the trigger) -> branch -> retrain | no_retrain -> end. The retraining
looks from the same moment as the monitoring and names its reasons as its trigger. Comparing
and promoting is the champion-challenger DAG's job.
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
        """The loop's own decision from `fraudops monitor --json`: run id, moment, whether to
        retrain now (the policy asks and no challenger already learnt from that window), the
        trigger. Nothing is re-decided here."""
        return dict(result["decision"])

    @task.branch
    def branch(decision: dict[str, Any]) -> str:
        """Retrain when the library's decision says so."""
        return "retrain" if decision["retrain"] else "no_retrain"

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
