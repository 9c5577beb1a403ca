"""The `fraudops` command line: each command is a few lines calling the library.

One module per command group: `data` (validate, simulate, feed), `train` (train, backtest,
score), `serve` (serve, ingest, up), `lifecycle` (monitor, retrain, models, quality),
`report` (daily), `alerts` (send), `console`, `keys` and `demo`; shared options and error
handling in `options`. Heavy modules (pandas, FastAPI, the simulator) are imported inside
the commands that use them, so `fraudops --help` and a bad option answer at once.
"""

import os
from typing import Annotated

import typer
from pydantic import ValidationError

from fraudops.cli import alerts, console, data, demo, keys, lifecycle, report, serve, train
from fraudops.cli.options import fail
from fraudops.config import get_settings, setting_problems
from fraudops.logs import configure_logging

__all__ = ["app"]

app = typer.Typer(
    name="fraudops",
    help="Real-time card-fraud detection and its whole MLOps lifecycle.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error (FRAUDOPS_LOG_LEVEL).")
    ] = None,
) -> None:
    """Configure logging once for whichever command runs."""
    # fraudops never talks to the outside world: no MLflow usage telemetry, no progress bars.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # XGBoost's OpenMP threads spin while they wait by default: beside a busy service (or
    # on a loaded machine) a fit then burns several times its CPU (3.8 s -> 16.5 s measured
    # for one 80,000-row fit with two threads). Set before any command loads OpenMP;
    # the processes `up` and `demo` start inherit it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        settings = get_settings()
    except ValidationError as error:  # a FRAUDOPS_* variable of the wrong form
        fail("; ".join(setting_problems(error)))
    if log_level is not None:
        settings = settings.model_copy(update={"log_level": log_level})
    configure_logging(settings)


# In the order `fraudops --help` lists them.
app.command("validate")(data.validate)
app.command("simulate")(data.simulate_command)
app.command("feed")(data.feed_command)
app.command("demo")(demo.demo_command)
app.command("up")(serve.up_command)
app.command("schedule")(serve.schedule_command)
app.command("console")(console.console_command)
app.command("monitor")(lifecycle.monitor_command)
app.command("retrain")(lifecycle.retrain_command)
app.add_typer(lifecycle.models_app, name="models")
app.command("quality")(lifecycle.quality_command)
app.add_typer(report.report_app, name="report")
app.command("backtest")(train.backtest_command)
app.command("train")(train.train_command)
app.command("serve")(serve.serve_command)
app.add_typer(keys.keys_app, name="keys")
app.add_typer(alerts.alerts_app, name="alerts")
app.command("score")(train.score_command)
app.command("ingest")(serve.ingest_command)
