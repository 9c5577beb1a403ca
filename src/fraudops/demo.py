"""The main job on embedded defaults: the closed loop, end to end, in accelerated time.

Simulate eight weeks of card transactions whose fraud changes mid-stream (card testing, a
pattern the first model never saw, starts on `drift_day`); train and register the champion
on the first five weeks; load them into the warehouse; then start the stack (live feed,
scoring service, ingester, scheduler) and stream the last three weeks at a few seconds a
day, labels following two days behind. The loop has to notice the decay on its own, train a
challenger, compare it with the champion on data neither learnt from, promote it and hot-swap
it into the running service. The demo ends with what happened, a plot of performance over
time, and whether every transaction was stored.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import pandas as pd
import structlog

from fraudops.config import Settings
from fraudops.data.profiles import SPARKOV
from fraudops.ingest.backfill import backfill
from fraudops.lifecycle.facade import REPORTS, Lifecycle
from fraudops.lifecycle.registration import train_and_register
from fraudops.lifecycle.scheduler import JobRun
from fraudops.monitoring.policy import Policy
from fraudops.monitoring.timeline import performance_timeline, plot_timeline
from fraudops.registry import ModelRegistry
from fraudops.simulate import SimulationConfig, parse_drift, simulate, write_transactions
from fraudops.simulate.config import ScenarioMix
from fraudops.stack import Stack, StackConfig, StackStatus
from fraudops.storage import LifecycleEvent, Warehouse
from fraudops.training.trainer import TrainingConfig

if TYPE_CHECKING:
    from rich.console import RenderableType

log = structlog.get_logger(__name__)

MS_PER_DAY = 86_400_000


@dataclass(frozen=True, kw_only=True)
class DemoPlan:
    """How much to simulate, where the drift starts, and how fast time runs."""

    cards: int = 1_500
    days: int = 56
    history_days: int = 35  # the champion's world (30-day windows warm); the rest is live
    drift_day: int = 38  # card testing starts (the champion never saw it)
    card_testing_rate: float = 0.004
    seed: int = 7
    label_delay_days: float = 2.0
    seconds_per_day: float = 8.0  # wall seconds per simulated day of the stream
    trials: int = 3
    timeout_s: float = 900.0

    def __post_init__(self) -> None:
        """Refuse plans that leave the loop no room: history, drift and stream must fit."""
        if self.seconds_per_day <= 0 or self.cards < 1 or self.trials < 0:
            msg = (
                "the demo needs seconds_per_day > 0, cards >= 1 and trials >= 0; got "
                f"{self.seconds_per_day:g}, {self.cards} and {self.trials}"
            )
            raise ValueError(msg)
        if not 14 <= self.history_days < self.drift_day < self.days - 7:
            msg = (
                "the demo needs history_days >= 14, history_days < drift_day and at least a week "
                f"of stream after the drift; got history {self.history_days}, drift "
                f"{self.drift_day}, days {self.days}"
            )
            raise ValueError(msg)

    def simulation(self) -> SimulationConfig:
        """Steady fraud without card testing, then card testing from the drift day."""
        return SimulationConfig(
            days=self.days,
            cards=self.cards,
            seed=self.seed,
            scenario_mix=ScenarioMix(
                card_testing=0.0, compromised_merchant=0.5, stolen_credentials=0.5
            ),
            drift=(
                parse_drift(
                    f"scenario@{self.drift_day}:name=card_testing,rate={self.card_testing_rate}"
                ),
            ),
        )

    def policy(self) -> Policy:
        """The loop's policy for this data: a two-day label delay and three-day windows."""
        return Policy(
            label_delay_days=self.label_delay_days,
            performance_window_days=3.0,
            drift_window_days=1.0,
            retrain_history_days=float(self.days),
            retrain_validation_days=3.0,
            retrain_trials=self.trials,
            promotion_margin=0.02,  # a challenger must beat the champion by 0.02 AP or more
        )


@dataclass(kw_only=True)
class DemoResult:
    """What the demo did and found."""

    folder: Path
    history_rows: int
    stream_rows: int
    stored_rows: int
    missing: int
    drift_start: datetime
    stream_start: datetime
    events: list[LifecycleEvent]
    timeline: pd.DataFrame
    plot: Path
    phases: pd.DataFrame
    service_pids: set[int]
    server_errors: int
    wall_seconds: float
    reports: Path
    runs: list[JobRun] = field(default_factory=list)

    @property
    def promotions(self) -> list[LifecycleEvent]:
        """The promotions the loop made, oldest first."""
        return [e for e in reversed(self.events) if e.kind == "promote"]

    @property
    def lost(self) -> bool:
        """Whether any streamed or historic transaction is missing from the warehouse."""
        return self.missing > 0


def run_demo(
    plan: DemoPlan,
    *,
    settings: Settings,
    registry: ModelRegistry,
    status: Callable[[str], None] | None = None,
    watch: Callable[[StackStatus], None] | None = None,
) -> DemoResult:
    """Run the whole loop (see the module doc); `status` hears each step, `watch` the stack."""
    say = status or (lambda _: None)
    began = time.monotonic()
    folder = settings.home.resolve() / "demo"
    folder.mkdir(parents=True, exist_ok=True)

    say(
        f"simulating {plan.days} days of {plan.cards:,} cards "
        f"(card testing from day {plan.drift_day})"
    )
    frame = simulate(plan.simulation())
    times = pd.to_datetime(frame["trans_date_trans_time"])
    start = times.min().normalize()
    stream_start = (start + pd.Timedelta(days=plan.history_days)).to_pydatetime()
    drift_start = (start + pd.Timedelta(days=plan.drift_day)).to_pydatetime()
    history_path = write_transactions(frame[times < stream_start], folder / "history.parquet")
    stream = frame[times >= stream_start].reset_index(drop=True)
    stream_path = write_transactions(stream, folder / "stream.parquet")
    history_rows = int((times < stream_start).sum())

    delay = timedelta(days=plan.label_delay_days)
    say(f"training the champion on {history_rows:,} transactions before {stream_start:%Y-%m-%d}")
    _train_champion(plan, history_path, stream_start - delay, folder, registry)
    say("scoring the history with the champion and storing it in the warehouse")
    _backfill(plan, history_path, settings)

    lifecycle = partial(
        Lifecycle.from_settings,
        registry=registry,
        policy=plan.policy(),
        actor="demo",
        folder=folder,
    )
    reports = folder / REPORTS

    config = StackConfig(
        stream=stream_path,
        speed=86_400.0 / plan.seconds_per_day,
        label_delay=delay,
    )
    runs: list[JobRun] = []
    say(
        f"streaming {len(stream):,} transactions ({plan.days - plan.history_days} days at "
        f"{plan.seconds_per_day:g} s a day), labels {plan.label_delay_days:g} days behind"
    )
    with Stack(
        config=config, settings=settings, lifecycle_factory=lifecycle, on_run=runs.append
    ) as stack:
        pids = _wait_for_stream(stack, rows=len(stream), timeout_s=plan.timeout_s, watch=watch)
        server_errors = _server_errors(stack.service_url)
        warehouse = stack.warehouse
        stack.scheduler.stop(timeout=600)  # let a running job finish before reading results
        stored = warehouse.count_transactions()
        missing = _missing(warehouse, stream)
        events = warehouse.events(limit=500)
        say("measuring the served champion's performance day by day")
        timeline = performance_timeline(
            warehouse,
            stream_start - delay,  # the first day the champion did not learn from
            times.max().to_pydatetime() + timedelta(seconds=1),
            labels_known_by=datetime(9999, 1, 1),
        )
    say("drawing performance over time")
    # Drift, the retrainings monitoring asked for, and the promotions (a loser's replacement
    # happens at its promotion's moment and would only overprint it).
    marks = [(drift_start, "drift starts")] + [
        (e.as_of, _event_label(e))
        for e in reversed(events)
        if e.as_of is not None
        and (e.kind == "promote" or (e.kind == "retrain" and e.trigger != "loser_replaced"))
    ]
    plot = plot_timeline(timeline, marks, folder / "performance.png")
    return DemoResult(
        folder=folder,
        history_rows=history_rows,
        stream_rows=len(stream),
        stored_rows=stored,
        missing=missing,
        drift_start=drift_start,
        stream_start=stream_start,
        events=events,
        timeline=timeline,
        plot=plot,
        phases=phases(timeline, drift_start, events),
        service_pids=pids,
        server_errors=server_errors,
        wall_seconds=time.monotonic() - began,
        reports=reports,
        runs=runs,
    )


def _wait_for_stream(
    stack: Stack, *, rows: int, timeout_s: float, watch: Callable[[StackStatus], None] | None
) -> set[int]:
    """Until every streamed transaction and its label are stored; the service pids seen."""
    pids: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stack.check_alive()
        current = stack.status()
        pids.add(current.service_pid)
        if watch is not None:
            watch(current)
        if current.ingested >= rows and current.labels >= rows:
            return pids
        time.sleep(1.0)
    msg = f"the stream did not finish within {timeout_s:.0f} s"
    raise TimeoutError(msg)


def _train_champion(
    plan: DemoPlan, history: Path, labelled_end: datetime, folder: Path, registry: ModelRegistry
) -> None:
    """Train on the history (labels known before the stream starts) and register v1."""
    train_and_register(
        data=history,
        profile=SPARKOV,
        config=TrainingConfig(
            delay_days=plan.label_delay_days,
            validation_days=3.0,
            trials=plan.trials,
            seed=plan.seed,
            refit=True,
            labelled_end=labelled_end,
        ),
        out_dir=folder / "champion",
        registry=registry,
    )


def _backfill(plan: DemoPlan, history: Path, settings: Settings) -> None:
    """The history into the warehouse, scored by the champion, labels a delay behind."""
    backfill(history, settings, label_delay_ms=int(plan.label_delay_days * MS_PER_DAY))


def phases(
    timeline: pd.DataFrame, drift_start: datetime, events: list[LifecycleEvent]
) -> pd.DataFrame:
    """Mean daily performance before the drift, after it until the promotion, and after that."""
    promoted = next((e.as_of for e in reversed(events) if e.kind == "promote" and e.as_of), None)
    day = pd.to_datetime(timeline["date"])
    bounds = [
        ("before the drift", None, drift_start),
        ("drift, old champion", drift_start, promoted),
    ]
    if promoted is not None:
        bounds.append(("after the promotion", promoted, None))
    rows = []
    for name, low, high in bounds:
        mask = np.ones(len(timeline), dtype=bool)
        if low is not None:
            mask &= (day >= pd.Timestamp(low).normalize()).to_numpy()
        if high is not None:
            mask &= (day < pd.Timestamp(high).normalize()).to_numpy()
        part = timeline[mask]
        rows.append(
            {
                "phase": name,
                "days": len(part),
                "transactions": int(part["transactions"].sum()),
                "frauds": int(part["frauds"].sum()),
                "average_precision": float(part["average_precision"].mean())
                if len(part)
                else np.nan,
                "f1": float(part["f1"].mean()) if len(part) else np.nan,
                "recall": float(part["recall"].mean()) if len(part) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _event_label(event: LifecycleEvent) -> str:
    if event.kind == "promote":
        return f"promoted v{event.champion_version}"
    return f"retrained: v{event.challenger_version}"


def _missing(warehouse: Warehouse, stream: pd.DataFrame) -> int:
    """Streamed transactions the warehouse does not hold."""
    stored = warehouse.records_of(list(stream["trans_num"].astype(str)))
    return len(stream) - len(stored)


def _server_errors(service_url: str) -> int:
    """5xx answers the service counted (from its Prometheus metrics)."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    text = httpx.get(f"{service_url}/metrics", timeout=10).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "fraudops_http_requests"
            for sample in family.samples
            if sample.name.endswith("_total")
            and str(sample.labels.get("status", "")).startswith("5")
            # /readyz answers 503 while the service starts: that is its job, not a failure.
            and str(sample.labels.get("route", "")).startswith("/v1/")
        )
    )


def render_demo(result: DemoResult, settings: Settings) -> "RenderableType":
    """The demo's ending: phases, the loop's decisions, the checks, and where to look next."""
    from rich.console import Group  # noqa: PLC0415 - rich only for the terminal
    from rich.table import Table  # noqa: PLC0415

    phases_table = Table(title="served champion, mean of daily figures (labels: ground truth)")
    for column in ("phase", "days", "transactions", "frauds", "avg precision", "F1", "recall"):
        phases_table.add_column(column, justify="left" if column == "phase" else "right")
    for row in result.phases.itertuples():
        phases_table.add_row(
            str(row.phase),
            str(row.days),
            f"{row.transactions:,}",
            f"{row.frauds:,}",
            f"{row.average_precision:.3f}",
            f"{row.f1:.3f}",
            f"{row.recall:.3f}",
        )
    decisions = Table(title="what the loop decided (audit trail: table lifecycle_events)")
    for column in ("day", "job", "verdict", "models", "why"):
        decisions.add_column(column)
    waited, previous = 0, ""
    for event in reversed(result.events):
        if event.verdict in ("ok", "insufficient_evidence"):
            waited += event.kind == "compare"
            continue
        if event.kind == "monitor" and _evidence(event) == previous:
            continue  # the same alarm again while its challenger waits for a verdict
        previous = _evidence(event) if event.kind == "monitor" else ""
        decisions.add_row(
            "-" if event.as_of is None else f"{event.as_of:%m-%d}",
            event.kind,
            event.verdict,
            _models(event),
            _evidence(event),
        )
    stored_all = result.history_rows + result.stream_rows
    stored_all = result.history_rows + result.stream_rows
    lines = [
        f"comparisons   {waited} more waited for evidence (interval still holding the margin)",
        f"transactions  {result.stored_rows:,} stored of {stored_all:,} sent "
        f"({result.missing} of the stream missing)",
        f"service       pid {', '.join(map(str, sorted(result.service_pids)))} throughout, "
        f"{result.server_errors} server errors; promotions hot-swapped, no restart",
        f"took          {result.wall_seconds / 60:.1f} min",
        f"plot          {result.plot}",
        f"reports       {result.reports}",
        f"mlflow ui     .venv/bin/mlflow ui --backend-store-uri {settings.resolved_tracking_uri}",
    ]
    return Group(phases_table, decisions, *lines)


def _models(event: LifecycleEvent) -> str:
    """Champion and challenger of a decision, as "v1 vs v2"."""
    if event.kind == "promote":
        return f"v{event.champion_version} (was v{event.detail.get('previous_champion')})"
    champion = f"v{event.champion_version}" if event.champion_version else "-"
    challenger = f" vs v{event.challenger_version}" if event.challenger_version else ""
    return champion + challenger


def _evidence(event: LifecycleEvent) -> str:
    """The figures or reasons a decision rested on, in a few words."""
    detail = event.detail
    if event.kind == "monitor":
        return ", ".join(str(r) for r in detail.get("reasons", []))
    if event.kind == "compare":
        diff = detail.get("difference") or {}
        if isinstance(diff, dict) and "estimate" in diff:
            metric = "AP" if detail.get("metric") == "average_precision" else detail.get("metric")
            return (
                f"{metric} {diff['estimate']:+.3f}, 95% interval "
                f"[{diff.get('low', float('nan')):+.3f}, {diff.get('high', float('nan')):+.3f}]"
            )
    if event.kind == "retrain":
        return str(detail.get("error") or f"trigger: {event.trigger}")[:70]
    return event.trigger
