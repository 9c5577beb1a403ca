"""`fraudops console`: the analyst console (fraudops.console) in its own process."""

from typing import Annotated

import typer

from fraudops.cli.options import fail
from fraudops.config import get_settings

DEFAULT_PORT = 8050


def console_command(
    *,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = DEFAULT_PORT,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Serve the analyst console: review queue, cases and labels, monitoring, models, daily
    report. Log in with a token of FRAUDOPS_ANALYST_TOKENS or FRAUDOPS_ADMIN_TOKENS."""
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from fraudops.api.auth import InsecureSettingsError
    from fraudops.console.app import create_app

    settings = get_settings()
    if not 1 <= port <= 65535:
        fail(f"--port must be between 1 and 65535 ({port})")
    try:
        app = create_app(settings)
    except InsecureSettingsError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"cannot open the warehouse ({type(exc).__name__}): check FRAUDOPS_DATABASE_URL")
    typer.echo(f"fraudops console on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_level=settings.log_level,
        proxy_headers=True,  # Secure cookies behind a TLS proxy that sets X-Forwarded-Proto
        timeout_graceful_shutdown=10,
    )
