"""`fraudops alerts send`: deliver the alert outbox by e-mail and webhook (fraudops.alerts)."""

import contextlib
from typing import Annotated

import typer

from fraudops.cli.options import fail, user_errors
from fraudops.config import get_settings

alerts_app = typer.Typer(help="Deliver alerts from the warehouse's outbox.")


@alerts_app.command("send")
def send_command(
    *,
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is due now, then exit.")
    ] = False,
) -> None:
    """Deliver due alerts with retries and backoff; until interrupted, or once."""
    from fraudops.alerts.channels import describe
    from fraudops.alerts.sender import AlertSender
    from fraudops.storage.warehouse import Warehouse

    settings = get_settings()
    if not settings.alerts_enabled:
        fail(
            "no alert channel is configured: set FRAUDOPS_SMTP_URL and FRAUDOPS_ALERT_EMAIL_TO, "
            "or FRAUDOPS_ALERT_WEBHOOK_URLS"
        )
    warehouse = Warehouse.from_settings(settings)
    try:
        with user_errors():
            warehouse.migrate()
            sender = AlertSender.from_settings(warehouse, settings)
        if once:
            report = sender.run_once()
            typer.echo(
                f"alerts: {report.delivered} delivered, {report.folded} folded into digests, "
                f"{report.failed} failed, {report.postponed} waiting"
            )
            if report.failed:
                raise typer.Exit(1)
            return
        typer.echo(f"delivering alerts to {describe(sender.channels)}; Ctrl-C stops")
        with contextlib.suppress(KeyboardInterrupt):
            sender.run()
    finally:
        warehouse.dispose()
