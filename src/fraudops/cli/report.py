"""`fraudops report daily`: the daily operations report (fraudops.monitoring.daily)."""

from typing import TYPE_CHECKING, Annotated

if TYPE_CHECKING:
    from datetime import date

import typer

from fraudops.cli.options import JsonOpt, fail, print_result
from fraudops.config import get_settings

report_app = typer.Typer(help="Operations reports on the stored transactions and labels.")


@report_app.command("daily")
def daily_command(
    *,
    day: Annotated[
        str, typer.Option("--date", help="The day to report, YYYY-MM-DD (event time, UTC).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Transactions scored, reviews and declines, frauds confirmed, alerts worked and the time
    to label them, the alerts' precision and the models in service, for one day."""
    from rich.console import Console
    from sqlalchemy.exc import SQLAlchemyError

    from fraudops.monitoring.daily import daily_report, render_daily
    from fraudops.storage.warehouse import Warehouse

    reported = _parse_day(day)
    warehouse = Warehouse.from_settings(get_settings())
    try:
        warehouse.migrate()
        report = daily_report(warehouse, reported)
    except SQLAlchemyError as exc:
        # The driver's message may quote the URL's host; never the password, which we omit.
        fail(f"cannot read the warehouse ({type(exc).__name__}): check FRAUDOPS_DATABASE_URL")
    finally:
        warehouse.dispose()
    print_result(report.to_dict(), render_daily(report), as_json=as_json, console=Console())


def _parse_day(text: str) -> "date":
    """A day the report can cover, or exit 2 with one line."""
    from fraudops.monitoring.daily import report_day

    try:
        return report_day(text)
    except ValueError as error:
        fail(f"--date {error}")
