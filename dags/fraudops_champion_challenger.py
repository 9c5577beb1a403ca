"""Compare the challenger with the champion daily; promote it when the evidence says so.

One task: `fraudops models compare` scores both on recent labelled data neither learnt from,
promotes the challenger if it is better by the policy's margin with confidence (telling the
service to reload), and retrains the loser as the next challenger. Its verdict is the XCom.
"""

from airflow.sdk import DAG, Param
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
    dag_id="fraudops_champion_challenger",
    description="Champion against challenger: promote with evidence, retrain the loser",
    schedule="0 4 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"as_of": Param(None, type=["null", "string"], description="Event time (ISO)")},
    user_defined_macros=MACROS,
    doc_md=__doc__,
    tags=["fraudops"],
) as dag:
    compare = fraudops_task(
        "compare",
        f"models compare --json {AS_OF_ARGUMENT} --actor {ACTOR} --trigger schedule",
        env=AS_OF_ENV,
    )
