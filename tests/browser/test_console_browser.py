"""The analyst console in a real Chromium, against a real scoring service and console.

`fraudops serve` and `fraudops console` run as their own processes on one home (SQLite
warehouse, MLflow registry with a champion v1 and a challenger v2). An analyst logs in,
sees a declined transaction arrive in the queue without reloading, confirms it as fraud
(the API then shows the analyst's label) and cannot promote; an administrator promotes
the challenger from /models and the service serves it. A merchant named like a script
stays text. Every page is saved as a screenshot (test-artifacts/screenshots/).
"""

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import ConsoleMessage, Dialog, Page, expect

from fraudops.config import Settings
from fraudops.registry import MlflowRegistry
from fraudops.training.bundle import ModelBundle
from mlflow_store import seeded_home
from ports import free_port
from service_process import (
    ADMIN_TOKEN,
    FRAUDOPS,
    ServiceProcess,
    running_service,
    service_env,
    wait_answering,
)
from transaction_bodies import request_body

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ANALYST_TOKEN = "browser-analyst-" + secrets.token_urlsafe(24)
SCRIPT_MERCHANT = "<script>alert(1)</script>"
# The queue polls its rows every second: a new alert shows within two.
QUEUE_DEADLINE_MS = 2_000

Screenshot = Callable[[str], Path]


@pytest.fixture
def home(
    tmp_path: Path, train_bundle: Callable[..., ModelBundle], sample_frame: pd.DataFrame
) -> Path:
    """A home whose registry holds a champion (v1) and a challenger (v2)."""
    home = seeded_home(tmp_path / "home")
    registry = MlflowRegistry(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    for seed in (3, 11):
        bundle = train_bundle(sample_frame, threshold=0.5, seed=seed)
        registry.log_training(bundle, input_example=sample_frame.head(3), dataset_fingerprint="s")
    return home


@pytest.fixture
def service(home: Path) -> Iterator[ServiceProcess]:
    """`fraudops serve` declining everything (decline threshold 0), so each score is an alert."""
    with running_service(home, env=service_env(home, decline_threshold="0.0")) as running:
        yield running


@pytest.fixture
def console_url(home: Path, service: ServiceProcess) -> Iterator[str]:
    """`fraudops console` on the same home, telling that service about labels and promotions."""
    port = free_port()
    env = service_env(home, analyst_tokens=f"alice={ANALYST_TOKEN}", service_url=service.url)
    log = home / "console.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(FRAUDOPS), "console", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(process, f"{url}/login", log)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def score(service: ServiceProcess, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/score with the scoring token; the answer."""
    with service.client() as client:
        response = client.post("/v1/score", json=body)
    assert 200 == response.status_code, response.text
    return dict(response.json())


def log_in(page: Page, console_url: str, token: str) -> None:
    """Log in through the form; the queue opens."""
    page.goto(f"{console_url}/login")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{console_url}/queue*")


def champion_version(service: ServiceProcess) -> str:
    """The champion version the service serves now."""
    with service.client() as client:
        return str(client.get("/v1/models").json()["champion"]["version"])


def test_an_analyst_works_an_alert_and_an_admin_promotes_the_challenger(
    page: Page,
    screenshot: Screenshot,
    service: ServiceProcess,
    console_url: str,
    sample_frame: pd.DataFrame,
) -> None:
    """Login, live queue, case, label read back from the API, no promotion for analysts,
    promotion by an admin served by the service, a script-like merchant inert."""
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: _dismiss(dialog, dialogs))
    csp_errors: list[str] = []
    page.on("console", lambda message: _keep_csp_errors(message, csp_errors))
    rows = sample_frame.head(2).to_dict("records")
    first = request_body(rows[0])
    hostile = request_body(rows[1]) | {"merchant": SCRIPT_MERCHANT}
    assert "decline" == score(service, first)["decision"]

    page.goto(f"{console_url}/login")
    screenshot("login")
    log_in(page, console_url, ANALYST_TOKEN)
    queue = page.locator("tbody tr")
    expect(queue.filter(has_text=first["trans_num"])).to_have_count(1)
    screenshot("queue")

    # A declined transaction scored now shows up in the open queue, without a reload.
    assert "decline" == score(service, hostile)["decision"]
    scored = time.monotonic()
    expect(queue.filter(has_text=hostile["trans_num"])).to_have_count(1, timeout=QUEUE_DEADLINE_MS)
    appeared = time.monotonic() - scored
    print(f"the new alert appeared in the queue {appeared:.2f} s after its score")  # noqa: T201
    expect(queue.filter(has_text=hostile["trans_num"])).to_contain_text(SCRIPT_MERCHANT)
    screenshot("queue-with-the-new-alert")

    # Its case page: the merchant is text, the card only its last four digits.
    page.get_by_role("link", name=hostile["trans_num"]).click()
    page.wait_for_url(f"{console_url}/cases/*")
    expect(page.get_by_text(SCRIPT_MERCHANT).first).to_be_visible()
    assert hostile["cc_num"] not in page.content()
    screenshot("case")
    csrf = page.locator("input[name=csrf_token]").first.input_value()
    page.get_by_role("button", name="Confirm fraud").click()
    page.wait_for_url(f"{console_url}/cases/{first['trans_num']}")  # the next case opens
    screenshot("next-case")
    with service.client() as client:
        stored = client.get(f"/v1/transactions/{hostile['trans_num']}").json()
    assert {"is_fraud": True, "source": "analyst", "analyst": "alice"}.items() <= (
        stored["label"].items()
    )

    analyst_cannot_promote(page, screenshot, service, console_url, csrf)

    for path in ("monitoring", "reports/daily"):
        page.goto(f"{console_url}/{path}")
        expect(page.locator("h1")).to_be_visible()
        screenshot(path.replace("/", "-"))

    admin_promotes_the_challenger(page, screenshot, service, console_url)

    assert [] == dialogs  # the script in the merchant's name never ran
    assert [] == csp_errors


def analyst_cannot_promote(
    page: Page, screenshot: Screenshot, service: ServiceProcess, console_url: str, csrf: str
) -> None:
    """An analyst sees no promotion form, and the server refuses the action itself."""
    page.goto(f"{console_url}/models")
    expect(page.get_by_role("button", name="Promote")).to_have_count(0)
    screenshot("models-as-analyst")
    refused = page.request.post(
        f"{console_url}/models/promote",
        form={"csrf_token": csrf, "version": "2", "reason": "analyst try", "confirm": "yes"},
    )
    assert 403 == refused.status
    assert "only administrators may do this" in refused.text()  # the role, not the CSRF token
    assert "1" == champion_version(service)


def admin_promotes_the_challenger(
    page: Page, screenshot: Screenshot, service: ServiceProcess, console_url: str
) -> None:
    """An administrator promotes the challenger from /models; the service hot-swaps to it."""
    page.goto(f"{console_url}/logout")
    log_in(page, console_url, ADMIN_TOKEN)
    page.goto(f"{console_url}/models")
    page.get_by_label("Version").select_option("2")
    page.get_by_label("Reason").first.fill("challenger better on the last week")
    page.get_by_role("button", name="Promote").click()
    screenshot("promote-confirmation")
    page.get_by_role("button", name="Yes, promote v2").click()
    expect(page.get_by_role("status")).to_contain_text("promoted")
    deadline = time.monotonic() + 30
    while champion_version(service) != "2":
        assert time.monotonic() < deadline, "the service never served the promoted version"
        time.sleep(0.2)
    page.reload()
    screenshot("models-after-promotion")


def _dismiss(dialog: Dialog, seen: list[str]) -> None:
    seen.append(dialog.message)
    dialog.dismiss()


def _keep_csp_errors(message: ConsoleMessage, kept: list[str]) -> None:
    if message.type == "error" and "Content Security Policy" in message.text:
        kept.append(message.text)
