"""`fraudops monitor`, `retrain`, `models ...` and `quality`: the loop's actions by hand.

Each command opens the lifecycle facade the settings describe and calls one of its actions,
as `fraudops up`, the API and the DAGs (through these commands' `--json`) do.
"""

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from fraudops.cli.options import ActorOpt, AsOfOpt, JsonOpt, lifecycle_errors, print_result
from fraudops.config import get_settings


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
    """Monitor once: performance with intervals, drift, the policy's verdict; stored, reported.

    With --json the document carries the loop's own decision under `decision` (retrain now
    or not, the reasons, the trigger, a waiting challenger), which the DAGs branch on.
    """
    from rich.console import Console

    from fraudops.lifecycle.facade import Lifecycle
    from fraudops.monitoring.metrics import write_textfile
    from fraudops.monitoring.report import render_monitor

    settings = get_settings()
    with lifecycle_errors(), Lifecycle.opened(settings, actor=actor) as opened:
        lifecycle = opened if report_dir is None else replace(opened, report_dir=report_dir)
        decision = lifecycle.monitor(as_of, trigger="manual")
        if metrics_file is not None:
            write_textfile(metrics_file, lifecycle.warehouse)
    print_result(
        decision.to_dict(), render_monitor(decision.result), as_json=as_json, console=Console()
    )


def retrain_command(
    *,
    as_of: AsOfOpt = None,
    trigger: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "manual",
    as_json: JsonOpt = False,
    actor: ActorOpt = "cli",
) -> None:
    """Train on the most recent labelled data in the warehouse and register it as challenger."""
    from rich.console import Console

    from fraudops.lifecycle.facade import Lifecycle

    settings = get_settings()
    with lifecycle_errors(), Lifecycle.opened(settings, actor=actor) as lifecycle:
        result = lifecycle.retrain(as_of, trigger=trigger)
        notified = lifecycle.notify_service()
    document = result.to_dict() | {"service": notified}
    print_result(document, result.summary(), as_json=as_json, console=Console())


models_app = typer.Typer(help="List, compare, promote and roll back registered models.")


@models_app.command("list")
def models_list_command(*, as_json: JsonOpt = False) -> None:
    """Every registered version: aliases, validation metrics, training period, last decision."""
    from rich.console import Console

    from fraudops.lifecycle.facade import Lifecycle
    from fraudops.lifecycle.models import render_models

    settings = get_settings()
    with lifecycle_errors(), Lifecycle.opened(settings, actor="cli") as lifecycle:
        rows = lifecycle.models()
    print_result(
        {"models": [row.to_dict() for row in rows]},
        render_models(rows),
        as_json=as_json,
        console=Console(),
    )


ChangeSchemaOpt = Annotated[
    bool,
    typer.Option(
        "--change-schema",
        help="Allow a champion trained on another data profile: the service then reads that "
        "profile's transaction fields (clients and ingesters must change with it).",
    ),
]


@models_app.command("promote")
def models_promote_command(
    version: Annotated[int, typer.Argument(help="Version to make champion.")],
    *,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "manual",
    actor: ActorOpt = "cli",
    change_schema: ChangeSchemaOpt = False,
) -> None:
    """Make a version the champion now; the running service is told to reload."""
    from fraudops.lifecycle.facade import Lifecycle

    settings = get_settings()
    with lifecycle_errors(), Lifecycle.opened(settings, actor=actor) as lifecycle:
        outcome = lifecycle.promote(version, reason=reason, change_schema=change_schema)
    typer.echo(outcome.summary())


@models_app.command("rollback")
def models_rollback_command(
    *,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "manual",
    actor: ActorOpt = "cli",
    change_schema: ChangeSchemaOpt = False,
) -> None:
    """Give the champion alias back to the previous champion; the service is told to reload."""
    from fraudops.lifecycle.facade import Lifecycle

    settings = get_settings()
    with lifecycle_errors(), Lifecycle.opened(settings, actor=actor) as lifecycle:
        outcome = lifecycle.rollback(reason=reason, change_schema=change_schema)
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

    from fraudops.lifecycle.facade import Lifecycle

    settings = get_settings()
    with lifecycle_errors(), Lifecycle.opened(settings, actor=actor) as lifecycle:
        outcome = lifecycle.challenge(as_of, trigger=trigger)
    print_result(outcome.to_dict(), outcome.summary(), as_json=as_json, console=Console())


def quality_command(
    *,
    as_of: AsOfOpt = None,
    days: Annotated[float, typer.Option(help="Days of stored data to check.")] = 7.0,
    as_json: JsonOpt = False,
) -> None:
    """Data-quality checks on the stored data; exit code 1 when a check fails."""
    from rich.console import Console

    from fraudops.alerts.events import quality_events
    from fraudops.lifecycle.facade import Lifecycle
    from fraudops.monitoring.quality import render_quality

    settings = get_settings()
    with lifecycle_errors(), Lifecycle.opened(settings, actor="cli") as lifecycle:
        report = lifecycle.quality(as_of, days=days)
        rule = lifecycle.warehouse.alert_rule
        if rule is not None and report.failed:
            lifecycle.warehouse.enqueue_alerts(quality_events(report, console_url=rule.console_url))
    print_result(report.to_dict(), render_quality(report), as_json=as_json, console=Console())
    if report.failed:
        raise typer.Exit(1)
