"""structlog configuration shared by the CLI, the services and the jobs."""

import logging
import sys
from typing import TextIO

import structlog

from fraudops.config import Settings


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    """A logger on the current sys.stderr, so a swapped stream (tests, CliRunner) is honoured."""
    return structlog.PrintLogger(file=sys.stderr)


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stdlib handler that writes to whatever sys.stderr is at the time of each record."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        """The stream is always the current sys.stderr; assignments are ignored."""


def configure_logging(settings: Settings) -> None:
    """Route structlog and stdlib logging to stderr, as console text or JSON lines."""
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=False)
    # httpx logs every request at INFO: an ingester sends several a second.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
