"""`fraudops ingest` as a function: build the source, spool and sink a config names, run them.

The state directory (default FRAUDOPS_HOME/ingest/<source>) holds the spool, the file
replay's checkpoint, the feed's labels cursor and the dead-letter file, so running the
same command again resumes where the last run stopped.
"""

import hashlib
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import structlog

from fraudops.config import Settings
from fraudops.data.profile_schema import transaction_schema
from fraudops.data.profiles import SPARKOV, DatasetProfile
from fraudops.ingest.runner import Ingester, IngestMetrics, IngestOptions, IngestReport
from fraudops.ingest.sinks import HttpSink, InProcessSink, Sink
from fraudops.ingest.sources import FileReplaySource, HttpFeedSource, RedisStreamSource, Source
from fraudops.ingest.spool import Spool

if TYPE_CHECKING:
    from fraudops.scoring.service import ScoringService

log = structlog.get_logger(__name__)

SOURCES = ("file", "feed", "redis")


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    """What to ingest from, where to, and how."""

    source: str  # file, feed or redis
    data: Path | None = None
    profile: DatasetProfile = SPARKOV
    speed: float = 0.0
    label_delay_ms: int | None = None
    label_times: bool = False  # file: labels at the file's label_time, not after a delay
    feed_url: str | None = None
    stream: str = "fraudops:transactions"
    group: str = "fraudops-ingest"
    consumer: str = "ingest-1"
    redis_url: str | None = None
    service_url: str | None = None  # None: score in this process
    token: str | None = None
    state_dir: Path | None = None
    memory_items: int = 50_000
    metrics_port: int | None = None
    options: IngestOptions = field(default_factory=IngestOptions)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            msg = f"--source must be one of {', '.join(SOURCES)}, not {self.source!r}"
            raise ValueError(msg)
        if self.source == "file" and self.data is None:
            raise ValueError("--source file needs --data PATH")
        if self.source == "feed" and not self.feed_url:
            raise ValueError("--source feed needs --feed-url URL")
        if self.options.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        if self.label_times and (self.source != "file" or self.label_delay_ms is not None):
            raise ValueError("--label-times needs --source file and no --label-delay")

    def state_path(self, settings: Settings) -> Path:
        """Where this source's spool, checkpoint and dead letters live."""
        if self.state_dir is not None:
            return self.state_dir
        if self.source == "file":
            assert self.data is not None  # noqa: S101 - checked in __post_init__
            key = f"file-{_slug(self.data.name)}-{_digest(str(self.data.resolve()))}"
        elif self.source == "feed":
            key = f"feed-{_digest(str(self.feed_url))}"
        else:
            key = f"redis-{_slug(self.stream)}-{_slug(self.group)}-{_slug(self.consumer)}"
        return settings.home / "ingest" / key


def build_source(config: IngestConfig, settings: Settings, state: Path) -> Source:
    """The source the config names."""
    if config.source == "file":
        assert config.data is not None  # noqa: S101 - checked in IngestConfig
        return FileReplaySource(
            config.data,
            checkpoint=state / "checkpoint.json",
            profile=config.profile,
            speed=config.speed,
            label_delay_ms=config.label_delay_ms,
            label_times=config.label_times,
        )
    if config.source == "feed":
        assert config.feed_url is not None  # noqa: S101 - checked in IngestConfig
        return HttpFeedSource(config.feed_url, state=state / "feed.json")
    url = config.redis_url or settings.redis_url
    if not url:
        raise ValueError("--source redis needs --redis-url or FRAUDOPS_REDIS_URL")
    return RedisStreamSource.from_url(
        url, stream=config.stream, group=config.group, consumer=config.consumer
    )


def ingest(
    config: IngestConfig,
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    metrics: IngestMetrics | None = None,
) -> IngestReport:
    """Run the ingester until the source is finished (everything stored) or `stop` is set."""
    state = config.state_path(settings)
    source = build_source(config, settings, state)
    spool = Spool(
        state / "spool.db", memory_items=config.memory_items, durable=not source.redelivers
    )
    metrics = metrics or IngestMetrics()
    if config.metrics_port is not None:
        from prometheus_client import start_http_server  # noqa: PLC0415

        start_http_server(config.metrics_port, registry=metrics.registry)
    try:
        with _sink(config, settings) as sink:
            ingester = Ingester(
                source,
                sink,
                spool=spool,
                dead_letter=state / "dead-letter.jsonl",
                options=config.options,
                metrics=metrics,
                schema=transaction_schema(config.profile),
            )
            log.info(
                "ingesting",
                source=source.name,
                sink=sink.name,
                state=str(state),
                waiting_from_last_run=len(spool),
            )
            with _stopped_by(stop, ingester):
                return ingester.run()
    finally:
        spool.close()
        source.close()


@contextmanager
def _sink(config: IngestConfig, settings: Settings) -> Iterator[Sink]:
    """The HTTP sink, or a scoring service started in this process for the embedded default."""
    if config.service_url:
        token = config.token or next(iter(settings.scoring_tokens), None)
        sink: Sink = HttpSink(
            config.service_url,
            token=token,
            batch_limit=settings.batch_limit,
            schema=transaction_schema(config.profile),
        )
        try:
            yield sink
        finally:
            sink.close()
        return
    with in_process_service(settings, profile=config.profile) as service:
        yield InProcessSink(service)


@contextmanager
def in_process_service(
    settings: Settings, *, profile: DatasetProfile
) -> Iterator["ScoringService"]:
    """A scoring service started in this process, ready, serving `profile`; stopped after."""
    from fraudops.api.server import settle_process_for_serving  # noqa: PLC0415
    from fraudops.scoring.factory import build_service  # noqa: PLC0415 - MLflow is heavy
    from fraudops.scoring.metrics import ServiceMetrics  # noqa: PLC0415

    service = build_service(settings, metrics=ServiceMetrics())
    # A scoring server in this process: tuned as `fraudops serve` tunes its own.
    service.start(block=True, loaded=settle_process_for_serving)
    reason = service.readiness() or _profile_mismatch(service, profile)
    if reason is not None:
        service.stop()
        msg = f"the scoring service in this process is not ready: {reason}"
        raise RuntimeError(msg)
    try:
        yield service
    finally:
        service.stop()


@contextmanager
def _stopped_by(stop: threading.Event | None, ingester: Ingester) -> Iterator[None]:
    """Stop the ingester on SIGINT/SIGTERM (main thread) or when `stop` is set."""
    if stop is not None:

        def watch(event: threading.Event) -> None:
            event.wait()
            ingester.stop()

        threading.Thread(
            target=watch, args=(stop,), name="fraudops-ingest-stop", daemon=True
        ).start()
    previous = {}
    if threading.current_thread() is threading.main_thread():

        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("stopping: delivering what is spooled", signal=signal.Signals(signum).name)
            ingester.stop()

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handle)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:60]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _profile_mismatch(service: "ScoringService", profile: DatasetProfile) -> str | None:
    """Why the champion cannot score this profile's transactions, if it cannot."""
    champion = service.models.champion
    if champion is None or champion.bundle.spec.profile == profile:
        return None
    served = champion.bundle.spec.profile.name
    return (
        f"the champion serves profile {served!r}, not {profile.name!r}: "
        f"ingest with --profile {served}"
    )
