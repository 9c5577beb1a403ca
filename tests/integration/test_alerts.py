"""Alerts from the warehouse's outbox to a real SMTP server (aiosmtpd) and a local webhook."""

from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from webhook_receiver import Hooks, receiving_webhook

from fraudops.alerts.channels import EmailChannel, SmtpAddress, WebhookChannel
from fraudops.alerts.events import DeclineRule, decline_event
from fraudops.alerts.sender import RateLimit, deliver_pending
from fraudops.config import Settings
from fraudops.data.schema import CanonicalTransaction
from fraudops.features.state import InMemoryStateStore
from fraudops.registry import InMemoryRegistry
from fraudops.scoring.service import ScoringService
from fraudops.storage import LifecycleEvent, MonitorRun, Reason, ScoredTransaction, ScoreRecord
from fraudops.storage.warehouse import Warehouse
from fraudops.times import utc_now
from smtp_server import SmtpServer, running_smtp_server

# The sender's clock in these tests: ahead of the wall clock that stamps enqueued alerts, at
# the start of a five-minute rate window. A day ahead, since this module is imported when
# the suite is collected and its tests may run many minutes later on a loaded machine.
_WALL = utc_now().replace(second=0, microsecond=0)
NOW = _WALL - timedelta(minutes=_WALL.minute % 5) + timedelta(days=1)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running SMTP server."""
    with running_smtp_server() as server:
        yield server


@pytest.fixture
def webhook() -> Iterator[tuple[str, Hooks]]:
    """A local webhook receiver: its URL and what it got."""
    with receiving_webhook() as receiver:
        yield receiver


def email_to(server: SmtpServer) -> EmailChannel:
    """The e-mail channel to the test server."""
    return EmailChannel(
        address=SmtpAddress.parse(server.url),
        sender="fraudops@example.test",
        recipients=("analysts@example.test",),
        timeout=5.0,
    )


def score(probability: float) -> ScoreRecord:
    """A champion score: declined above 0.5."""
    return ScoreRecord(
        model_name="fraud-detector",
        model_version="3",
        fraud_probability=probability,
        decision="decline" if probability > 0.5 else "approve",
        scored_at=NOW,
        reasons=(Reason("amount", 900.0, 1.5, "amount 900.00 is far above the card's usual"),),
        features={"amount": 900.0},
    )


def transaction(trans_num: str, *, amount: float = 900.0) -> dict[str, Any]:
    """A canonical transaction record."""
    return {
        "trans_num": trans_num,
        "cc_num": 4111111111111111,
        "merchant": "fraud_Kirlin and Sons",
        "category": "grocery_pos",
        "amt": amount,
        "unix_time": int(NOW.replace(tzinfo=UTC).timestamp()),
    }


def store_declines(warehouse: Warehouse, count: int, *, prefix: str = "t") -> None:
    """Store `count` declined transactions."""
    warehouse.store_scored_batch(
        [
            ScoredTransaction(transaction=transaction(f"{prefix}{i}"), score=score(0.9))
            for i in range(count)
        ]
    )


@pytest.fixture
def alerting(warehouse: Warehouse) -> Warehouse:
    """The migrated warehouse with alerts on: every decline raises one."""
    warehouse.alert_rule = DeclineRule(console_url="http://console.test")
    return warehouse


def test_a_stored_decline_is_in_the_outbox_once_and_an_approval_is_not(
    alerting: Warehouse,
) -> None:
    """Storing a decline enqueues its alert; storing it again or an approval adds nothing."""
    items = [
        ScoredTransaction(transaction=transaction("d1"), score=score(0.9)),
        ScoredTransaction(transaction=transaction("a1"), score=score(0.1)),
    ]
    alerting.store_scored_batch(items)
    alerting.store_scored_batch(items)
    outbox = alerting.outbox()
    assert ["decline:d1"] == [entry.dedup_key for entry in outbox]
    assert "d1" == outbox[0].payload["payload"]["trans_num"]
    assert 0 == outbox[0].attempts
    assert outbox[0].delivered_at is None


def test_the_decline_rule_keeps_small_declines_out(alerting: Warehouse) -> None:
    """With a minimum amount, a decline below it raises no alert."""
    alerting.alert_rule = DeclineRule(min_amount=1000.0)
    alerting.store_scored_batch(
        [
            ScoredTransaction(transaction=transaction("small", amount=900.0), score=score(0.9)),
            ScoredTransaction(transaction=transaction("big", amount=5000.0), score=score(0.9)),
        ]
    )
    assert ["decline:big"] == [entry.dedup_key for entry in alerting.outbox()]


def test_without_alerts_nothing_is_enqueued(warehouse: Warehouse) -> None:
    """A warehouse without an alert rule (no channel configured) keeps its outbox empty."""
    store_declines(warehouse, 2)
    assert [] == warehouse.outbox()


def test_an_event_enqueued_twice_is_stored_once(alerting: Warehouse) -> None:
    """The dedup key: the second enqueue of the same event adds nothing."""
    event = decline_event(trans_num="x", amount=1.0, merchant="m", score=score(0.9))
    assert 1 == alerting.enqueue_alerts([event])
    assert 0 == alerting.enqueue_alerts([event, event])
    assert 1 == len(alerting.outbox())


def test_a_decline_is_delivered_by_email_and_webhook(
    alerting: Warehouse, smtp_server: SmtpServer, webhook: tuple[str, Hooks]
) -> None:
    """One e-mail naming the transaction with its console link, one Slack-style post."""
    url, hooks = webhook
    store_declines(alerting, 1)
    with httpx.Client(timeout=5.0) as client:
        channels = [email_to(smtp_server), WebhookChannel(urls=(url,), client=client)]
        report = deliver_pending(alerting, channels, NOW)
        again = deliver_pending(alerting, channels, NOW + timedelta(minutes=1))
    assert (1, 0) == (report.delivered, again.delivered)
    [mail] = smtp_server.inbox.messages
    assert "[fraudops] Declined: t0 (900.00 at fraud_Kirlin and Sons)" == mail["Subject"]
    body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "fraud probability 0.900" in body
    assert "amount 900.00 is far above the card's usual" in body
    assert "http://console.test/cases/t0" in body
    [post] = hooks.bodies
    assert post["text"].startswith("*Declined: t0")
    assert "t0" == post["event"]["payload"]["trans_num"]
    [entry] = alerting.outbox()
    assert (1, NOW) == (entry.attempts, entry.delivered_at)


def test_an_smtp_outage_loses_nothing_and_delivers_once(
    alerting: Warehouse, smtp_server: SmtpServer
) -> None:
    """Server down: attempts back off; server back: every alert arrives exactly once."""
    store_declines(alerting, 3)
    channels = [email_to(smtp_server)]
    smtp_server.stop()
    down = deliver_pending(alerting, channels, NOW)
    assert (0, 1, 2) == (down.delivered, down.failed, down.postponed)
    first = alerting.outbox()[0]
    assert (1, NOW + timedelta(seconds=30)) == (first.attempts, first.next_attempt_at)
    assert first.last_error is not None
    assert "ConnectionRefusedError" in first.last_error
    # Still down when the retry comes: the next wait is twice as long.
    deliver_pending(alerting, channels, NOW + timedelta(seconds=30))
    first = alerting.outbox()[0]
    assert (2, NOW + timedelta(seconds=90)) == (first.attempts, first.next_attempt_at)
    # Not due yet: nothing is tried.
    assert 0 == deliver_pending(alerting, channels, NOW + timedelta(seconds=60)).failed
    smtp_server.start()
    back = deliver_pending(alerting, channels, NOW + timedelta(seconds=90))
    deliver_pending(alerting, channels, NOW + timedelta(minutes=10))
    assert 3 == back.delivered
    subjects = sorted(str(mail["Subject"]) for mail in smtp_server.inbox.messages)
    assert [f"[fraudops] Declined: t{i} (900.00 at fraud_Kirlin and Sons)" for i in range(3)] == (
        subjects
    )
    assert all(entry.delivered_at is not None for entry in alerting.outbox())


def test_a_burst_beyond_the_rate_limit_becomes_one_digest(
    alerting: Warehouse, smtp_server: SmtpServer
) -> None:
    """Limit 3 per 5 minutes, 40 declines: 3 e-mails and one saying 37 more."""
    store_declines(alerting, 40)
    channels = [email_to(smtp_server)]
    rate = RateLimit(limit=3, window=timedelta(minutes=5))
    report = deliver_pending(alerting, channels, NOW, rate=rate)
    assert (4, 37) == (report.delivered, report.folded)
    subjects = [str(mail["Subject"]) for mail in smtp_server.inbox.messages]
    assert "[fraudops] 37 more declines in the last 5 minutes" == subjects[-1]
    assert 4 == len(subjects)
    assert all(entry.delivered_at is not None for entry in alerting.outbox())
    # More in the same window wait for the next window's digest.
    store_declines(alerting, 2, prefix="late")
    later = deliver_pending(alerting, channels, NOW + timedelta(seconds=10), rate=rate)
    assert (0, 2) == (later.delivered, later.postponed)
    next_window = deliver_pending(alerting, channels, NOW + timedelta(minutes=5), rate=rate)
    assert 1 == next_window.delivered
    assert "[fraudops] 2 more declines in the last 5 minutes" == str(
        smtp_server.inbox.messages[-1]["Subject"]
    )


def test_monitoring_verdicts_and_promotions_go_to_the_outbox(alerting: Warehouse) -> None:
    """A run asking for retraining and a promotion each enqueue an alert; a quiet run none."""
    for retrain in (True, False):
        alerting.store_monitor_run(
            MonitorRun(
                as_of=NOW,
                model_name="fraud-detector",
                model_version="3",
                retrain=retrain,
                reasons=["recall fell"] if retrain else [],
                result={"quiet": not retrain},
            )
        )
    alerting.record_event(
        LifecycleEvent(
            kind="promote",
            trigger="manual",
            actor="cli",
            verdict="promoted",
            model_name="fraud-detector",
            champion_version="4",
            challenger_version="3",
        )
    )
    kinds = [entry.kind for entry in alerting.outbox()]
    assert ["monitoring", "lifecycle"] == kinds


def test_a_decline_scored_by_the_service_is_emailed_naming_it(
    tmp_path: Path, registry: InMemoryRegistry, smtp_server: SmtpServer
) -> None:
    """Scored in-process with alerts on: the decline is in the outbox and e-mailed by name."""
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'warehouse.db'}",
        decline_threshold=0.0,
        smtp_url=smtp_server.url,
        alert_email_to="analysts@example.test",
        _env_file=None,  # type: ignore[call-arg]
    )
    warehouse = Warehouse.from_settings(settings)
    service = ScoringService(
        settings=settings, warehouse=warehouse, registry=registry, store=InMemoryStateStore()
    )
    service.start(block=True)
    try:
        result = service.score(CanonicalTransaction.from_record(transaction("svc-1"))).result(30)
    finally:
        service.stop()
    assert "decline" == result.score.decision
    assert ["decline:svc-1"] == [entry.dedup_key for entry in warehouse.outbox()]
    report = deliver_pending(warehouse, [email_to(smtp_server)])
    assert 1 == report.delivered
    [mail] = smtp_server.inbox.messages
    assert "svc-1" in str(mail["Subject"])
    warehouse.dispose()


def test_alerts_send_once_delivers_the_outbox(
    tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fraudops alerts send --once` e-mails what is due and says how many."""
    from typer.testing import CliRunner  # noqa: PLC0415

    from fraudops.cli import app  # noqa: PLC0415

    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FRAUDOPS_SMTP_URL", smtp_server.url)
    monkeypatch.setenv("FRAUDOPS_ALERT_EMAIL_TO", "analysts@example.test")
    settings = Settings()
    warehouse = Warehouse.from_settings(settings)
    warehouse.migrate()
    store_declines(warehouse, 2)
    warehouse.dispose()
    result = CliRunner().invoke(app, ["alerts", "send", "--once"])
    assert 0 == result.exit_code, result.output
    assert "alerts: 2 delivered" in result.output
    assert 2 == len(smtp_server.inbox.messages)


def test_alerts_send_without_a_channel_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No channel configured: exit code 2 and one line saying what to set."""
    from typer.testing import CliRunner  # noqa: PLC0415

    from fraudops.cli import app  # noqa: PLC0415

    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["alerts", "send", "--once"])
    assert 2 == result.exit_code
    assert "error: no alert channel is configured" in result.output


def test_a_bad_smtp_url_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FRAUDOPS_SMTP_URL of another scheme: exit code 2, the password never shown."""
    from typer.testing import CliRunner  # noqa: PLC0415

    from fraudops.cli import app  # noqa: PLC0415

    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FRAUDOPS_SMTP_URL", "http://user:s3cret@mail:25")
    monkeypatch.setenv("FRAUDOPS_ALERT_EMAIL_TO", "a@example.test")
    result = CliRunner().invoke(app, ["alerts", "send", "--once"])
    assert 2 == result.exit_code
    assert "FRAUDOPS_SMTP_URL must look like smtp://host:port" in result.output
    assert "s3cret" not in result.output


def test_a_failed_quality_check_from_the_cli_goes_to_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fraudops quality` over unlabelled old transactions fails and enqueues its alerts."""
    from typer.testing import CliRunner  # noqa: PLC0415

    from fraudops.cli import app  # noqa: PLC0415

    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FRAUDOPS_ALERT_WEBHOOK_URLS", "http://127.0.0.1:9/hook")
    warehouse = Warehouse.from_settings(Settings())
    warehouse.migrate()
    start = NOW.replace(tzinfo=UTC) - timedelta(days=40)
    warehouse.store_scored_batch(
        [
            ScoredTransaction(
                transaction={
                    **transaction(f"q{i}"),
                    "unix_time": int((start + timedelta(hours=6 * i)).timestamp()),
                },
                score=score(0.1),
            )
            for i in range(120)
        ]
    )
    result = CliRunner().invoke(app, ["quality", "--days", "30"])
    assert 1 == result.exit_code, result.output
    kinds = {entry.kind for entry in warehouse.outbox()}
    warehouse.dispose()
    assert {"quality"} == kinds


def test_the_sender_thread_delivers_until_stopped(
    alerting: Warehouse, smtp_server: SmtpServer
) -> None:
    """What `fraudops up` runs: a thread that delivers new alerts within its interval."""
    import time  # noqa: PLC0415

    from fraudops.alerts.sender import AlertSender  # noqa: PLC0415

    sender = AlertSender(alerting, [email_to(smtp_server)], interval=0.05)
    sender.start()
    try:
        store_declines(alerting, 2)
        deadline = time.monotonic() + 10
        while len(smtp_server.inbox.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.stop()
    assert 2 == len(smtp_server.inbox.messages)
