"""`fraudops serve`, `ingest` and `up`: the running parts (fraudops.api, .ingest, .stack)."""

import os
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fraudops.cli.options import fail, live_status, stop_requested, user_errors
from fraudops.config import get_settings

if TYPE_CHECKING:
    from fraudops.config import Settings

WORKER_HEALTHCHECK_SECONDS = 60


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
    from fraudops.scoring.metrics import MULTIPROC_ENV

    settings = get_settings()
    if not 1 <= port <= 65535:
        fail(f"--port must be between 1 and 65535 ({port})")
    if workers < 1:
        fail("--workers must be at least 1")
    if dev and workers > 1:
        fail("--dev runs one process: development mode is never passed on to workers")
    try:
        TokenChecker.from_settings(settings, dev=dev)
    except InsecureSettingsError as exc:
        fail(str(exc))
    if dev:
        where = "" if host in ("127.0.0.1", "localhost", "::1") else f" (listening on {host}!)"
        typer.echo(f"WARNING: {DEV_BANNER}{where}", err=True)
    if workers > 1 and not settings.redis_url:
        fail(
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
    # uvicorn kills a worker that does not answer its supervisor's ping within this many
    # seconds (default 5). A worker loading its models and rebuilding the feature state on a
    # busy machine can take longer than that to answer; killing it would reset the
    # connections it holds, so it gets a minute.
    options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_SECONDS
    uvicorn.run("fraudops.api.app:app_from_environment", factory=True, workers=workers, **options)


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
    label_times: Annotated[
        bool,
        typer.Option(
            "--label-times",
            help="With --source file: send each label at the file's label_time (none without).",
        ),
    ] = False,
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
    with user_errors():
        config = IngestConfig(
            source=source,
            data=data,
            profile=load_profile(profile, user_dir=settings.user_profiles_dir),
            speed=speed,
            label_delay_ms=None
            if label_delay is None
            else round(parse_duration(label_delay) * 1000),
            label_times=label_times,
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
            fail(f"{exc} (nothing was lost: the next run sends it again)")
        except SourceError as exc:
            fail(str(exc))
    typer.echo(
        f"stored        {report.stored:,} transactions ({report.stored_new:,} new, "
        f"{report.stored_duplicates:,} sent again), {report.labels:,} labels"
    )
    typer.echo(f"refused       {report.invalid:,} (dead letters in the state directory)")
    typer.echo(f"retries       {report.retries:,}; {report.left_in_spool:,} left for the next run")
    typer.echo(f"took          {report.seconds:.1f} s")


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
    label_times: Annotated[
        bool,
        typer.Option(
            "--label-times",
            help="Labels arrive at the data's own label_time (fraudops simulate --labels "
            "realistic) instead of --label-delay after their transaction.",
        ),
    ] = False,
    monitor_every: Annotated[str, typer.Option(help="Monitoring period in event time.")] = "1d",
    challenge_every: Annotated[
        str, typer.Option(help="Champion/challenger period in event time.")
    ] = "1d",
    port: Annotated[int, typer.Option(help="Port of the scoring service.")] = 8000,
    console_port: Annotated[int, typer.Option(help="Port of the analyst console.")] = 8050,
) -> None:
    """Run feed, ingester, scoring service, analyst console, monitoring and
    champion/challenger together.

    Needs a champion (train one with `fraudops train` or run `fraudops demo` first). The
    scheduler runs on the data's event time; a live status line shows what happens.
    """
    if data is not None and not data.is_file():  # said at once, before the imports below
        fail(f"--data {data}: no such file")

    from rich.console import Console

    from fraudops.feed.options import parse_duration
    from fraudops.lifecycle.facade import Lifecycle
    from fraudops.monitoring.policy import load_policy
    from fraudops.registry import MlflowRegistry, ModelNotFoundError
    from fraudops.stack import Stack, StackConfig, StackError

    settings = get_settings()
    console = Console()
    registry = MlflowRegistry(settings)
    with user_errors():
        try:
            registry.resolve("champion")
        except ModelNotFoundError:
            fail("no champion is registered: run `fraudops train` (or `fraudops demo`) first")
        policy = load_policy(settings)
        stream = data if data is not None else _simulated_stream(settings)
        config = StackConfig(
            stream=stream,
            speed=speed,
            label_delay=timedelta(seconds=parse_duration(label_delay)),
            label_times=label_times,
            monitor_every=timedelta(seconds=parse_duration(monitor_every)),
            challenge_every=timedelta(seconds=parse_duration(challenge_every)),
            service_port=port,
            console=True,
            console_port=console_port,
        )

    lifecycle = partial(Lifecycle.from_settings, registry=registry, policy=policy, actor="up")

    try:
        with (
            live_status(console) as watch,
            Stack(config=config, settings=settings, lifecycle_factory=lifecycle) as stack,
        ):
            console.print(
                f"scoring service {stack.service_url}  feed {stack.feed_url}  (Ctrl-C stops)"
            )
            console.print(
                f"console {stack.console_url} (log in with a token of FRAUDOPS_ANALYST_TOKENS "
                "or FRAUDOPS_ADMIN_TOKENS)",
                soft_wrap=True,
            )
            with stop_requested() as stop:
                while not stop.is_set():
                    stack.check_alive()
                    watch(stack.status())
                    stop.wait(1.0)
            console.print("stopping: the running job finishes first")
    except StackError as error:  # a part that would not start or died: the reason, its log
        fail(str(error), code=1)


def _simulated_stream(settings: "Settings") -> Path:
    """Four weeks of simulated transactions under HOME/up (made once)."""
    from fraudops.simulate import SimulationConfig, simulate, write_transactions

    path = settings.home / "up" / "stream.parquet"
    if not path.exists():
        write_transactions(
            simulate(SimulationConfig(days=28, cards=1_000, seed=settings.seed)), path
        )
    return path


def schedule_command(
    *,
    monitor_every: Annotated[str, typer.Option(help="Monitoring period in event time.")] = "1d",
    challenge_every: Annotated[
        str, typer.Option(help="Champion/challenger period in event time.")
    ] = "1d",
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    poll_seconds: Annotated[float, typer.Option(help="How often to read the clock.")] = 30.0,
) -> None:
    """Run the loop's scheduler alone: monitoring and champion/challenger on the warehouse.

    `fraudops up` without its feed, ingester and service: for a deployment where those run
    apart (deploy/compose.yaml). Jobs fall due on the warehouse's event-time clock; after a
    promotion the service at FRAUDOPS_SERVICE_URL is told to reload.
    """

    from prometheus_client import CollectorRegistry, Counter, start_http_server

    from fraudops.feed.options import parse_duration
    from fraudops.lifecycle.facade import Lifecycle
    from fraudops.lifecycle.scheduler import EventTimeScheduler, Job, JobRun

    settings = get_settings()
    with user_errors():
        periods = {
            "monitor": timedelta(seconds=parse_duration(monitor_every)),
            "champion-challenger": timedelta(seconds=parse_duration(challenge_every)),
        }
    registry = CollectorRegistry()
    runs = Counter(
        "fraudops_scheduler_job_runs",
        "Scheduled lifecycle jobs run, by job and outcome (ok, failed).",
        ["job", "outcome"],
        registry=registry,
    )
    for job_name in periods:
        for outcome in ("ok", "failed"):
            runs.labels(job=job_name, outcome=outcome)  # present, at 0, from the start

    def count(run: JobRun) -> None:
        runs.labels(job=run.job, outcome="failed" if run.error else "ok").inc()
        typer.echo(f"{run.due:%Y-%m-%d %H:%M} {run.job}: {run.error or run.result}")

    with Lifecycle.opened(settings, actor="scheduler") as lifecycle:
        if metrics_port is not None:
            start_http_server(metrics_port, registry=registry)
        jobs = {"monitor": lifecycle.monitor_job, "champion-challenger": lifecycle.challenge_job}
        scheduler = EventTimeScheduler(
            clock=lifecycle.warehouse.event_clock,
            jobs=[Job(name=name, every=periods[name], run=jobs[name]) for name in periods],
            poll_seconds=poll_seconds,
            on_run=count,
        )
        # Ctrl-C, or SIGTERM when a container is stopped: finish the running job.
        with stop_requested() as stop:
            scheduler.start()
            stop.wait()
        typer.echo("stopping: the running job finishes first")
        scheduler.stop(timeout=600)
