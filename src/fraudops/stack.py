"""The whole embedded stack in one command: feed, service, ingester and the closed loop.

`fraudops up` and `fraudops demo` start it. The live feed, the scoring service and (for
`fraudops up`) the analyst console run as child processes (`fraudops feed`, `fraudops serve`,
`fraudops console`), exactly as in production; the ingester
polls the feed and posts batches to the service, and the scheduler runs the lifecycle jobs
(monitoring with retraining when the policy says so, then champion against challenger) on
the event-time clock of the data, so an accelerated replay runs days of the loop in minutes.
A promotion reaches the service through its reload endpoint: it hot-swaps, no restart.
With an alert channel configured, a thread delivers the alert outbox every few seconds, and
the scheduler queues the daily operations report of each day of event time once it closes.
"""

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx
import structlog

from fraudops.alerts.daily import DailyReportJob
from fraudops.alerts.sender import AlertSender
from fraudops.config import Settings
from fraudops.ingest.app import IngestConfig, ingest
from fraudops.ingest.runner import IngestMetrics, IngestOptions, IngestReport
from fraudops.lifecycle.facade import Lifecycle
from fraudops.lifecycle.scheduler import EventTimeScheduler, Job, JobRun
from fraudops.storage import Warehouse

log = structlog.get_logger(__name__)

READY_TIMEOUT_S = 300.0


class StackError(RuntimeError):
    """A part of the stack failed to start or died."""


def feed_arguments(config: "StackConfig", *, port: int) -> list[str]:
    """The `fraudops feed` command line of the stack's live feed."""
    if config.label_times:
        labels = ["--label-times"]
    else:
        labels = ["--label-delay", f"{config.label_delay / timedelta(hours=1):g}h"]
    return [
        "feed",
        "--port",
        str(port),
        "--data",
        str(config.stream),
        "--speed",
        f"{config.speed:g}",
        *labels,
        "--max-wait",
        "0.5",
    ]


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """What the stack streams, how fast, and how often the loop's jobs run (event time)."""

    stream: Path  # the transactions the live feed serves
    speed: float  # event time runs this many times faster than the wall clock
    label_delay: timedelta
    label_times: bool = False  # labels at the stream's own label_time, not after label_delay
    monitor_every: timedelta = timedelta(days=1)
    challenge_every: timedelta = timedelta(days=1)
    service_port: int | None = None  # None: a free port
    feed_port: int | None = None
    batch_size: int = 500
    poll_seconds: float = 1.0
    console: bool = False  # start the analyst console too
    console_port: int | None = None  # None: a free port


@dataclass
class StackStatus:
    """One look at the running stack, for the live status line."""

    event_time: datetime | None
    ingested: int
    labels: int
    champion: str
    challenger: str
    running_job: str | None
    last_run: JobRun | None
    service_pid: int


@dataclass
class _Child:
    name: str
    process: "subprocess.Popen[bytes]"
    log_path: Path
    log_file: IO[bytes]

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.log_file.close()


@dataclass
class Stack:
    """The running stack; a context manager that starts everything and stops it in order."""

    config: StackConfig
    settings: Settings
    lifecycle_factory: Callable[[Settings, Warehouse], Lifecycle]
    on_run: Callable[[JobRun], None] | None = None
    folder: Path = field(init=False)
    service_url: str = field(init=False, default="")
    feed_url: str = field(init=False, default="")
    console_url: str | None = field(init=False, default=None)
    lifecycle: Lifecycle = field(init=False)
    scheduler: EventTimeScheduler = field(init=False)
    warehouse: Warehouse = field(init=False)
    ingest_metrics: IngestMetrics = field(init=False, default_factory=IngestMetrics)
    ingest_report: IngestReport | None = field(init=False, default=None)
    ingest_error: BaseException | None = field(init=False, default=None)
    _children: list[_Child] = field(init=False, default_factory=list)
    _stop_ingest: threading.Event = field(init=False, default_factory=threading.Event)
    _ingest_thread: threading.Thread | None = field(init=False, default=None)
    _scoring_token: str = field(init=False, default="")
    alert_sender: AlertSender | None = field(init=False, default=None)
    # One client for the stack's own polls (readiness, status): a new client per request
    # would load the TLS certificates each time (about 20 ms of CPU) for plain-HTTP calls.
    _http: httpx.Client = field(init=False, default_factory=lambda: httpx.Client(timeout=2))

    def __post_init__(self) -> None:
        self.folder = self.settings.home.resolve() / "up"
        scoring, admin = "up-" + secrets.token_urlsafe(32), "up-admin-" + secrets.token_urlsafe(32)
        service_port = self.config.service_port or _free_port()
        self.service_url = f"http://127.0.0.1:{service_port}"
        # The stack's own tokens come first (its ingester and its reload notices use them);
        # the ones configured stay valid for everyone else.
        self.settings = self.settings.model_copy(
            update={
                "home": self.settings.home.resolve(),
                "api_tokens": ",".join([scoring, *self.settings.scoring_tokens]),
                "admin_tokens": ",".join([admin, *self.settings.admin_token_list]),
                "service_url": self.service_url,
            }
        )
        self._scoring_token = scoring
        self._service_port = service_port
        self._feed_port = self.config.feed_port or _free_port()
        self.feed_url = f"http://127.0.0.1:{self._feed_port}"
        if self.config.console:
            self._console_port = self.config.console_port or _free_port()
            self.console_url = f"http://127.0.0.1:{self._console_port}"
            if self.settings.console_url is None:  # alerts link to the console started here
                self.settings = self.settings.model_copy(update={"console_url": self.console_url})

    # --- starting and stopping -----------------------------------------------------------------

    def __enter__(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._start_service()
            self._start_feed()
            if self.console_url is not None:
                self._start_console()
            self.warehouse = Warehouse.from_settings(self.settings)
            self.lifecycle = self.lifecycle_factory(self.settings, self.warehouse)
            self.scheduler = EventTimeScheduler(
                clock=self.warehouse.event_clock,
                jobs=[
                    *report_jobs(self.settings, self.warehouse),
                    Job(
                        name="monitor",
                        every=self.config.monitor_every,
                        run=self.lifecycle.monitor_job,
                    ),
                    Job(
                        name="champion-challenger",
                        every=self.config.challenge_every,
                        run=self.lifecycle.challenge_job,
                    ),
                ],
                poll_seconds=self.config.poll_seconds,
                on_run=self.on_run,
            )
            self._start_ingester()
            self.scheduler.start()
            if self.settings.alerts_enabled:
                # Wall-clock rounds in a thread: alerts wait for no event-time schedule.
                self.alert_sender = AlertSender.from_settings(self.warehouse, self.settings)
                self.alert_sender.start()
        except BaseException:
            self._stop_children()
            self._http.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the scheduler (after its running job), the alert sender, the ingester, the feed
        and the service."""
        if hasattr(self, "scheduler"):
            self.scheduler.stop(timeout=600)
        if self.alert_sender is not None:
            self.alert_sender.stop()
        self._stop_ingest.set()
        if self._ingest_thread is not None:
            self._ingest_thread.join(60)
        self._stop_children()
        if hasattr(self, "warehouse"):
            self.warehouse.dispose()
        self._http.close()

    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env |= {
            "FRAUDOPS_HOME": str(self.settings.home),
            "FRAUDOPS_API_TOKENS": self.settings.api_tokens,
            "FRAUDOPS_ADMIN_TOKENS": self.settings.admin_tokens,
            "FRAUDOPS_MODEL_WATCH_SECONDS": "5",
            "FRAUDOPS_LOG_FORMAT": "json",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        if self.settings.console_url:  # the service's decline alerts link to the console
            env["FRAUDOPS_CONSOLE_URL"] = self.settings.console_url
        return env

    def _spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> _Child:
        log_path = self.folder / f"{name}.log"
        log_file = log_path.open("ab")
        command = [str(Path(sys.executable).parent / "fraudops"), *args]
        process = subprocess.Popen(  # noqa: S603 - our own command, no shell
            command, env=self._child_env() | (env or {}), stdout=log_file, stderr=subprocess.STDOUT
        )
        child = _Child(name=name, process=process, log_path=log_path, log_file=log_file)
        self._children.append(child)
        return child

    def _start_service(self) -> None:
        _require_free(self._service_port, "the scoring service")
        child = self._spawn("service", "serve", "--port", str(self._service_port))
        url = f"{self.service_url}/readyz"
        _wait_until_answering(
            self._http, child, url, "the scoring service", timeout=READY_TIMEOUT_S
        )
        log.info("scoring service ready", url=self.service_url, pid=child.process.pid)

    def _start_feed(self) -> None:
        _require_free(self._feed_port, "the feed")
        child = self._spawn("feed", *feed_arguments(self.config, port=self._feed_port))
        _wait_until_answering(self._http, child, f"{self.feed_url}/healthz", "the feed", timeout=60)

    def _start_console(self) -> None:
        """The analyst console on the same warehouse and registry; it tells the service to
        reload after a promotion, and sends analysts' labels through it."""
        _require_free(self._console_port, "the console", option="--console-port")
        child = self._spawn(
            "console",
            "console",
            "--port",
            str(self._console_port),
            env={"FRAUDOPS_SERVICE_URL": self.service_url},
        )
        _wait_until_answering(
            self._http, child, f"{self.console_url}/login", "the console", timeout=60
        )
        log.info("console ready", url=self.console_url, pid=child.process.pid)

    def _start_ingester(self) -> None:
        config = IngestConfig(
            source="feed",
            feed_url=self.feed_url,
            service_url=self.service_url,
            token=self._scoring_token,
            state_dir=self.folder / "ingest",
            options=IngestOptions(
                batch_size=self.config.batch_size, stop_when_finished=False, linger_seconds=0.2
            ),
        )

        def run() -> None:
            try:
                self.ingest_report = ingest(
                    config, self.settings, stop=self._stop_ingest, metrics=self.ingest_metrics
                )
            except BaseException as error:  # reported by status(); the stack keeps running
                log.exception("the ingester stopped")
                self.ingest_error = error

        self._ingest_thread = threading.Thread(target=run, name="fraudops-up-ingest", daemon=True)
        self._ingest_thread.start()

    def _stop_children(self) -> None:
        for child in reversed(self._children):
            child.stop()
        self._children.clear()

    # --- looking at it ---------------------------------------------------------------------------

    @property
    def service_pid(self) -> int:
        """The scoring service's process id (the same before and after a hot swap)."""
        return next(c.process.pid for c in self._children if c.name == "service")

    def check_alive(self) -> None:
        """Raise StackError if a child process or the ingester died."""
        for child in self._children:
            if child.process.poll() is not None:
                code = child.process.returncode
                msg = f"{child.name} exited with code {code}; see {child.log_path}"
                raise StackError(msg)
        if self.ingest_error is not None:
            raise StackError(f"the ingester stopped: {self.ingest_error}")

    def status(self) -> StackStatus:
        """Event time, counts, the models in service and the scheduler's latest news."""
        registry = self.ingest_metrics.registry
        stored = sum(
            registry.get_sample_value("fraudops_ingest_stored_total", {"outcome": outcome}) or 0.0
            for outcome in ("new", "duplicate")
        )
        labels = registry.get_sample_value("fraudops_ingest_labels_total") or 0.0
        try:
            models = self._http.get(f"{self.service_url}/v1/models", headers=self._auth()).json()
            champion = _version(models.get("champion"))
            challenger = _version(models.get("challenger"))
        except (httpx.HTTPError, ValueError):
            champion = challenger = "?"
        history = self.scheduler.history
        return StackStatus(
            event_time=self.warehouse.event_clock(),
            ingested=int(stored),
            labels=int(labels),
            champion=champion,
            challenger=challenger,
            running_job=self.scheduler.running,
            last_run=history[-1] if history else None,
            service_pid=self.service_pid,
        )

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._scoring_token}"}


def report_jobs(settings: Settings, warehouse: Warehouse) -> list[Job]:
    """With alerts on, the daily report's e-mail, queued when event time passes midnight UTC
    (scheduled first, so that a long retraining does not hold it up); the alert sender
    delivers it. Without an alert channel, none."""
    if not settings.alerts_enabled:
        return []
    job = DailyReportJob(warehouse, console_url=settings.console_url)
    return [Job(name="daily-report", every=timedelta(days=1), run=job)]


def _version(model: object) -> str:
    if isinstance(model, dict) and model.get("version") is not None:
        return f"v{model['version']}"
    return "-"


def _wait_until_answering(
    http: httpx.Client, child: _Child, url: str, part: str, *, timeout: float
) -> None:
    """Wait until `url` answers 200; StackError naming `part` and its log if the child exits
    first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            msg = f"{part} exited at start; see {child.log_path}"
            raise StackError(msg)
        try:
            if http.get(url).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    msg = f"{part} was not ready in {timeout:.0f} s; see {child.log_path}"
    raise StackError(msg)


def _require_free(port: int, part: str, *, option: str = "--port") -> None:
    """Refuse a port another program listens on: its /readyz would pass for our service's."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            msg = (
                f"port {port} for {part} is in use ({error.strerror}); choose another with {option}"
            )
            raise StackError(msg) from error


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
