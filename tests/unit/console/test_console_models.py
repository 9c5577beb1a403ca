"""The models page with promotion and rollback, the monitoring page and the daily report."""

from collections.abc import Iterator

import pandas as pd
import pytest
from console_client import ADMIN_TOKEN, ANALYST_TOKEN, log_in, page_csrf, store_alert
from fastapi.testclient import TestClient

from fraudops.config import Settings
from fraudops.console.app import create_app
from fraudops.registry.base import CHALLENGER, CHAMPION
from fraudops.registry.memory import InMemoryRegistry
from fraudops.storage import MonitorRun, Warehouse
from fraudops.training.bundle import ModelBundle
from warehouse_fill import store_day


@pytest.fixture
def two_models(
    registry: InMemoryRegistry, other_bundle: ModelBundle, sample_frame: pd.DataFrame
) -> InMemoryRegistry:
    """v1 the champion, v2 the challenger."""
    registry.log_training(other_bundle, input_example=sample_frame.head(3), dataset_fingerprint="b")
    return registry


@pytest.fixture
def models_client(
    settings: Settings, warehouse: Warehouse, two_models: InMemoryRegistry
) -> Iterator[TestClient]:
    """A console client over the two-model registry, not logged in."""
    with TestClient(create_app(settings, warehouse=warehouse, registry=two_models)) as client:
        yield client


def test_an_analyst_cannot_promote_or_roll_back(
    models_client: TestClient, two_models: InMemoryRegistry
) -> None:
    """403 even with a valid CSRF token; the champion stays; no button is offered."""
    log_in(models_client, ANALYST_TOKEN)
    html = models_client.get("/models").text
    assert "Only administrators" in html
    assert ">Promote</button>" not in html
    csrf = page_csrf(models_client, "/models")
    for path, form in (
        ("/models/promote", {"version": "2", "reason": "better", "confirm": "yes"}),
        ("/models/rollback", {"reason": "worse", "confirm": "yes"}),
    ):
        response = models_client.post(path, data={"csrf_token": csrf, **form})
        assert 403 == response.status_code
    assert 1 == two_models.resolve(CHAMPION).version


def test_an_admin_promotes_after_confirming_and_it_is_audited(
    models_client: TestClient, two_models: InMemoryRegistry, warehouse: Warehouse
) -> None:
    """The first post asks; the second promotes v2 through the lifecycle, audited as the admin."""
    log_in(models_client, ADMIN_TOKEN)
    csrf = page_csrf(models_client, "/models")
    asked = models_client.post(
        "/models/promote", data={"csrf_token": csrf, "version": "2", "reason": "clearly better"}
    )
    assert 200 == asked.status_code
    assert "Yes, promote v2" in asked.text
    assert 1 == two_models.resolve(CHAMPION).version
    done = models_client.post(
        "/models/promote",
        data={"csrf_token": csrf, "version": "2", "reason": "clearly better", "confirm": "yes"},
        follow_redirects=False,
    )
    assert (303, "/models?done=promote") == (done.status_code, done.headers["location"])
    assert 2 == two_models.resolve(CHAMPION).version
    event = warehouse.events(kind="promote")[0]
    assert ("console:admin-1", "manual", "promoted") == (event.actor, event.trigger, event.verdict)
    assert "clearly better" == event.detail["reason"]
    html = models_client.get("/models?done=promote").text
    assert "console:admin-1" in html  # the audit trail on the page

    back = models_client.post(
        "/models/rollback",
        data={"csrf_token": csrf, "reason": "false positives", "confirm": "yes"},
        follow_redirects=False,
    )
    assert 303 == back.status_code
    assert 1 == two_models.resolve(CHAMPION).version
    assert "console:admin-1" == warehouse.events(kind="rollback")[0].actor


@pytest.mark.parametrize(
    ("form", "status", "words"),
    [
        ({"version": "x", "reason": "r"}, 422, "version"),
        ({"version": "2", "reason": ""}, 422, "reason"),
        ({"version": "1", "reason": "r", "confirm": "yes"}, 409, "already the champion"),
        ({"version": "99", "reason": "r", "confirm": "yes"}, 409, "99"),
    ],
)
def test_impossible_promotions_say_why(
    models_client: TestClient, form: dict[str, str], status: int, words: str
) -> None:
    """Bad versions and reasons are refused with the field or the problem named."""
    log_in(models_client, ADMIN_TOKEN)
    response = models_client.post(
        "/models/promote", data={"csrf_token": page_csrf(models_client, "/models"), **form}
    )
    assert status == response.status_code
    assert words in response.text


def test_the_models_page_lists_versions_and_roles(models_client: TestClient) -> None:
    """Both versions with their aliases; the challenger is preselected for promotion."""
    log_in(models_client, ADMIN_TOKEN)
    html = models_client.get("/models").text
    assert "<td>v2</td><td>challenger</td>" in html
    assert "<td>v1</td><td>champion</td>" in html
    assert '<option value="2" selected>' in html
    assert CHALLENGER in html


@pytest.mark.parametrize("path", ["/monitoring", "/models", "/reports/daily", "/queue"])
def test_pages_render_on_an_empty_warehouse(analyst: TestClient, path: str) -> None:
    """Nothing stored yet: every page says so instead of failing."""
    assert 200 == analyst.get(path).status_code


@pytest.mark.parametrize(
    "path", ["/plots/performance.svg", "/plots/alerts.svg", "/plots/scores.svg"]
)
def test_plots_draw_on_an_empty_and_a_filled_warehouse(
    analyst: TestClient, warehouse: Warehouse, path: str
) -> None:
    """SVG images, before and after data arrives."""
    assert "<svg" in analyst.get(path).text
    store_day(warehouse)
    store_monitor_runs(warehouse)
    response = analyst.get(path)
    assert 200 == response.status_code
    assert "<svg" in response.text


def test_the_monitoring_page_shows_the_latest_verdict_and_drift(
    analyst: TestClient, warehouse: Warehouse
) -> None:
    """The newest run's verdict, its intervals, the drift table, the quality checks."""
    store_day(warehouse)
    store_monitor_runs(warehouse)
    html = analyst.get("/monitoring").text
    assert "retrain" in html
    assert "f1_below_floor" in html
    assert "[0.300, 0.700]" in html
    assert "amount_vs_card_mean_30d" in html
    assert "Data quality, last 7 days" in html
    # All nine of store_day, the latest (2024-03-11 00:00:00) among them.
    assert "9 transactions from 2024-03-04 00:00 to 2024-03-11 00:00" in html
    assert "volume" in html


def test_the_quality_line_counts_the_latest_transaction(
    analyst: TestClient, warehouse: Warehouse
) -> None:
    """A lone stored transaction is checked (the window ends after it), in the singular."""
    store_alert(warehouse, "only")
    html = analyst.get("/monitoring").text
    assert "1 transaction from " in html
    assert "no transactions stored" not in html


def test_the_daily_report_page(analyst: TestClient, warehouse: Warehouse) -> None:
    """The hand-made day of warehouse_fill: its figures on the page."""
    store_day(warehouse)
    html = analyst.get("/reports/daily?date=2024-03-10").text
    assert "Daily operations report, 2024-03-10" in html
    assert "760.00" in html  # scored amount
    assert "4 of 5" in html  # alerts labelled
    assert "analyst 3" in html
    assert "50.0%" in html  # precision
    assert 'href="/reports/daily?date=2024-03-09"' in html
    empty = analyst.get("/reports/daily?date=2020-01-01").text
    assert "No transaction of 2020-01-01 is stored." in empty


@pytest.mark.parametrize("day", ["2024-13-01", "yesterday", "2024-03-10T00:00"])
def test_a_bad_report_date_is_a_422(analyst: TestClient, day: str) -> None:
    """The date parameter is named."""
    response = analyst.get("/reports/daily", params={"date": day})
    assert 422 == response.status_code
    assert "date" in response.text


METRICS = ("precision", "recall", "f1", "average_precision")


def store_monitor_runs(warehouse: Warehouse) -> None:
    """Two monitoring runs, the newer asking for retraining."""
    for day, retrain in ((9, False), (10, True)):
        estimate = {
            "value": 0.5,
            "low": 0.3,
            "high": 0.7,
            "confidence": 0.95,
            "method": "bootstrap",
        }
        warehouse.store_monitor_run(
            MonitorRun(
                as_of=pd.Timestamp(f"2024-03-{day:02d}").to_pydatetime(),
                model_name="fraud-detector",
                model_version="3",
                retrain=retrain,
                reasons=["f1_below_floor"] if retrain else [],
                result={
                    "status": "retrain" if retrain else "ok",
                    "verdict": {"status": "retrain" if retrain else "ok"},
                    "performance": {
                        "transactions": 100,
                        "frauds": 10,
                        **dict.fromkeys(METRICS, estimate),
                    },
                    "drift": {
                        "features": [
                            {
                                "feature": "amount_vs_card_mean_30d",
                                "test": "ks",
                                "statistic": 0.4,
                                "adjusted_p_value": 0.001,
                                "psi": 0.35,
                                "drifted": True,
                            },
                        ],
                        "score": None,
                    },
                },
            )
        )
