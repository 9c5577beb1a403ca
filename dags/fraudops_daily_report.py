"""E-mail the daily operations report of the day before, once per day.

`fraudops report daily --send --json` reads the day from the warehouse, queues its report in
the alert outbox under the dedup key `daily_report:D` and delivers it to the configured
channels (FRAUDOPS_SMTP_URL and FRAUDOPS_ALERT_EMAIL_TO, or FRAUDOPS_ALERT_WEBHOOK_URLS); a
day already sent, by this DAG or by the scheduler of `fraudops up`, is not sent again. The
report with its delivery is the XCom; the task fails when the e-mail could not go out (it
stays in the outbox, and the alert sender retries it).
"""

from airflow.sdk import DAG, Param
from fraudops_common import DEFAULT_ARGS, MACROS, START_DATE, fraudops_task

with DAG(
    dag_id="fraudops_daily_report",
    description="E-mail the daily operations report of the day before",
    schedule="0 7 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "date": Param(
            None,
            type=["null", "string"],
            description="Day to report, YYYY-MM-DD (event time, UTC); empty: the day before "
            "the run's logical date",
        )
    },
    user_defined_macros=MACROS,
    doc_md=__doc__,
    tags=["fraudops"],
) as dag:
    report = fraudops_task(
        "report",
        'report daily --send --json --date "$DAY"',
        # A manual run in Airflow 3 may have no logical date: then the day before run_after.
        env={
            "DAY": "{{ params.date or macros.ds_add("
            "(dag_run.logical_date or dag_run.run_after) | ds, -1) }}"
        },
    )
