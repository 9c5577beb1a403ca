"""Weekly data-quality checks of the stored transactions; the task fails when a check fails.

`fraudops quality` checks the week before as_of: daily volume against earlier weeks, missing
values, impossible or extreme amounts, label coverage of transactions past the maturity
age, labels of unknown transactions,
unscored transactions, scoring latency, duplicate and late arrivals. Its report is the XCom
when every check passes or warns; on a failure it is in the task log.
"""

from airflow.sdk import DAG, Param
from fraudops_common import (
    AS_OF_ARGUMENT,
    AS_OF_ENV,
    DEFAULT_ARGS,
    MACROS,
    START_DATE,
    fraudops_task,
)

with DAG(
    dag_id="fraudops_data_quality",
    description="Weekly data-quality checks of the warehouse",
    schedule="0 6 * * 1",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "as_of": Param(None, type=["null", "string"], description="Event time (ISO)"),
        "days": Param(7, type="number", exclusiveMinimum=0, description="Days checked"),
    },
    user_defined_macros=MACROS,
    doc_md=__doc__,
    tags=["fraudops"],
) as dag:
    quality = fraudops_task(
        "quality",
        f'quality --json --days "$DAYS" {AS_OF_ARGUMENT}',
        env={**AS_OF_ENV, "DAYS": "{{ params.days }}"},
    )
