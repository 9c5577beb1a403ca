"""What the commands share: option types, the one-line errors, JSON or readable output."""

import json
import signal
import threading
import time as time_module
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from fraudops.config import get_settings

if TYPE_CHECKING:
    from fraudops.training.trainer import TrainingConfig

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
DataOpt = Annotated[Path, typer.Option(help="Labelled transactions: .csv, .csv.gz or .parquet.")]
ProfileOpt = Annotated[str, typer.Option(help="Dataset profile: built-in, user name or .toml.")]
DelayOpt = Annotated[
    float, typer.Option(help="Label delay in days: a label is used once this old.")
]
TrainStartOpt = Annotated[
    datetime | None, typer.Option(formats=DATE_FORMATS, help="First day of training data.")
]
ModelOpt = Annotated[str, typer.Option("--model", help="xgboost, random_forest or logreg.")]
TrialsOpt = Annotated[int, typer.Option(help="Optuna tuning trials (0: default parameters).")]
TimeoutOpt = Annotated[
    float | None, typer.Option(help="Stop tuning after this many seconds (not reproducible).")
]
ValidationOpt = Annotated[float, typer.Option(help="Days of validation before the delay.")]
FoldsOpt = Annotated[
    int, typer.Option(help="Prequential folds for tuning: validation weeks rolling back in time.")
]
ObjectiveOpt = Annotated[
    str, typer.Option(help="Threshold objective: f1, or cost (missed fraud + review cost).")
]
ReviewCostOpt = Annotated[float, typer.Option(help="Cost of reviewing one alert.")]
ReviewCapacityOpt = Annotated[
    float | None,
    typer.Option(
        help="Alerts per day the analysts can review; sets the review threshold "
        "(FRAUDOPS_REVIEW_CAPACITY; unset: half the decline threshold)."
    ),
]
SeedOpt = Annotated[int | None, typer.Option(help="Seed (FRAUDOPS_SEED).")]
FeatureGroupsOpt = Annotated[
    str | None,
    typer.Option(
        help="Optional feature groups, comma-separated, or 'none' (default: the kept ones)."
    ),
]
LabelWindowLagOpt = Annotated[
    float | None,
    typer.Option(
        help="Days before each transaction where the label windows (merchant risk, the card's "
        "fraud history) end (default: 0 where the data's labels arrive before the delay, "
        "else --delay-days)."
    ),
]
AsOfOpt = Annotated[
    datetime | None,
    typer.Option(
        formats=DATE_FORMATS,
        help="Event-time moment to look from (default: the latest stored transaction).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document (last line).")]
ActorOpt = Annotated[str, typer.Option(help="Who asks, for the audit trail.")]


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a bad profile, an unreadable or invalid file or impossible periods into one line."""
    from fraudops.data.profiles import ProfileError
    from fraudops.data.readers import DataFileError
    from fraudops.data.validation import DataValidationError

    try:
        yield
    except DataValidationError as exc:
        # The headline only: `fraudops validate` prints the whole report.
        fail(f"{str(exc).splitlines()[0]} (run `fraudops validate` for the report)")
    except (ProfileError, DataFileError, ValueError) as exc:
        fail(str(exc))


@contextmanager
def lifecycle_errors() -> Iterator[None]:
    """A missing model, too little data or a bad policy file: one line, exit code 2."""
    from fraudops.registry import ModelNotFoundError
    from fraudops.training.trainer import TrainingError

    with user_errors():
        try:
            yield
        except (ModelNotFoundError, TrainingError, LookupError) as exc:
            fail(str(exc))


def print_result(document: dict[str, Any], readable: Any, *, as_json: bool, console: Any) -> None:
    """One JSON line (for DAGs and scripts) or the readable form."""
    if as_json:
        typer.echo(json.dumps(document, default=str))
    else:
        console.print(readable)


def training_config(**options: Any) -> "TrainingConfig":
    """Build the training config from CLI options, or exit 2 with the reason."""
    from fraudops.training.models import MODEL_TYPES
    from fraudops.training.trainer import TrainingConfig

    if options["model_type"] not in MODEL_TYPES:
        fail(f"--model must be one of {', '.join(MODEL_TYPES)}, not {options['model_type']!r}")
    if options["threshold_objective"] not in ("f1", "cost"):
        fail(f"--threshold-objective must be f1 or cost, not {options['threshold_objective']!r}")
    if options["delay_days"] < 0 or options["validation_days"] <= 0 or options["trials"] < 0:
        fail("--delay-days and --trials must be >= 0 and --validation-days > 0")
    if options["folds"] < 1:
        fail("--folds must be at least 1")
    lag = options.get("label_window_lag_days")
    if lag is not None and not lag >= 0:
        fail(f"--label-window-lag-days must be >= 0, not {lag}")
    capacity = options.get("review_capacity")
    if capacity is not None and not capacity > 0:
        fail(f"--review-capacity must be > 0 alerts per day, not {capacity}")
    if options["seed"] is None:
        options["seed"] = get_settings().seed
    groups = options.pop("feature_groups", None)
    if groups is not None:
        options["feature_groups"] = feature_groups(groups)
    return TrainingConfig(**options)


def feature_groups(text: str) -> frozenset[str]:
    """The groups of a --feature-groups value, or exit 2 naming the unknown ones."""
    from fraudops.features.spec import FEATURE_GROUPS

    names = {name.strip() for name in text.split(",") if name.strip()}
    if names == {"none"}:
        return frozenset()
    unknown = sorted(names - set(FEATURE_GROUPS))
    if unknown:
        fail(f"--feature-groups: unknown {', '.join(unknown)}; known: {', '.join(FEATURE_GROUPS)}")
    return frozenset(names)


@contextmanager
def stop_requested() -> Iterator[threading.Event]:
    """An event set by SIGINT (Ctrl-C) or SIGTERM (a container stopped) while inside.

    The long-running commands wait on it rather than on a KeyboardInterrupt, which would land
    wherever the main thread happens to be (and be lost if that code swallows it). On the way
    out the previous handlers are back, so a second Ctrl-C while the command winds down
    interrupts as usual.
    """
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def live_status(console: Any) -> Iterator[Any]:
    """A callback showing the stack's state on one live line (a plain line when not a terminal)."""
    from rich.live import Live

    from fraudops.stack import StackStatus

    last_print = [0.0]

    def line(status: StackStatus) -> str:
        when = "-" if status.event_time is None else f"{status.event_time:%Y-%m-%d %H:%M}"
        job = status.running_job or "idle"
        news = ""
        if status.last_run is not None:
            run = status.last_run
            outcome = run.error or _short(run.result)
            news = f" | last {run.job} ({run.due:%m-%d}): {outcome}"
        return (
            f"event time {when} | stored {status.ingested:,} | labels {status.labels:,} | "
            f"champion {status.champion} challenger {status.challenger} | {job}{news}"
        )

    if console.is_terminal:
        with Live(console=console, refresh_per_second=2, transient=True) as live:
            yield lambda status: live.update(line(status))
        return

    def plain(status: StackStatus) -> None:
        if time_module.monotonic() - last_print[0] >= 10.0:
            console.print(line(status), soft_wrap=True)
            last_print[0] = time_module.monotonic()

    yield plain


def _short(result: object) -> str:
    """A job result in a few words for the status line."""
    summary = getattr(result, "summary", None)
    return str(summary() if callable(summary) else result)[:80]
