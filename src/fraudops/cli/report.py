"""`fraudops report daily [--send]`: the daily operations report (fraudops.monitoring.daily),
printed, and with --send e-mailed once per day through the alert outbox (fraudops.alerts.daily)."""

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from fraudops.cli.options import JsonOpt, fail, print_result, user_errors
from fraudops.config import get_settings

if TYPE_CHECKING:
    from fraudops.alerts.daily import DailyReportDelivery
    from fraudops.config import Settings
    from fraudops.storage.warehouse import Warehouse

report_app = typer.Typer(help="Operations reports on the stored transactions and labels.")


@report_app.command("daily")
def daily_command(
    *,
    day: Annotated[
        str, typer.Option("--date", help="The day to report, YYYY-MM-DD (event time, UTC).")
    ],
    send: Annotated[
        bool,
        typer.Option(
            "--send",
            help="Also send it by e-mail and webhook through the alert outbox, once per day.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Transactions scored, reviews and declines, frauds confirmed, alerts worked and the time
    to label them, the alerts' precision and the models in service, for one day."""
    from rich.console import Console
    from sqlalchemy.exc import SQLAlchemyError

    from fraudops.monitoring.daily import daily_report, render_daily
    from fraudops.storage.warehouse import Warehouse

    reported = _parse_day(day)
    settings = get_settings()
    if send and not settings.alerts_enabled:
        fail(
            "--send needs an alert channel: set FRAUDOPS_SMTP_URL and FRAUDOPS_ALERT_EMAIL_TO, "
            "or FRAUDOPS_ALERT_WEBHOOK_URLS"
        )
    warehouse = Warehouse.from_settings(settings)
    delivery = None
    try:
        with user_errors():
            warehouse.migrate()
            if send:
                delivery = _send(warehouse, reported, settings)
                report = delivery.report
            else:
                report = daily_report(warehouse, reported)
    except SQLAlchemyError as exc:
        # The driver's message may quote the URL's host; never the password, which we omit.
        fail(f"cannot read the warehouse ({type(exc).__name__}): check FRAUDOPS_DATABASE_URL")
    finally:
        warehouse.dispose()
    document = report.to_dict()
    if delivery is not None:
        document["delivery"] = delivery.to_dict()
    print_result(document, render_daily(report), as_json=as_json, console=Console())
    if delivery is not None:
        if not as_json:
            typer.echo(_delivery_line(delivery))
        if delivery.delivered_at is None:
            raise typer.Exit(1)


def _send(warehouse: "Warehouse", day: date, settings: "Settings") -> "DailyReportDelivery":
    """The day's report queued and delivered now to the channels the settings configure."""
    from fraudops.alerts.channels import channels_from_settings
    from fraudops.alerts.daily import send_daily_report

    return send_daily_report(
        warehouse, day, channels_from_settings(settings), console_url=settings.console_url
    )


def _delivery_line(delivery: "DailyReportDelivery") -> str:
    """Where the e-mail stands, in a line."""
    if delivery.delivered_at is None:
        return (
            f"not sent yet ({delivery.error}): {delivery.dedup_key} waits in the outbox, "
            "where the alert sender retries it"
        )
    if delivery.sent_now:
        return f"sent ({delivery.dedup_key})"
    return f"sent before, at {delivery.delivered_at:%Y-%m-%d %H:%M:%S} UTC ({delivery.dedup_key})"


def _parse_day(text: str) -> date:
    """A day the report can cover, or exit 2 with one line."""
    from fraudops.monitoring.daily import report_day

    try:
        return report_day(text)
    except ValueError as error:
        fail(f"--date {error}")
