"""`fraudops train`, `backtest` and `score`: models from files (fraudops.training, .scoring)."""

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer

from fraudops.cli.options import (
    DATE_FORMATS,
    DataOpt,
    DelayOpt,
    FeatureGroupsOpt,
    FoldsOpt,
    LabelWindowLagOpt,
    ModelOpt,
    ObjectiveOpt,
    ProfileOpt,
    ReviewCapacityOpt,
    ReviewCostOpt,
    SeedOpt,
    TimeoutOpt,
    TrainStartOpt,
    TrialsOpt,
    ValidationOpt,
    lifecycle_errors,
    training_config,
    user_errors,
)
from fraudops.config import get_settings


def train_command(
    *,
    data: DataOpt,
    profile: ProfileOpt,
    train_start: TrainStartOpt = None,
    train_end: Annotated[
        datetime | None,
        typer.Option(formats=DATE_FORMATS, help="Last day of labelled data (default: all)."),
    ] = None,
    delay_days: DelayOpt = 7.0,
    model: ModelOpt = "xgboost",
    trials: TrialsOpt = 15,
    tune_timeout: TimeoutOpt = None,
    validation_days: ValidationOpt = 7.0,
    folds: FoldsOpt = 1,
    threshold_objective: ObjectiveOpt = "f1",
    review_cost: ReviewCostOpt = 5.0,
    review_capacity: ReviewCapacityOpt = None,
    seed: SeedOpt = None,
    feature_groups: FeatureGroupsOpt = None,
) -> None:
    """Train on labelled data, register the model in MLflow (champion, else challenger)."""
    from fraudops.data.profiles import load_profile
    from fraudops.lifecycle.registration import train_and_register
    from fraudops.progress import DelayedProgress
    from fraudops.registry import MlflowRegistry

    settings = get_settings()
    labelled_end = None
    if train_end is not None:
        labelled_end = train_end + timedelta(days=1) if train_end.time() == time() else train_end
    config = training_config(
        model_type=model,
        delay_days=delay_days,
        validation_days=validation_days,
        folds=folds,
        train_start=train_start,
        labelled_end=labelled_end,
        trials=trials,
        tune_timeout_s=tune_timeout,
        threshold_objective=threshold_objective,
        review_cost=review_cost,
        review_capacity=settings.review_capacity if review_capacity is None else review_capacity,
        seed=seed,
        feature_groups=feature_groups,
    )
    out_dir = settings.home / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    with user_errors():
        dataset = load_profile(profile, user_dir=settings.user_profiles_dir)
        with DelayedProgress() as progress:
            trained, version = train_and_register(
                data=data,
                profile=dataset,
                config=config,
                out_dir=out_dir,
                registry=MlflowRegistry(settings),
                progress=progress.update,
            )
    result = trained.result
    print_metrics("validation", result.validation.to_dict())
    if result.review is not None:
        typer.echo(
            f"review        from {result.review.threshold:.4f}: "
            f"{result.review.alerts_per_day:,.1f} alerts per day on validation "
            f"(capacity {result.review.capacity:g})"
        )
    typer.echo(f"registered    {version.name} version {version.version} as {version.alias}")
    typer.echo(f"report        {trained.artifacts['html']}")
    typer.echo(f"mlflow ui     mlflow ui --backend-store-uri {settings.resolved_tracking_uri}")


def backtest_command(
    *,
    data: DataOpt,
    profile: ProfileOpt,
    test_start: Annotated[datetime, typer.Option(formats=DATE_FORMATS, help="First test day.")],
    test_end: Annotated[
        datetime, typer.Option(formats=DATE_FORMATS, help="Last test day (inclusive).")
    ],
    delay_days: DelayOpt,
    scores_out: Annotated[Path, typer.Option(help="Parquet file: transaction id and score.")],
    report_out: Annotated[Path, typer.Option(help="JSON report of the test metrics.")],
    train_start: TrainStartOpt = None,
    model: ModelOpt = "xgboost",
    trials: TrialsOpt = 15,
    tune_timeout: TimeoutOpt = None,
    validation_days: ValidationOpt = 7.0,
    folds: FoldsOpt = 1,
    threshold_objective: ObjectiveOpt = "f1",
    review_cost: ReviewCostOpt = 5.0,
    seed: SeedOpt = None,
    feature_groups: FeatureGroupsOpt = None,
    holdout: Annotated[
        bool,
        typer.Option(
            help="Validate on the days before the delay (default). --no-holdout trains on "
            "all of [train-start, test-start - delay) with default parameters and no early "
            "stopping, the threshold chosen on those days: the Fraud Detection Handbook's "
            "protocol (needs --trials 0).",
        ),
    ] = True,
    label_window_lag_days: LabelWindowLagOpt = None,
) -> None:
    """Train on data known before test-start minus the delay; score and judge the test days."""
    from fraudops.data.profiles import load_profile
    from fraudops.progress import DelayedProgress
    from fraudops.training.workflow import backtest_to_files

    config = training_config(
        model_type=model,
        delay_days=delay_days,
        validation_days=validation_days,
        folds=folds,
        train_start=train_start,
        trials=trials,
        tune_timeout_s=tune_timeout,
        threshold_objective=threshold_objective,
        review_cost=review_cost,
        seed=seed,
        feature_groups=feature_groups,
        holdout=holdout,
        label_window_lag_days=label_window_lag_days,
    )
    with user_errors():
        dataset = load_profile(profile, user_dir=get_settings().user_profiles_dir)
        with DelayedProgress() as progress:
            result = backtest_to_files(
                data=data,
                profile=dataset,
                test_start=test_start,
                test_end=test_end,
                config=config,
                scores_out=scores_out,
                report_out=report_out,
                progress=progress.update,
            )
    print_metrics(
        f"backtest {result.test_start:%Y-%m-%d} .. {result.test_end:%Y-%m-%d}",
        result.test.to_dict(),
    )
    typer.echo(f"scores        {scores_out} ({len(result.scores):,} transactions)")
    typer.echo(f"report        {report_out}")


def print_metrics(title: str, metrics: dict[str, float]) -> None:
    """The headline metrics as a small table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:,.4f}" if isinstance(value, float) else f"{value:,}")
    Console().print(table)


def score_command(
    *,
    data: DataOpt,
    profile: ProfileOpt,
    out: Annotated[Path, typer.Option(help="Parquet file: transaction id, score, decision.")],
    version: Annotated[
        int | None, typer.Option(help="Registered version (default: the champion).")
    ] = None,
) -> None:
    """Score a file of transactions offline with the champion (history within the file)."""
    import pandas as pd

    from fraudops.data.profiles import load_profile
    from fraudops.data.readers import load_transactions
    from fraudops.progress import DelayedProgress
    from fraudops.registry import CHAMPION, MlflowRegistry
    from fraudops.scoring.serving import decide_many, decision_thresholds

    settings = get_settings()
    registry = MlflowRegistry(settings)
    with lifecycle_errors():
        dataset = load_profile(profile, user_dir=settings.user_profiles_dir)
        with DelayedProgress() as progress:
            frame = load_transactions(data, dataset, progress=progress.part(0.0, 0.5)).frame
            chosen = registry.resolve(CHAMPION).version if version is None else version
            bundle = registry.load_version(chosen)
            progress.update("scoring", 0.6)
            scores = bundle.score_frame(frame)
    review, decline = decision_thresholds(bundle, settings)
    decisions = decide_many(scores, review=review, decline=decline)
    id_column = dataset.id_column
    result = pd.DataFrame({id_column: frame[id_column].to_numpy(), "score": scores})
    result["decision"] = decisions
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_parquet(out, index=False)
    counts = result["decision"].value_counts().to_dict()
    typer.echo(f"model         {settings.model_name} version {chosen}")
    typer.echo(
        f"scored        {len(result):,} transactions: "
        + ", ".join(f"{counts.get(d, 0):,} {d}" for d in ("approve", "review", "decline"))
    )
    typer.echo(f"written       {out}")
