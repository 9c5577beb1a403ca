"""Wires the feed for the command line: data from a file or the simulator, run under uvicorn."""

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import structlog
import uvicorn
from fastapi import FastAPI

from fraudops.data.profiles import SPARKOV, DatasetProfile
from fraudops.data.readers import DataFileError, load_transactions
from fraudops.feed.app import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_S, create_feed_app
from fraudops.feed.options import RateLimit, parse_duration, parse_rate
from fraudops.feed.ratelimit import SlidingWindowRateLimiter
from fraudops.feed.records import FeedError, check_profile_can_feed
from fraudops.feed.state import TransactionFeed
from fraudops.progress import ProgressCallback
from fraudops.simulate import SimulationConfig, simulate

log = structlog.get_logger(__name__)

MAX_BATCH_CEILING = 100_000


@dataclass(frozen=True, kw_only=True)
class FeedSettings:
    """How the feed serves: pace, end of data, label delay and request limits."""

    speed: float | None = None
    loop: bool = False
    label_delay_s: float | None = None
    label_times: bool = False
    rate_limit: RateLimit | None = None
    max_batch: int = DEFAULT_MAX_BATCH
    max_wait_s: float = DEFAULT_MAX_WAIT_S

    def __post_init__(self) -> None:
        problems = [
            (self.speed is not None and not self.speed > 0, f"--speed must be > 0 ({self.speed})"),
            (
                self.label_delay_s is not None and not self.label_delay_s >= 0,
                f"--label-delay must not be negative ({self.label_delay_s})",
            ),
            (
                not 1 <= self.max_batch <= MAX_BATCH_CEILING,
                f"--max-batch must be between 1 and {MAX_BATCH_CEILING} ({self.max_batch})",
            ),
            (not self.max_wait_s >= 0, f"--max-wait must not be negative ({self.max_wait_s})"),
            (
                self.label_times and self.label_delay_s is not None,
                "give --label-delay (a fixed delay) or --label-times (the data's), not both",
            ),
        ]
        for failed, message in problems:
            if failed:
                raise ValueError(message)


def feed_settings(
    *,
    speed: float | None = None,
    loop: bool = False,
    label_delay: str | None = None,
    label_times: bool = False,
    rate_limit: str | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_wait_s: float = DEFAULT_MAX_WAIT_S,
) -> FeedSettings:
    """Feed settings from command-line text ("5/minute", "7d"); ValueError says what is wrong."""
    return FeedSettings(
        speed=speed,
        loop=loop,
        label_delay_s=None if label_delay is None else parse_duration(label_delay),
        label_times=label_times,
        rate_limit=None if rate_limit is None else parse_rate(rate_limit),
        max_batch=max_batch,
        max_wait_s=max_wait_s,
    )


def load_feed_frame(
    *,
    data: Path | None,
    profile: DatasetProfile | None = None,
    simulation: SimulationConfig | None = None,
    progress: ProgressCallback | None = None,
) -> pd.DataFrame:
    """The rows to serve: a validated Sparkov-shaped file or a fresh simulation, exactly one."""
    if (data is None) == (simulation is None):
        msg = "give exactly one of --data FILE or --simulate"
        raise FeedError(msg)
    if simulation is not None:
        return simulate(simulation, progress=progress)
    assert data is not None  # noqa: S101 - guaranteed by the check above
    check_profile_can_feed(profile or SPARKOV)
    try:
        return load_transactions(data, profile or SPARKOV, progress=progress).frame
    except DataFileError as exc:
        raise FeedError(str(exc)) from exc


def build_feed_app(frame: pd.DataFrame, settings: FeedSettings) -> FastAPI:
    """The feed app over a frame; its virtual clock (under speed) starts now."""
    if settings.label_times and "label_time" not in frame.columns:
        msg = (
            "--label-times needs data with a label_time column "
            "(fraudops simulate --labels realistic writes one)"
        )
        raise FeedError(msg)
    feed = TransactionFeed.from_frame(
        frame,
        speed=settings.speed,
        loop=settings.loop,
        label_delay_s=settings.label_delay_s,
        label_times=settings.label_times,
    )
    limiter = None if settings.rate_limit is None else SlidingWindowRateLimiter(settings.rate_limit)
    log.info(
        "feed_ready",
        rows=feed.size,
        speed=settings.speed,
        loop=settings.loop,
        label_delay_s=settings.label_delay_s,
        label_times=settings.label_times,
        rate_limit=None if settings.rate_limit is None else str(settings.rate_limit),
    )
    return create_feed_app(
        feed, rate_limiter=limiter, max_batch=settings.max_batch, max_wait_s=settings.max_wait_s
    )


def run_feed_server(app: FastAPI, *, host: str, port: int) -> None:
    """Serve the app with uvicorn until interrupted, logging at the process's level."""
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    log.info("feed_listening", url=f"http://{host}:{port}/current-transactions")
    uvicorn.run(app, host=host, port=port, log_level=level)
