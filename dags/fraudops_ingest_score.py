"""Every five minutes: score and store what arrived on the Redis stream since the last run.

`fraudops ingest --source redis` reads the consumer group, sends each batch to the scoring
service (or scores in the task without a service URL) and stores labels. A run lasts at most
`max_seconds` (a stream under steady traffic is never drained): then SIGTERM makes the
ingester deliver and acknowledge what it holds and stop, which counts as success. Entries a
failed run left unacknowledged go to the next one, which uses the same consumer name. One run
at a time.
"""

from datetime import timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param
from fraudops_common import DEFAULT_ARGS, MACROS, START_DATE

with DAG(
    dag_id="fraudops_ingest_score",
    description="Ingest and score the Redis stream of transactions",
    schedule=timedelta(minutes=5),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    default_args={**DEFAULT_ARGS, "retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "stream": Param("fraudops:transactions", type="string"),
        "group": Param("fraudops-ingest", type="string"),
        "consumer": Param("airflow", type="string"),
        "max_seconds": Param(240, type="integer", minimum=1, description="Longest run"),
        "service_url": Param(
            "", type="string", description="Scoring service; empty: score in the task"
        ),
    },
    user_defined_macros=MACROS,
    doc_md=__doc__,
    tags=["fraudops"],
) as dag:
    ingest = BashOperator(
        task_id="ingest",
        # timeout(1) exits 124 when it stopped the ingester: the run's time was up.
        bash_command=(
            'status=0; timeout --kill-after=60 "$MAX_SECONDS" {{ fraudops_bin() }} ingest '
            '--source redis --stream "$STREAM" --group "$GROUP" --consumer "$CONSUMER" '
            '${SERVICE_URL:+--service-url "$SERVICE_URL"} || status=$?; '
            '[ "$status" -eq 0 ] || [ "$status" -eq 124 ] || exit "$status"'
        ),
        env={
            "STREAM": "{{ params.stream }}",
            "GROUP": "{{ params.group }}",
            "CONSUMER": "{{ params.consumer }}",
            "SERVICE_URL": "{{ params.service_url }}",
            "MAX_SECONDS": "{{ params.max_seconds }}",
        },
        append_env=True,
    )
