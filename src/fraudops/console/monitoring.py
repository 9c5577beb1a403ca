"""Monitoring and the daily operations report, with their plots."""

from datetime import date, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response

from fraudops.console import plots
from fraudops.console.deps import ConsoleState, console, current_user, page, svg
from fraudops.data.profiles import SPARKOV
from fraudops.lifecycle.facade import Lifecycle
from fraudops.lifecycle.retrain import served_profile
from fraudops.monitoring.daily import daily_report, report_day
from fraudops.monitoring.quality import QualityReport
from fraudops.times import utc_naive, utc_now

log = structlog.get_logger(__name__)

router = APIRouter()

# The plots' period: this long back from the newest stored transaction (event time).
PERIOD = timedelta(days=30)
RUNS = 60  # monitoring runs drawn on the performance plot
METRICS = ("average_precision", "f1", "recall")


@router.get("/monitoring")
def monitoring(request: Request) -> Response:
    """The latest verdict, the drift table, data quality and the plots of the period."""
    current_user(request)
    state = console(request)
    runs = state.warehouse.monitor_runs(limit=1)
    latest = runs[0] if runs else None
    result: dict[str, Any] = {} if latest is None else latest.result
    drift = result.get("drift", {})
    return page(
        request,
        "monitoring.html",
        latest=latest,
        verdict=result.get("verdict", {}),
        performance=result.get("performance", {}),
        metrics=METRICS,
        drift_features=drift.get("features", []),
        score_drift=drift.get("score"),
        drift_skipped=drift.get("skipped"),
        quality=_quality(state),
    )


@router.get("/plots/performance.svg")
def performance_plot(request: Request) -> Response:
    """The champion's metrics at each stored monitoring run, with their intervals."""
    current_user(request)
    runs = list(reversed(console(request).warehouse.monitor_runs(limit=RUNS)))
    series = {
        name.replace("_", " "): [_estimate(run.result, name) for run in runs] for name in METRICS
    }
    return svg(plots.performance_bands([run.as_of for run in runs], series))


@router.get("/plots/alerts.svg")
def alerts_plot(request: Request) -> Response:
    """Reviews and declines per day over the period."""
    current_user(request)
    state = console(request)
    start, end = _period(state)
    return svg(plots.alert_volume(state.warehouse.alerts_per_day(start, end)))


@router.get("/plots/scores.svg")
def scores_plot(request: Request) -> Response:
    """The champion's score distribution over the period, frauds apart."""
    current_user(request)
    state = console(request)
    start, end = _period(state)
    frauds, others = state.warehouse.score_histogram(start, end)
    return svg(plots.score_histogram(frauds, others))


@router.get("/reports/daily")
def daily(
    request: Request,
    day: Annotated[str | None, Query(alias="date", max_length=32)] = None,
) -> Response:
    """The daily operations report of a day (default: the newest stored day)."""
    current_user(request)
    state = console(request)
    if day:
        try:
            chosen = report_day(day)
        except ValueError as error:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"date: {error}"
            ) from error
    else:
        newest = state.warehouse.newest_event_time()
        chosen = (newest or utc_naive(utc_now())).date()
    report = daily_report(state.warehouse, chosen)
    return page(
        request,
        "daily.html",
        report=report,
        doc=report.to_dict(),
        previous=(chosen - timedelta(days=1)).isoformat() if chosen > date.min else None,
        following=(chosen + timedelta(days=1)).isoformat(),
    )


def _quality(state: ConsoleState) -> QualityReport | None:
    """The data-quality checks of the last week, None on an empty warehouse."""
    try:
        profile = served_profile(state.registry)
    except Exception:  # the registry down: the checks of the Sparkov fields still tell much
        log.warning("registry unavailable: quality checks the sparkov profile")
        profile = SPARKOV
    lifecycle = Lifecycle.from_settings(
        state.settings, state.warehouse, registry=state.registry, actor="console"
    )
    try:
        return lifecycle.quality(profile=profile)
    except ValueError:
        return None


def _period(state: ConsoleState) -> tuple[datetime, datetime]:
    newest = state.warehouse.newest_event_time() or datetime(1970, 1, 1)
    end = newest + timedelta(seconds=1)
    return end - PERIOD, end


def _estimate(result: dict[str, Any], name: str) -> tuple[float | None, float | None, float | None]:
    found = result.get("performance", {}).get(name) or {}
    return found.get("value"), found.get("low"), found.get("high")
