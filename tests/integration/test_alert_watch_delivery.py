"""The sender's own checks against a real warehouse, a local webhook and a real uvicorn: a
surge of alerts, ingestion lag and a scoring service that is not ready."""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from webhook_receiver import Hooks, receiving_webhook

from fraudops.alerts.channels import WebhookChannel
from fraudops.alerts.sender import AlertSender
from fraudops.alerts.watch import AlertWatch
from fraudops.config import Settings
from fraudops.storage import Reason, ScoredTransaction, ScoreRecord
from fraudops.storage.warehouse import Warehouse
from fraudops.times import utc_now

HOUR = datetime(2026, 1, 12, 10, 0, 0)  # the surge's hour (event time)


@pytest.fixture
def webhook() -> Iterator[tuple[str, Hooks]]:
    """A local webhook receiver: its URL and what it got."""
    with receiving_webhook() as receiver:
        yield receiver


def scored(
    trans_num: str, *, at: datetime, decision: str, scored_at: datetime | None = None
) -> ScoredTransaction:
    """A stored transaction at event time `at` with its champion's decision."""
    return ScoredTransaction(
        transaction={
            "trans_num": trans_num,
            "cc_num": 4111111111111111,
            "merchant": "fraud_Kirlin and Sons",
            "category": "grocery_pos",
            "amt": 120.0,
            "unix_time": int(at.replace(tzinfo=UTC).timestamp()),
        },
        score=ScoreRecord(
            model_name="fraud-detector",
            model_version="3",
            fraud_probability=0.9 if decision != "approve" else 0.1,
            decision=decision,
            scored_at=scored_at or utc_now(),
            reasons=(Reason("amount", 120.0, 1.5, "amount 120.00 is far above usual"),),
            features={"amount": 120.0},
        ),
    )


def alerts_in(warehouse: Warehouse, hour: datetime, count: int, prefix: str) -> None:
    """`count` reviews and declines spread over the hour from `hour`."""
    warehouse.store_scored_batch(
        [
            scored(
                f"{prefix}{i}",
                at=hour + timedelta(minutes=i % 60),
                decision="decline" if i % 2 else "review",
            )
            for i in range(count)
        ]
    )


def test_a_surge_against_the_same_hour_a_week_earlier_is_delivered_once(
    warehouse: Warehouse, webhook: tuple[str, Hooks]
) -> None:
    """25 alerts from 10:00 against 4 a week earlier (approvals not counted) make one surge
    alert for that hour, however many rounds see it; 12 against 4 in the next hour do not."""
    url, hooks = webhook
    alerts_in(warehouse, HOUR, 25, "now")
    alerts_in(warehouse, HOUR - timedelta(days=7), 4, "before")
    warehouse.store_scored_batch(
        [scored(f"ok{i}", at=HOUR + timedelta(minutes=i), decision="approve") for i in range(30)]
    )
    warehouse.store_scored_batch(
        [scored("late", at=HOUR + timedelta(hours=1, minutes=5), decision="approve")]
    )
    assert 25 == warehouse.alert_count(HOUR, HOUR + timedelta(hours=1))
    channel = WebhookChannel(urls=(url,), client=httpx.Client(timeout=5.0))
    sender = AlertSender(warehouse, [channel], interval=1.0, watch=AlertWatch(warehouse))
    sender.run_once()
    sender.run_once()
    assert ["surge"] == hooks.kinds
    event = hooks.bodies[0]["event"]
    assert {"hour_start": "2026-01-12T10:00:00", "count": 25, "week_before": 4} == {
        key: event["payload"][key] for key in ("hour_start", "count", "week_before")
    }
    # The next hour becomes the last full one: 12 alerts are under the minimum of 20.
    alerts_in(warehouse, HOUR + timedelta(hours=1), 12, "next")
    warehouse.store_scored_batch(
        [scored("later", at=HOUR + timedelta(hours=2, minutes=1), decision="approve")]
    )
    sender.run_once()
    assert ["surge"] == hooks.kinds


def test_ingestion_lag_over_the_limit_is_delivered_once_per_stall(
    warehouse: Warehouse, webhook: tuple[str, Hooks]
) -> None:
    """With a five-minute limit, a newest score ten minutes old alerts once; a fresh score
    ends the episode quietly."""
    url, hooks = webhook
    settings = Settings(alert_webhook_urls=url, alert_ingest_lag_seconds=300)
    warehouse.store_scored_batch(
        [scored("old", at=HOUR, decision="approve", scored_at=utc_now() - timedelta(minutes=10))]
    )
    sender = AlertSender.from_settings(warehouse, settings)
    sender.run_once()
    sender.run_once()
    assert ["ingest_lag"] == hooks.kinds
    assert "Ingestion lag: nothing scored for 10 minutes" == hooks.bodies[0]["event"]["subject"]
    warehouse.store_scored_batch([scored("fresh", at=HOUR, decision="approve")])
    sender.run_once()
    assert ["ingest_lag"] == hooks.kinds


class TinyService:
    """A real uvicorn serving a /readyz whose answer a test sets; it can stop and start."""

    def __init__(self) -> None:
        self.ready = True
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def app(self) -> FastAPI:
        """The app: /readyz answers 200 or 503 as `ready` says."""
        app = FastAPI()

        @app.get("/readyz")
        def readyz() -> JSONResponse:
            if self.ready:
                return JSONResponse({"status": "ready"})
            return JSONResponse({"status": "not ready", "reason": "no champion"}, 503)

        return app

    def start(self) -> None:
        """Serve (again, on the same port once it has one)."""
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="error")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self._server.started
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop serving: connections are refused."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def tiny_service() -> Iterator[TinyService]:
    """A running tiny service, stopped after the test."""
    service = TinyService()
    service.start()
    yield service
    service.stop()


def test_a_service_not_ready_twice_in_a_row_is_delivered_once_per_episode(
    warehouse: Warehouse, webhook: tuple[str, Hooks], tiny_service: TinyService
) -> None:
    """Ready: nothing. 503 twice: one alert, not repeated on the third. Ready again, then
    unreachable twice: a second alert, saying it was unreachable."""
    url, hooks = webhook
    settings = Settings(alert_webhook_urls=url, service_url=tiny_service.url + "/")
    sender = AlertSender.from_settings(warehouse, settings)
    sender.run_once()
    tiny_service.ready = False
    sender.run_once()
    assert [] == hooks.kinds
    sender.run_once()
    sender.run_once()
    assert ["service"] == hooks.kinds
    assert "/readyz answered 503" in hooks.bodies[0]["event"]["text"]
    tiny_service.ready = True
    sender.run_once()
    tiny_service.stop()
    sender.run_once()
    sender.run_once()
    assert ["service", "service"] == hooks.kinds
    assert "unreachable (ConnectError)" in hooks.bodies[1]["event"]["text"]
