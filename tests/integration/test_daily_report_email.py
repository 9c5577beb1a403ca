"""The daily operations report e-mailed once per day through the alert outbox, to a real SMTP
server (aiosmtpd), from `fraudops report daily --send` and from the scheduler's job."""

import json
import secrets
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from fraudops.alerts.channels import channels_from_settings
from fraudops.alerts.daily import DailyReportJob
from fraudops.alerts.sender import deliver_pending
from fraudops.cli import app
from fraudops.config import Settings
from fraudops.lifecycle.scheduler import EventTimeScheduler, Job
from fraudops.stack import report_jobs
from fraudops.storage import Warehouse
from fraudops.times import utc_now
from smtp_server import SmtpServer, body_of, running_smtp_server
from warehouse_fill import store_day

DAY = date(2024, 3, 10)
SUBJECT = (
    "[fraudops] Daily operations report 2024-03-10: 7 scored, 2 declines, 3 reviews, "
    "3 frauds confirmed"
)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running SMTP server."""
    with running_smtp_server() as server:
        yield server


@pytest.fixture
def settings(
    database_url: str, smtp_server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """E-mail alerts on, the console's URL known, the hand-made day stored (SQLite or
    PostgreSQL); the same settings in the environment, for the command."""
    environment = {
        "FRAUDOPS_HOME": str(tmp_path / "home"),
        "FRAUDOPS_DATABASE_URL": database_url,
        "FRAUDOPS_SMTP_URL": smtp_server.url,
        "FRAUDOPS_ALERT_EMAIL_TO": "fraud-team@example.test",
        "FRAUDOPS_CONSOLE_URL": "http://console.test:8050",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    warehouse = Warehouse.from_settings(settings)
    warehouse.migrate()
    warehouse.alert_rule = None  # the day's declines raise no alert of their own here
    store_day(warehouse)
    warehouse.dispose()
    return settings


def send(*extra: str) -> tuple[int, dict[str, object]]:
    """`fraudops report daily --date 2024-03-10 --send --json`: exit code and document."""
    result = CliRunner().invoke(
        app, ["report", "daily", "--date", DAY.isoformat(), "--send", "--json", *extra]
    )
    return result.exit_code, json.loads(result.output.strip().splitlines()[-1])


def test_send_emails_the_figures_with_the_console_link_once_per_day(
    settings: Settings, smtp_server: SmtpServer
) -> None:
    """One plain-text e-mail with the day's figures and its console link; asked again the
    same day, nothing more is sent and the command says when it went."""
    code, document = send()
    assert 0 == code, document
    delivery = document["delivery"]
    assert isinstance(delivery, dict)
    assert ("daily_report:2024-03-10", True, True, True) == (
        delivery["dedup_key"],
        delivery["queued"],
        delivery["sent_now"],
        delivery["delivered"],
    )
    [mail] = smtp_server.inbox.messages
    assert SUBJECT == mail["Subject"]
    assert "fraud-team@example.test" == mail["To"]
    assert "daily_report:2024-03-10" == mail["X-Fraudops-Dedup-Key"]
    lines = body_of(mail).splitlines()
    assert "Transactions scored:  7 (760.00)" in lines
    assert "Declines:             2 (320.00)" in lines
    assert "Frauds confirmed:     3 (550.00)" in lines
    assert "Alerts labelled:      4 of 5 (analyst 3, chargeback 1)" in lines
    assert "Precision of alerts:  50.0% [15.0%, 85.0%] (95% Wilson)" in lines
    assert "http://console.test:8050/reports/daily?date=2024-03-10" == lines[-1]
    code, again = send()
    repeated = again["delivery"]
    assert isinstance(repeated, dict)
    assert (0, False, False, True) == (
        code,
        repeated["queued"],
        repeated["sent_now"],
        repeated["delivered"],
    )
    assert 1 == len(smtp_server.inbox.messages)
    readable = CliRunner().invoke(app, ["report", "daily", "--date", "2024-03-10", "--send"])
    assert 0 == readable.exit_code, readable.output
    assert "sent before, at " in readable.output
    assert 1 == len(smtp_server.inbox.messages)


def test_an_smtp_outage_leaves_the_report_queued_for_the_sender(
    settings: Settings, smtp_server: SmtpServer
) -> None:
    """SMTP down: exit code 1, the report waits in the outbox; the sender delivers it once the
    server is back, and a later --send does not send it again."""
    smtp_server.stop()
    code, document = send()
    delivery = document["delivery"]
    assert isinstance(delivery, dict)
    assert (1, True, False, 1) == (
        code,
        delivery["queued"],
        delivery["delivered"],
        delivery["attempts"],
    )
    assert "ConnectionRefusedError" in str(delivery["error"])
    smtp_server.start()
    warehouse = Warehouse.from_settings(settings)
    try:
        later = utc_now() + timedelta(minutes=1)
        report = deliver_pending(warehouse, channels_from_settings(settings), later)
    finally:
        warehouse.dispose()
    assert 1 == report.delivered
    assert [SUBJECT] == [str(mail["Subject"]) for mail in smtp_server.inbox.messages]
    code, _ = send()
    assert (0, 1) == (code, len(smtp_server.inbox.messages))


def test_the_scheduler_queues_the_report_when_event_time_passes_midnight(
    settings: Settings, smtp_server: SmtpServer
) -> None:
    """The job `fraudops up` schedules: nothing before midnight; past it, the closed day's
    report is queued once and delivered by e-mail."""
    warehouse = Warehouse.from_settings(settings)
    try:
        job = DailyReportJob(warehouse, console_url=settings.console_url)
        scheduler = EventTimeScheduler(
            clock=lambda: None, jobs=[Job(name="daily-report", every=timedelta(days=1), run=job)]
        )
        assert [] == scheduler.run_due(datetime(2024, 3, 10, 12))
        assert [] == scheduler.run_due(datetime(2024, 3, 10, 23, 59))
        [run] = scheduler.run_due(datetime(2024, 3, 11, 0, 0, 30))
        assert "daily report 2024-03-10" == run.result
        assert [] == scheduler.run_due(datetime(2024, 3, 11, 6))
        assert ["daily_report:2024-03-10"] == [entry.dedup_key for entry in warehouse.outbox()]
        delivered = deliver_pending(warehouse, channels_from_settings(settings))
    finally:
        warehouse.dispose()
    assert 1 == delivered.delivered
    assert [SUBJECT] == [str(mail["Subject"]) for mail in smtp_server.inbox.messages]


def test_send_delivers_a_report_the_scheduler_queued(
    settings: Settings, smtp_server: SmtpServer
) -> None:
    """Queued by `fraudops up`'s job but not yet delivered: --send delivers that same row."""
    warehouse = Warehouse.from_settings(settings)
    try:
        DailyReportJob(warehouse, console_url=settings.console_url)(datetime(2024, 3, 11))
    finally:
        warehouse.dispose()
    readable = CliRunner().invoke(app, ["report", "daily", "--date", "2024-03-10", "--send"])
    assert 0 == readable.exit_code, readable.output
    assert "sent (daily_report:2024-03-10)" in readable.output
    assert [SUBJECT] == [str(mail["Subject"]) for mail in smtp_server.inbox.messages]


def test_send_without_a_channel_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--send with no alert channel configured: exit code 2 and what to set."""
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    for name in ("FRAUDOPS_SMTP_URL", "FRAUDOPS_ALERT_WEBHOOK_URLS", "FRAUDOPS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["report", "daily", "--date", "2024-03-10", "--send"])
    assert 2 == result.exit_code
    assert "error: --send needs an alert channel" in result.output


def test_fraudops_up_schedules_the_report_only_with_an_alert_channel(
    settings: Settings, tmp_path: Path
) -> None:
    """The stack's scheduler gets a daily job that queues the report with the console link;
    without a channel, no job."""
    warehouse = Warehouse.from_settings(settings)
    try:
        [job] = report_jobs(settings, warehouse)
        assert ("daily-report", timedelta(days=1)) == (job.name, job.every)
        assert "daily report 2024-03-10" == job.run(datetime(2024, 3, 11))
        [entry] = warehouse.outbox()
        assert "http://console.test:8050/reports/daily?date=2024-03-10" == entry.payload["link"]
        quiet = Settings(home=tmp_path / "quiet", _env_file=None)  # type: ignore[call-arg]
        assert [] == report_jobs(quiet.model_copy(update={"smtp_url": None}), warehouse)
    finally:
        warehouse.dispose()


def test_the_emails_link_opens_that_days_report_in_the_console(
    settings: Settings, smtp_server: SmtpServer
) -> None:
    """The console URL in the e-mail, followed by a logged-in analyst, shows the same day
    with the same figures."""
    from fastapi.testclient import TestClient  # noqa: PLC0415

    from fraudops.console.app import create_app  # noqa: PLC0415
    from fraudops.console.auth import SESSION_COOKIE, Role, Sessions  # noqa: PLC0415
    from fraudops.registry.memory import InMemoryRegistry  # noqa: PLC0415

    assert 0 == send()[0]
    link = body_of(smtp_server.inbox.messages[0]).splitlines()[-1]
    path = link.removeprefix(str(settings.console_url))
    assert "/reports/daily?date=2024-03-10" == path
    console_settings = settings.model_copy(
        update={
            "analyst_tokens": SecretStr("alice=" + secrets.token_urlsafe(32)),
            "console_secret": SecretStr(secrets.token_urlsafe(32)),
        }
    )
    cookie, _ = Sessions(console_settings).issue("alice", Role.ANALYST)
    warehouse = Warehouse.from_settings(settings)
    try:
        app = create_app(console_settings, warehouse=warehouse, registry=InMemoryRegistry())
        with TestClient(app, cookies={SESSION_COOKIE: cookie}) as client:
            page = client.get(path)
    finally:
        warehouse.dispose()
    assert 200 == page.status_code
    assert "2024-03-10" in page.text
    assert "760.00" in page.text  # the day's scored amount, as in the e-mail
