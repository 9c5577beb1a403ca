"""What the fraudops DAGs share: each task runs the project's `fraudops` command in bash.

Airflow lives in a virtual environment of its own (its pins conflict with the project's), so
the DAGs never import fraudops: they call its command line, whose `--json` commands print
one line of JSON last, which becomes the task's XCom. The command is the Airflow Variable
`fraudops_bin`, else the worker's FRAUDOPS_BIN, else `<repo>/.venv/bin/fraudops`; fraudops
reads its settings (FRAUDOPS_HOME, FRAUDOPS_DATABASE_URL, ...) from the worker's environment.
"""

import json
import os
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.bash import BashOperator

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BIN = REPO / ".venv" / "bin" / "fraudops"
BIN_VARIABLE = "fraudops_bin"
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
ACTOR = "airflow"

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "fraudops",
    "retries": 0,  # a job that trains or promotes is not repeated blindly
    "execution_timeout": timedelta(hours=2),
}

# fraudops writes its logs to stderr, which Airflow merges into stdout; its stdout is kept
# aside and printed once the command has ended, so that the last line is its JSON.
_SCRIPT = """set -euo pipefail
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
status=0
{{ fraudops_bin() }} %s > "$out" || status=$?
cat "$out"
exit "$status"
"""

# The optional `as_of` parameter of every DAG (an ISO date-time in event time, UTC): empty
# means the latest stored transaction's time, which suits live traffic and replays alike.
AS_OF_ENV = {"AS_OF": "{{ params.as_of or '' }}"}
AS_OF_ARGUMENT = '${AS_OF:+--as-of "$AS_OF"}'


def fraudops_bin() -> str:
    """The fraudops command for this task, quoted for bash (resolved when the task runs)."""
    from airflow.sdk import Variable  # noqa: PLC0415 - only inside a running task

    fallback = os.environ.get("FRAUDOPS_BIN") or str(DEFAULT_BIN)
    return shlex.quote(str(Variable.get(BIN_VARIABLE, default=fallback)))


MACROS = {"fraudops_bin": fraudops_bin}


def last_json_line(output: str) -> Any:
    """The command's JSON result (its last line), or a clear error when it printed none."""
    try:
        return json.loads(output)
    except json.JSONDecodeError:
        msg = f"fraudops printed no JSON as its last line: {output[:500]!r}"
        raise ValueError(msg) from None


def fraudops_task(
    task_id: str, arguments: str, *, env: dict[str, str] | None = None, **kwargs: Any
) -> BashOperator:
    """A task running `fraudops ARGUMENTS` (bash words; may use the env given) whose XCom is
    its JSON result; the worker's environment, FRAUDOPS_* settings included, passes through."""
    return BashOperator(
        task_id=task_id,
        bash_command=_SCRIPT % arguments,
        env=env or {},
        append_env=True,
        output_processor=last_json_line,
        **kwargs,
    )
