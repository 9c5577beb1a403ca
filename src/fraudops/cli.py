"""The `fraudops` command line: each command is a few lines calling the library.

Heavy modules (pandas, FastAPI, the simulator) are imported inside the commands that use
them, so `fraudops --help` and a bad option answer at once.
"""

import json
import os
import time as time_module
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer

from fraudops.config import get_settings
from fraudops.logs import configure_logging

if TYPE_CHECKING:
    from fraudops.config import Settings
    from fraudops.training.trainer import TrainingConfig

DATE_FORMATS_LOOP = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]

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
    settings = get_settings()
    if log_level is not None:
        settings = settings.model_copy(update={"log_level": log_level})
    configure_logging(settings)


# --- validate (fraudops.data) ---------------------------------------------------------------


@app.command()
def validate(
    *,
    data: Annotated[Path, typer.Option(help="Transactions file: .csv, .csv.gz or .parquet.")],
    profile: Annotated[str, typer.Option(help="Dataset profile: built-in, user name or .toml.")],
    on_error: Annotated[
        Literal["reject", "quarantine"],
        typer.Option(help="Refuse the file on any bad row, or set bad rows aside and go on."),
    ] = "reject",
    quarantine_out: Annotated[
        Path | None,
        typer.Option(help="Where quarantined rows go (default: beside the data, .quarantine.csv)."),
    ] = None,
    require_label: Annotated[bool, typer.Option(help="Whether a label column is required.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a transactions file against a dataset profile and report every problem."""
    import json

    from rich.console import Console

    from fraudops.data.profiles import ProfileError, load_profile
    from fraudops.data.readers import DataFileError, validate_file
    from fraudops.data.validation import render_report
    from fraudops.progress import DelayedProgress

    if quarantine_out is not None and on_error != "quarantine":
        raise typer.BadParameter("needs --on-error quarantine", param_hint="--quarantine-out")
    try:
        dataset = load_profile(profile, user_dir=get_settings().user_profiles_dir)
        with DelayedProgress() as progress:
            report = validate_file(
                data,
                dataset,
                on_error=on_error,
                quarantine_path=quarantine_out,
                require_label=require_label,
                progress=progress.update,
            )
    except (ProfileError, DataFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        Console().print(render_report(report))
    raise typer.Exit(1 if report.outcome == "rejected" else 0)


# --- simulate (fraudops.simulate) -----------------------------------------------------------


@app.command("simulate")
def simulate_command(
    *,
    days: Annotated[int, typer.Option(help="Days of transactions to simulate.")],
    cards: Annotated[int, typer.Option(help="Number of cards (one cardholder each).")],
    out: Annotated[str, typer.Option(help="Output file: .parquet, .csv or .csv.gz.")],
    seed: Annotated[
        int | None, typer.Option(help="Seed (FRAUDOPS_SEED); same seed, same data.")
    ] = None,
    merchants: Annotated[
        int | None, typer.Option(help="Number of merchants (default: cards/20, at least 50).")
    ] = None,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2024-01-01",
    fraud_rate: Annotated[
        float, typer.Option(help="Share of transactions that are fraud.")
    ] = 0.005,
    scenario_mix: Annotated[
        str | None,
        typer.Option(help="Fraud shares by scenario, e.g. card_testing=1,stolen_credentials=1."),
    ] = None,
    drift: Annotated[
        list[str] | None,
        typer.Option(help="Drift KIND@DAY[:key=value,...]: scenario, amount or category."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Columns: sparkov or fdh.")
    ] = "sparkov",
) -> None:
    """Simulate card transactions with labelled fraud scenarios and drift, and write them."""
    # pandas, pyarrow and numpy are loaded only when this command runs.
    from datetime import date

    from fraudops.progress import DelayedProgress
    from fraudops.simulate import (
        SimulationConfig,
        output_kind,
        parse_drift,
        parse_scenario_mix,
        simulate,
        summarise,
        to_fdh,
        write_transactions,
    )

    path = Path(out)
    try:
        output_kind(path)
        if output_format not in ("sparkov", "fdh"):
            msg = f"--format must be sparkov or fdh, not {output_format!r}"
            raise ValueError(msg)
        try:
            first_day = date.fromisoformat(start)
        except ValueError:
            msg = f"--start {start!r} is not a date (YYYY-MM-DD)"
            raise ValueError(msg) from None
        config = SimulationConfig(
            days=days,
            cards=cards,
            seed=get_settings().seed if seed is None else seed,
            merchants=merchants,
            start=first_day,
            fraud_rate=fraud_rate,
            drift=tuple(parse_drift(spec) for spec in drift or ()),
            **({"scenario_mix": parse_scenario_mix(scenario_mix)} if scenario_mix else {}),
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    with DelayedProgress() as progress:
        frame = simulate(config, progress=progress.part(0.0, 0.8))
        progress.update("writing", 0.8)
        summary = summarise(frame)
        if output_format == "fdh":
            frame = to_fdh(frame, origin=config.start)
        try:
            write_transactions(frame, path)
        except OSError as exc:
            typer.echo(f"error: cannot write {path}: {exc.strerror}", err=True)
            raise typer.Exit(code=1) from None
    for line in summary.lines():
        typer.echo(line)
    typer.echo(f"written       {path} ({output_format} columns)")


# --- feed (fraudops.feed) ----------------------------------------------------------------


@app.command("feed")
def feed_command(
    *,
    port: Annotated[int, typer.Option(help="TCP port to listen on.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    data: Annotated[
        str | None, typer.Option(help="Transactions file to serve (CSV, CSV.gz or Parquet).")
    ] = None,
    profile: Annotated[
        str, typer.Option(help="Dataset profile of --data (name or .toml); Sparkov-shaped.")
    ] = "sparkov",
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Serve freshly simulated transactions.")
    ] = False,
    days: Annotated[int, typer.Option(help="With --simulate: days of transactions.")] = 30,
    cards: Annotated[int, typer.Option(help="With --simulate: number of cards.")] = 1000,
    seed: Annotated[int | None, typer.Option(help="With --simulate: seed (FRAUDOPS_SEED).")] = None,
    drift: Annotated[
        list[str] | None,
        typer.Option(help="With --simulate: drift event KIND@DAY[:key=value,...]; repeatable."),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="Replay the data's timeline X times real time (60: a minute a second)."),
    ] = None,
    max_wait: Annotated[
        float, typer.Option(help="With --speed: seconds to wait for a due row before a 204.")
    ] = 5.0,
    loop: Annotated[
        bool, typer.Option("--loop", help="At the end replay the data re-stamped, not 410 Gone.")
    ] = False,
    label_delay: Annotated[
        str | None,
        typer.Option(help="Send is_fraud null; serve labels on /labels after this (12h, 7d)."),
    ] = None,
    rate_limit: Annotated[
        str | None, typer.Option(help="Per-client limit such as 5/minute; 429 above it.")
    ] = None,
    max_batch: Annotated[int, typer.Option(help="Largest ?n= a request may ask for.")] = 1000,
) -> None:
    """Serve transactions one request at a time, like the public real-time payments API."""
    # FastAPI, uvicorn and the simulator are loaded only when the feed runs.
    from fraudops.data.profiles import load_profile
    from fraudops.feed import server
    from fraudops.progress import DelayedProgress
    from fraudops.simulate import SimulationConfig, parse_drift

    settings = get_settings()
    try:
        if not 1 <= port <= 65535:
            msg = f"--port must be between 1 and 65535 ({port})"
            raise ValueError(msg)
        options = server.feed_settings(
            speed=speed,
            loop=loop,
            label_delay=label_delay,
            rate_limit=rate_limit,
            max_batch=max_batch,
            max_wait_s=max_wait,
        )
        with DelayedProgress() as progress:
            frame = server.load_feed_frame(
                data=None if data is None else Path(data),
                profile=load_profile(profile, user_dir=settings.user_profiles_dir),
                simulation=SimulationConfig(
                    days=days,
                    cards=cards,
                    seed=settings.seed if seed is None else seed,
                    drift=tuple(parse_drift(spec) for spec in drift or ()),
                )
                if simulate
                else None,
                progress=progress.update,
            )
        feed_app = server.build_feed_app(frame, options)
    except ValueError as exc:
        typer.echo("error: " + "; ".join(line.strip() for line in str(exc).splitlines()), err=True)
        raise typer.Exit(code=2) from None
    server.run_feed_server(feed_app, host=host, port=port)


# --- demo -----------------------------------------------------------------------------------


@app.command("demo")
def demo_command(
    *,
    cards: Annotated[int, typer.Option(help="Number of cards simulated.")] = 1_500,
    seconds_per_day: Annotated[
        float, typer.Option(help="Wall-clock seconds per simulated day of the live stream.")
    ] = 8.0,
    trials: Annotated[int, typer.Option(help="Tuning trials of each training.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the simulation and the models.")] = 7,
) -> None:
    """Run the closed loop end to end on embedded defaults, in accelerated time (a few minutes).

    Simulates six weeks with a fraud pattern that starts mid-stream, trains the champion,
    streams through the live feed, service and ingester, and lets the loop detect the decay,
    retrain, compare, promote and hot-swap. Ends with a summary and a plot.
    """
    from rich.console import Console

    from fraudops.demo import DemoPlan, render_demo, run_demo
    from fraudops.registry import MlflowRegistry

    settings = get_settings()
    console = Console()
    with _user_errors():
        plan = DemoPlan(cards=cards, seconds_per_day=seconds_per_day, trials=trials, seed=seed)
    with _live_status(console) as watch:
        result = run_demo(
            plan,
            settings=settings,
            registry=MlflowRegistry(settings),
            status=lambda line: console.print(f"[bold]>[/bold] {line}"),
            watch=watch,
        )
    console.print(render_demo(result, settings))
    if result.lost or not result.promotions:
        raise typer.Exit(1)


@app.command("up")
def up_command(
    *,
    data: Annotated[
        Path | None,
        typer.Option(help="Transactions the live feed serves (default: simulate 4 weeks)."),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Event time runs this many times faster than real time.")
    ] = 3_600.0,
    label_delay: Annotated[
        str, typer.Option(help="Labels follow this long after (2d, 12h).")
    ] = "7d",
    monitor_every: Annotated[str, typer.Option(help="Monitoring period in event time.")] = "1d",
    challenge_every: Annotated[
        str, typer.Option(help="Champion/challenger period in event time.")
    ] = "1d",
    port: Annotated[int, typer.Option(help="Port of the scoring service.")] = 8000,
) -> None:
    """Run feed, ingester, scoring service, monitoring and champion/challenger together.

    Needs a champion (train one with `fraudops train` or run `fraudops demo` first). The
    scheduler runs on the data's event time; a live status line shows what happens.
    """
    from rich.console import Console

    from fraudops.feed.options import parse_duration
    from fraudops.lifecycle.loop import Lifecycle
    from fraudops.monitoring.policy import load_policy
    from fraudops.registry import MlflowRegistry, ModelNotFoundError
    from fraudops.stack import Stack, StackConfig, StackError

    settings = get_settings()
    console = Console()
    if data is not None and not data.is_file():
        _fail(f"--data {data}: no such file")
    registry = MlflowRegistry(settings)
    with _user_errors():
        try:
            registry.resolve("champion")
        except ModelNotFoundError:
            _fail("no champion is registered: run `fraudops train` (or `fraudops demo`) first")
        policy = load_policy(settings)
        stream = data if data is not None else _simulated_stream(settings)
        config = StackConfig(
            stream=stream,
            speed=speed,
            label_delay=timedelta(seconds=parse_duration(label_delay)),
            monitor_every=timedelta(seconds=parse_duration(monitor_every)),
            challenge_every=timedelta(seconds=parse_duration(challenge_every)),
            service_port=port,
        )

    def lifecycle(stack_settings: Any, warehouse: Any) -> Lifecycle:
        return Lifecycle(
            settings=stack_settings,
            warehouse=warehouse,
            registry=registry,
            policy=policy,
            report_dir=settings.home / "reports",
            out_dir=settings.home / "models",
            actor="up",
        )

    try:
        with (
            _live_status(console) as watch,
            Stack(config=config, settings=settings, lifecycle_factory=lifecycle) as stack,
        ):
            console.print(
                f"scoring service {stack.service_url}  feed {stack.feed_url}  (Ctrl-C stops)"
            )
            try:
                while True:
                    stack.check_alive()
                    watch(stack.status())
                    time_module.sleep(1.0)
            except KeyboardInterrupt:
                console.print("stopping: the running job finishes first")
    except StackError as error:  # a part that would not start or died: the reason, its log
        _fail(str(error), code=1)


def _simulated_stream(settings: "Settings") -> Path:
    """Four weeks of simulated transactions under HOME/up (made once)."""
    from fraudops.simulate import SimulationConfig, simulate, write_transactions

    path = settings.home / "up" / "stream.parquet"
    if not path.exists():
        write_transactions(
            simulate(SimulationConfig(days=28, cards=1_000, seed=settings.seed)), path
        )
    return path


@contextmanager
def _live_status(console: Any) -> Iterator[Any]:
    """A callback showing the stack's state on one live line (a plain line when not a terminal)."""
    from rich.live import Live

    from fraudops.stack import StackStatus

    last_print = [0.0]

    def line(status: StackStatus) -> str:
        when = "-" if status.event_time is None else f"{status.event_time:%Y-%m-%d %H:%M}"
        job = status.running_job or "idle"
        news = ""
        if status.last_run is not None:
            run = status.last_run
            outcome = run.error or _short(run.result)
            news = f" | last {run.job} ({run.due:%m-%d}): {outcome}"
        return (
            f"event time {when} | stored {status.ingested:,} | labels {status.labels:,} | "
            f"champion {status.champion} challenger {status.challenger} | {job}{news}"
        )

    if console.is_terminal:
        with Live(console=console, refresh_per_second=2, transient=True) as live:
            yield lambda status: live.update(line(status))
        return

    def plain(status: StackStatus) -> None:
        if time_module.monotonic() - last_print[0] >= 10.0:
            console.print(line(status), soft_wrap=True)
            last_print[0] = time_module.monotonic()

    yield plain


def _short(result: object) -> str:
    """A job result in a few words for the status line."""
    summary = getattr(result, "summary", None)
    return str(summary() if callable(summary) else result)[:80]


# --- the closed loop (fraudops.monitoring, fraudops.lifecycle) ------------------------------

AsOfOpt = Annotated[
    datetime | None,
    typer.Option(
        formats=DATE_FORMATS_LOOP,
        help="Event-time moment to look from (default: the latest stored transaction).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document (last line).")]
ActorOpt = Annotated[str, typer.Option(help="Who asks, for the audit trail.")]


@app.command("monitor")
def monitor_command(
    *,
    as_of: AsOfOpt = None,
    report_dir: Annotated[
        Path | None, typer.Option(help="Where the HTML report goes (default HOME/reports).")
    ] = None,
    metrics_file: Annotated[
        Path | None, typer.Option(help="Also write the results as Prometheus text to this file.")
    ] = None,
    as_json: JsonOpt = False,
    actor: ActorOpt = "cli",
) -> None:
    """Monitor once: performance with intervals, drift, the policy's verdict; stored, reported."""
    from rich.console import Console

    from fraudops.lifecycle.loop import waiting_challenger
    from fraudops.monitoring.metrics import write_textfile
    from fraudops.monitoring.monitor import render_monitor, run_monitor
    from fraudops.monitoring.policy import load_policy

    settings = get_settings()
    with _lifecycle_errors(), _loop_parts(settings) as (warehouse, registry):
        policy = load_policy(settings)
        result = run_monitor(
            warehouse=warehouse,
            registry=registry,
            policy=policy,
            as_of=as_of,
            report_dir=report_dir or settings.home / "reports",
            trigger="manual",
            actor=actor,
        )
        if metrics_file is not None:
            write_textfile(metrics_file, warehouse)
        waiting = waiting_challenger(registry, policy, result.as_of)
    document = result.to_dict() | {"challenger_waiting": waiting}
    _print_result(document, render_monitor(result), as_json=as_json, console=Console())


@app.command("retrain")
def retrain_command(
    *,
    as_of: AsOfOpt = None,
    trigger: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "manual",
    as_json: JsonOpt = False,
    actor: ActorOpt = "cli",
) -> None:
    """Train on the most recent labelled data in the warehouse and register it as challenger."""
    from rich.console import Console

    from fraudops.lifecycle.notify import notify_service
    from fraudops.lifecycle.retrain import RetrainOptions, retrain
    from fraudops.monitoring.policy import load_policy

    settings = get_settings()
    with _lifecycle_errors(), _loop_parts(settings) as (warehouse, registry):
        result = retrain(
            warehouse=warehouse,
            registry=registry,
            options=RetrainOptions.from_policy(load_policy(settings)),
            as_of=as_of,
            trigger=trigger,
            actor=actor,
            out_dir=settings.home / "models" / f"retrain-{datetime.now():%Y%m%dT%H%M%S}",
        )
        notified = notify_service(settings)
    document = result.to_dict() | {"service": notified}
    _print_result(document, result.summary(), as_json=as_json, console=Console())


models_app = typer.Typer(help="List, compare, promote and roll back registered models.")
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list_command(*, as_json: JsonOpt = False) -> None:
    """Every registered version: aliases, validation metrics, training period, last decision."""
    from rich.console import Console

    from fraudops.lifecycle.models import list_models, render_models

    settings = get_settings()
    with _lifecycle_errors(), _loop_parts(settings) as (warehouse, registry):
        rows = list_models(registry, warehouse)
    _print_result(
        {"models": [row.to_dict() for row in rows]},
        render_models(rows),
        as_json=as_json,
        console=Console(),
    )


@models_app.command("promote")
def models_promote_command(
    version: Annotated[int, typer.Argument(help="Version to make champion.")],
    *,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "manual",
    actor: ActorOpt = "cli",
) -> None:
    """Make a version the champion now; the running service is told to reload."""
    from fraudops.lifecycle.models import promote

    settings = get_settings()
    with _lifecycle_errors(), _loop_parts(settings) as (warehouse, registry):
        outcome = promote(
            version,
            registry=registry,
            warehouse=warehouse,
            actor=actor,
            reason=reason,
            settings=settings,
        )
    typer.echo(outcome.summary())


@models_app.command("rollback")
def models_rollback_command(
    *,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "manual",
    actor: ActorOpt = "cli",
) -> None:
    """Give the champion alias back to the previous champion; the service is told to reload."""
    from fraudops.lifecycle.models import rollback

    settings = get_settings()
    with _lifecycle_errors(), _loop_parts(settings) as (warehouse, registry):
        outcome = rollback(
            registry=registry, warehouse=warehouse, actor=actor, reason=reason, settings=settings
        )
    typer.echo(outcome.summary())


@models_app.command("compare")
def models_compare_command(
    *,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
    actor: ActorOpt = "cli",
    trigger: Annotated[str, typer.Option(help="Why it runs, for the audit trail.")] = "manual",
) -> None:
    """The champion/challenger job: compare, promote with evidence, retrain the loser."""
    from rich.console import Console

    from fraudops.lifecycle.compare import CompareOptions, run_champion_challenger
    from fraudops.lifecycle.retrain import RetrainOptions
    from fraudops.monitoring.policy import load_policy

    settings = get_settings()
    with _lifecycle_errors(), _loop_parts(settings) as (warehouse, registry):
        policy = load_policy(settings)
        outcome = run_champion_challenger(
            warehouse=warehouse,
            registry=registry,
            options=CompareOptions.from_policy(policy),
            retrain_options=RetrainOptions.from_policy(policy),
            as_of=as_of,
            actor=actor,
            trigger=trigger,
            settings=settings,
            out_dir=settings.home / "models",
        )
    _print_result(outcome.to_dict(), outcome.summary(), as_json=as_json, console=Console())


@app.command("quality")
def quality_command(
    *,
    as_of: AsOfOpt = None,
    days: Annotated[float, typer.Option(help="Days of stored data to check.")] = 7.0,
    as_json: JsonOpt = False,
) -> None:
    """Data-quality checks on the stored data; exit code 1 when a check fails."""
    from rich.console import Console

    from fraudops.monitoring.policy import load_policy
    from fraudops.monitoring.quality import render_quality, run_quality

    settings = get_settings()
    with _lifecycle_errors(), _loop_parts(settings) as (warehouse, _):
        report = run_quality(
            warehouse,
            as_of=as_of,
            days=days,
            label_delay_days=load_policy(settings).label_delay_days,
        )
    _print_result(report.to_dict(), render_quality(report), as_json=as_json, console=Console())
    if report.failed:
        raise typer.Exit(1)


@contextmanager
def _loop_parts(settings: Any) -> Iterator[tuple[Any, Any]]:
    """The warehouse (migrated) and the registry the settings name."""
    from fraudops.registry import MlflowRegistry
    from fraudops.storage import Warehouse

    warehouse = Warehouse.from_settings(settings)
    try:
        warehouse.migrate()
        yield warehouse, MlflowRegistry(settings)
    finally:
        warehouse.dispose()


@contextmanager
def _lifecycle_errors() -> Iterator[None]:
    """A missing model, too little data or a bad policy file: one line, exit code 2."""
    from fraudops.registry import ModelNotFoundError
    from fraudops.training.trainer import TrainingError

    with _user_errors():
        try:
            yield
        except (ModelNotFoundError, TrainingError, LookupError) as exc:
            _fail(str(exc))


def _print_result(document: dict[str, Any], readable: Any, *, as_json: bool, console: Any) -> None:
    """One JSON line (for DAGs and scripts) or the readable form."""
    if as_json:
        typer.echo(json.dumps(document, default=str))
    else:
        console.print(readable)


# --- train and backtest (fraudops.training) ------------------------------------------------

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
DataOpt = Annotated[Path, typer.Option(help="Labelled transactions: .csv, .csv.gz or .parquet.")]
ProfileOpt = Annotated[str, typer.Option(help="Dataset profile: built-in, user name or .toml.")]
DelayOpt = Annotated[
    float, typer.Option(help="Label delay in days: a label is used once this old.")
]
TrainStartOpt = Annotated[
    datetime | None, typer.Option(formats=DATE_FORMATS, help="First day of training data.")
]
ModelOpt = Annotated[str, typer.Option("--model", help="xgboost, random_forest or logreg.")]
TrialsOpt = Annotated[int, typer.Option(help="Optuna tuning trials (0: default parameters).")]
TimeoutOpt = Annotated[
    float | None, typer.Option(help="Stop tuning after this many seconds (not reproducible).")
]
ValidationOpt = Annotated[float, typer.Option(help="Days of validation before the delay.")]
FoldsOpt = Annotated[
    int, typer.Option(help="Prequential folds for tuning: validation weeks rolling back in time.")
]
ObjectiveOpt = Annotated[
    str, typer.Option(help="Threshold objective: f1, or cost (missed fraud + review cost).")
]
ReviewCostOpt = Annotated[float, typer.Option(help="Cost of reviewing one alert.")]
SeedOpt = Annotated[int | None, typer.Option(help="Seed (FRAUDOPS_SEED).")]


def _training_config(**options: Any) -> "TrainingConfig":
    """Build the training config from CLI options, or exit 2 with the reason."""
    from fraudops.training.models import MODEL_TYPES
    from fraudops.training.trainer import TrainingConfig

    if options["model_type"] not in MODEL_TYPES:
        _fail(f"--model must be one of {', '.join(MODEL_TYPES)}, not {options['model_type']!r}")
    if options["threshold_objective"] not in ("f1", "cost"):
        _fail(f"--threshold-objective must be f1 or cost, not {options['threshold_objective']!r}")
    if options["delay_days"] < 0 or options["validation_days"] <= 0 or options["trials"] < 0:
        _fail("--delay-days and --trials must be >= 0 and --validation-days > 0")
    if options["folds"] < 1:
        _fail("--folds must be at least 1")
    if options["seed"] is None:
        options["seed"] = get_settings().seed
    return TrainingConfig(**options)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn a bad profile, an unreadable or invalid file or impossible periods into one line."""
    from fraudops.data.profiles import ProfileError
    from fraudops.data.readers import DataFileError
    from fraudops.data.validation import DataValidationError

    try:
        yield
    except DataValidationError as exc:
        # The headline only: `fraudops validate` prints the whole report.
        _fail(f"{str(exc).splitlines()[0]} (run `fraudops validate` for the report)")
    except (ProfileError, DataFileError, ValueError) as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command("backtest")
def backtest_command(
    *,
    data: DataOpt,
    profile: ProfileOpt,
    test_start: Annotated[datetime, typer.Option(formats=DATE_FORMATS, help="First test day.")],
    test_end: Annotated[
        datetime, typer.Option(formats=DATE_FORMATS, help="Last test day (inclusive).")
    ],
    delay_days: DelayOpt,
    scores_out: Annotated[Path, typer.Option(help="Parquet file: transaction id and score.")],
    report_out: Annotated[Path, typer.Option(help="JSON report of the test metrics.")],
    train_start: TrainStartOpt = None,
    model: ModelOpt = "xgboost",
    trials: TrialsOpt = 15,
    tune_timeout: TimeoutOpt = None,
    validation_days: ValidationOpt = 7.0,
    folds: FoldsOpt = 1,
    threshold_objective: ObjectiveOpt = "f1",
    review_cost: ReviewCostOpt = 5.0,
    seed: SeedOpt = None,
) -> None:
    """Train on data known before test-start minus the delay; score and judge the test days."""
    from fraudops.data.profiles import load_profile
    from fraudops.progress import DelayedProgress
    from fraudops.training.workflow import backtest_to_files

    config = _training_config(
        model_type=model,
        delay_days=delay_days,
        validation_days=validation_days,
        folds=folds,
        train_start=train_start,
        trials=trials,
        tune_timeout_s=tune_timeout,
        threshold_objective=threshold_objective,
        review_cost=review_cost,
        seed=seed,
    )
    with _user_errors():
        dataset = load_profile(profile, user_dir=get_settings().user_profiles_dir)
        with DelayedProgress() as progress:
            result = backtest_to_files(
                data=data,
                profile=dataset,
                test_start=test_start,
                test_end=test_end,
                config=config,
                scores_out=scores_out,
                report_out=report_out,
                progress=progress.update,
            )
    _print_metrics(
        f"backtest {result.test_start:%Y-%m-%d} .. {result.test_end:%Y-%m-%d}",
        result.test.to_dict(),
    )
    typer.echo(f"scores        {scores_out} ({len(result.scores):,} transactions)")
    typer.echo(f"report        {report_out}")


def _print_metrics(title: str, metrics: dict[str, float]) -> None:
    """The headline metrics as a small table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:,.4f}" if isinstance(value, float) else f"{value:,}")
    Console().print(table)


@app.command("train")
def train_command(
    *,
    data: DataOpt,
    profile: ProfileOpt,
    train_start: TrainStartOpt = None,
    train_end: Annotated[
        datetime | None,
        typer.Option(formats=DATE_FORMATS, help="Last day of labelled data (default: all)."),
    ] = None,
    delay_days: DelayOpt = 7.0,
    model: ModelOpt = "xgboost",
    trials: TrialsOpt = 15,
    tune_timeout: TimeoutOpt = None,
    validation_days: ValidationOpt = 7.0,
    folds: FoldsOpt = 1,
    threshold_objective: ObjectiveOpt = "f1",
    review_cost: ReviewCostOpt = 5.0,
    seed: SeedOpt = None,
) -> None:
    """Train on labelled data, register the model in MLflow (champion, else challenger)."""
    from fraudops.data.profiles import load_profile
    from fraudops.progress import DelayedProgress
    from fraudops.registry import MlflowRegistry
    from fraudops.training.workflow import train_and_register

    settings = get_settings()
    labelled_end = None
    if train_end is not None:
        labelled_end = train_end + timedelta(days=1) if train_end.time() == time() else train_end
    config = _training_config(
        model_type=model,
        delay_days=delay_days,
        validation_days=validation_days,
        folds=folds,
        train_start=train_start,
        labelled_end=labelled_end,
        trials=trials,
        tune_timeout_s=tune_timeout,
        threshold_objective=threshold_objective,
        review_cost=review_cost,
        seed=seed,
    )
    out_dir = settings.home / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    with _user_errors():
        dataset = load_profile(profile, user_dir=settings.user_profiles_dir)
        with DelayedProgress() as progress:
            trained, version = train_and_register(
                data=data,
                profile=dataset,
                config=config,
                out_dir=out_dir,
                registry=MlflowRegistry(settings),
                progress=progress.update,
            )
    result = trained.result
    _print_metrics("validation", result.validation.to_dict())
    typer.echo(f"registered    {version.name} version {version.version} as {version.alias}")
    typer.echo(f"report        {trained.artifacts['html']}")
    typer.echo(f"mlflow ui     mlflow ui --backend-store-uri {settings.resolved_tracking_uri}")


# --- serve (fraudops.api) -------------------------------------------------------------------


@app.command("serve")
def serve_command(
    *,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(help="Worker processes; above 1 needs FRAUDOPS_REDIS_URL.")
    ] = 1,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Development mode: no API tokens required, one process, announced on every "
            "start and on /healthz. Only this flag turns it on.",
        ),
    ] = False,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (off: metrics count them).")
    ] = False,
) -> None:
    """Serve the scoring API: /v1/score, labels, models, hot reload, health and metrics."""
    import shutil

    import uvicorn

    from fraudops.api.app import create_app
    from fraudops.api.auth import DEV_BANNER, InsecureSettingsError, TokenChecker
    from fraudops.api.metrics import MULTIPROC_ENV

    settings = get_settings()
    if not 1 <= port <= 65535:
        _fail(f"--port must be between 1 and 65535 ({port})")
    if workers < 1:
        _fail("--workers must be at least 1")
    if dev and workers > 1:
        _fail("--dev runs one process: development mode is never passed on to workers")
    try:
        TokenChecker.from_settings(settings, dev=dev)
    except InsecureSettingsError as exc:
        _fail(str(exc))
    if dev:
        where = "" if host in ("127.0.0.1", "localhost", "::1") else f" (listening on {host}!)"
        typer.echo(f"WARNING: {DEV_BANNER}{where}", err=True)
    if workers > 1 and not settings.redis_url:
        _fail(
            "--workers above 1 needs FRAUDOPS_REDIS_URL: in-process feature state is not "
            "shared between workers, so each would see only part of a card's history"
        )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": 30,
    }
    if workers == 1:
        uvicorn.run(create_app(settings, dev=dev), **options)
        return
    metrics_dir = settings.home / "prometheus-multiproc"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(metrics_dir.resolve())
    uvicorn.run("fraudops.api.app:app_from_environment", factory=True, workers=workers, **options)


# --- keys (fraudops.data.personal) ----------------------------------------------------------

keys_app = typer.Typer(help="Rotate the key that stands for card numbers in the warehouse.")
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate-card-hash")
def rotate_card_hash_command(
    *,
    key_out: Annotated[
        Path | None,
        typer.Option(
            help="With FRAUDOPS_CARD_HASH_KEY set: the file the new key chain is written to "
            "(readable by its owner only), for you to put in that variable."
        ),
    ] = None,
) -> None:
    """Add a new key to the card-hash chain and rehash every stored card id with it.

    Stop the scoring services first. The online feature state is dropped (services rebuild
    it on start). Keys are never printed.
    """
    import secrets

    from fraudops.data.personal import KEY_FILE
    from fraudops.storage.warehouse import Warehouse

    settings = get_settings()
    if settings.card_hash_key is not None and key_out is None:
        _fail("FRAUDOPS_CARD_HASH_KEY is set: say where the new key chain goes with --key-out")
    warehouse = Warehouse.from_settings(settings)
    with _user_errors():
        warehouse.migrate()
        rotated = warehouse.rotate_card_key(secrets.token_bytes(32))
    target = key_out if key_out is not None else settings.home / KEY_FILE
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(target, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write("\n".join(rotated.card_keys_text().split(",")) + "\n")
    if settings.redis_url:
        from fraudops.features.redis_store import RedisStateStore

        store = RedisStateStore.from_url(settings.redis_url, prefix=settings.redis_prefix)
        store.clear()
        store.close()
        typer.echo("online feature state in Redis dropped: the services rebuild it on start")
    typer.echo(f"card ids rehashed with a new key; the key chain is in {target}")
    if key_out is not None:
        typer.echo("set FRAUDOPS_CARD_HASH_KEY to its lines joined by commas, then start")


# --- score (fraudops.registry) --------------------------------------------------------------


@app.command("score")
def score_command(
    *,
    data: DataOpt,
    profile: ProfileOpt,
    out: Annotated[Path, typer.Option(help="Parquet file: transaction id, score, decision.")],
    version: Annotated[
        int | None, typer.Option(help="Registered version (default: the champion).")
    ] = None,
) -> None:
    """Score a file of transactions offline with the champion (history within the file)."""
    import numpy as np
    import pandas as pd

    from fraudops.data.profiles import load_profile
    from fraudops.data.readers import load_transactions
    from fraudops.progress import DelayedProgress
    from fraudops.registry import CHAMPION, MlflowRegistry
    from fraudops.scoring.serving import decision_thresholds

    settings = get_settings()
    registry = MlflowRegistry(settings)
    with _user_errors():
        dataset = load_profile(profile, user_dir=settings.user_profiles_dir)
        with DelayedProgress() as progress:
            frame = load_transactions(data, dataset, progress=progress.part(0.0, 0.5)).frame
            chosen = registry.resolve(CHAMPION).version if version is None else version
            bundle = registry.load_version(chosen)
            progress.update("scoring", 0.6)
            scores = bundle.score_frame(frame)
    review, decline = decision_thresholds(bundle, settings)
    decisions = np.select([scores >= decline, scores >= review], ["decline", "review"], "approve")
    id_column = dataset.id_column
    result = pd.DataFrame({id_column: frame[id_column].to_numpy(), "score": scores})
    result["decision"] = decisions
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_parquet(out, index=False)
    counts = result["decision"].value_counts().to_dict()
    typer.echo(f"model         {settings.model_name} version {chosen}")
    typer.echo(
        f"scored        {len(result):,} transactions: "
        + ", ".join(f"{counts.get(d, 0):,} {d}" for d in ("approve", "review", "decline"))
    )
    typer.echo(f"written       {out}")


# --- ingest (fraudops.ingest) ---------------------------------------------------------------


@app.command("ingest")
def ingest_command(
    *,
    source: Annotated[str, typer.Option(help="file (replay), feed (live HTTP) or redis (stream).")],
    data: Annotated[
        Path | None, typer.Option(help="With --source file: .csv, .csv.gz or .parquet.")
    ] = None,
    profile: Annotated[str, typer.Option(help="With --source file: dataset profile.")] = "sparkov",
    speed: Annotated[
        float, typer.Option(help="With --source file: x real time (0: as fast as scored).")
    ] = 0.0,
    label_delay: Annotated[
        str | None,
        typer.Option(help="With --source file: send labels this long after (7d, 12h)."),
    ] = None,
    feed_url: Annotated[str | None, typer.Option(help="With --source feed: its base URL.")] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="With --source redis (default FRAUDOPS_REDIS_URL).")
    ] = None,
    stream: Annotated[str, typer.Option(help="With --source redis: stream key.")] = (
        "fraudops:transactions"
    ),
    group: Annotated[str, typer.Option(help="With --source redis: consumer group.")] = (
        "fraudops-ingest"
    ),
    consumer: Annotated[str, typer.Option(help="With --source redis: consumer name.")] = (
        "ingest-1"
    ),
    service_url: Annotated[
        str | None,
        typer.Option(help="Scoring service URL (default: score in this process)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="Bearer token (default: the first of FRAUDOPS_API_TOKENS)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Transactions per request to the scorer.")] = 500,
    memory_items: Annotated[
        int, typer.Option(help="Items buffered in memory; more spill to disk.")
    ] = 50_000,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Spool, checkpoint, dead letters (default FRAUDOPS_HOME/ingest/...)."),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep running when the source has nothing more.")
    ] = False,
) -> None:
    """Move transactions from a source to the scoring service, and labels to the warehouse."""
    from fraudops.data.profiles import load_profile
    from fraudops.feed import parse_duration
    from fraudops.ingest.app import IngestConfig, ingest
    from fraudops.ingest.runner import IngestOptions
    from fraudops.ingest.sinks import SinkRefusedError
    from fraudops.ingest.sources import SourceError

    settings = get_settings()
    with _user_errors():
        config = IngestConfig(
            source=source,
            data=data,
            profile=load_profile(profile, user_dir=settings.user_profiles_dir),
            speed=speed,
            label_delay_ms=None
            if label_delay is None
            else round(parse_duration(label_delay) * 1000),
            feed_url=feed_url,
            redis_url=redis_url,
            stream=stream,
            group=group,
            consumer=consumer,
            service_url=service_url,
            token=token,
            state_dir=state_dir,
            memory_items=memory_items,
            metrics_port=metrics_port,
            options=IngestOptions(batch_size=batch_size, stop_when_finished=not follow),
        )
        try:
            report = ingest(config, settings)
        except SinkRefusedError as exc:
            _fail(f"{exc} (nothing was lost: the next run sends it again)")
        except SourceError as exc:
            _fail(str(exc))
    typer.echo(
        f"stored        {report.stored:,} transactions ({report.stored_new:,} new, "
        f"{report.stored_duplicates:,} sent again), {report.labels:,} labels"
    )
    typer.echo(f"refused       {report.invalid:,} (dead letters in the state directory)")
    typer.echo(f"retries       {report.retries:,}; {report.left_in_spool:,} left for the next run")
    typer.echo(f"took          {report.seconds:.1f} s")
