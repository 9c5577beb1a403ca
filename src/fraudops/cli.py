"""The `fraudops` command line: each command is a few lines calling the library."""

from typing import Annotated

import typer

from fraudops.config import get_settings
from fraudops.logs import configure_logging

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
    settings = get_settings()
    if log_level is not None:
        settings = settings.model_copy(update={"log_level": log_level})
    configure_logging(settings)


# --- validate (fraudops.data) ---------------------------------------------------------------

# --- simulate (fraudops.simulate) -----------------------------------------------------------

# --- feed (fraudops.simulate.feed) ----------------------------------------------------------

# --- demo -----------------------------------------------------------------------------------
