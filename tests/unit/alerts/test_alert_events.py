"""Alert events in words and data, the decline rule, the backoff and the digest: pure logic."""

from datetime import UTC, datetime, timedelta

import pytest

from fraudops.alerts.events import (
    AlertEvent,
    DeclineRule,
    decline_event,
    lifecycle_event,
    monitoring_event,
)
from fraudops.alerts.sender import digest_event, retry_delay
from fraudops.storage.base import LifecycleEvent, MonitorRun, Reason, ScoreRecord

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def declined(probability: float = 0.93) -> ScoreRecord:
    """A champion's decline with four reasons."""
    return ScoreRecord(
        model_name="fraud-detector",
        model_version="7",
        fraud_probability=probability,
        decision="decline",
        scored_at=T0,
        reasons=tuple(Reason(f"f{i}", float(i), 1.0 - i / 10, f"reason {i}") for i in range(4)),
    )


def test_a_decline_alert_names_the_transaction_amount_merchant_score_and_top_reasons() -> None:
    """The text and payload carry trans_num, amount, merchant, score and three reasons."""
    event = decline_event(
        trans_num="t-42",
        amount=912.5,
        merchant="fraud_Kirlin",
        score=declined(),
        console_url="http://console:8050/",
    )
    assert "decline:t-42" == event.dedup_key
    assert "http://console:8050/cases/t-42" == event.link
    assert "Transaction t-42 was declined: 912.50 at fraud_Kirlin" in event.text
    assert "fraud probability 0.930" in event.text
    assert ["reason 0", "reason 1", "reason 2"] == event.payload["reasons"]
    assert "reason 3" not in event.text
    assert event.message.endswith("http://console:8050/cases/t-42")


def test_without_a_console_url_an_alert_has_no_link() -> None:
    """No FRAUDOPS_CONSOLE_URL: no link, and the message is the text alone."""
    event = decline_event(trans_num="t", amount=1.0, merchant=None, score=declined())
    assert event.link is None
    assert event.text == event.message


def test_an_event_survives_its_stored_form() -> None:
    """as_dict then from_dict gives the same event."""
    event = decline_event(trans_num="t", amount=1.0, merchant="m", score=declined())
    assert event == AlertEvent.from_dict(event.as_dict())


@pytest.mark.parametrize(
    ("min_probability", "min_amount", "expected"),
    [
        (None, None, True),
        (0.95, None, False),
        (0.9, None, True),
        (None, 100.0, True),
        (None, 1000.0, False),
        (0.9, 1000.0, False),
    ],
)
def test_the_decline_rule_filters_by_probability_and_amount(
    min_probability: float | None, min_amount: float | None, expected: bool
) -> None:
    """A decline of probability 0.93 and amount 500 passes only the limits it meets."""
    rule = DeclineRule(min_probability=min_probability, min_amount=min_amount)
    assert expected == rule.matches(fraud_probability=0.93, amount=500.0)


def run(*, retrain: bool, drifted: list[str]) -> MonitorRun:
    """A stored monitoring run."""
    return MonitorRun(
        as_of=T0,
        model_name="fraud-detector",
        model_version="7",
        retrain=retrain,
        reasons=["recall fell below 0.6"] if retrain else [],
        result={"drift": {"drifted": drifted}},
        id=1,
    )


def test_a_monitoring_alert_comes_for_retraining_or_drift_only() -> None:
    """A quiet run raises nothing; retraining and drift each raise an alert saying so."""
    assert monitoring_event(run(retrain=False, drifted=[])) is None
    retrain = monitoring_event(run(retrain=True, drifted=[]))
    drift = monitoring_event(run(retrain=False, drifted=["amount"]))
    assert retrain is not None
    assert "Monitoring asks for retraining" == retrain.subject
    assert drift is not None
    assert "Monitoring reports drift" == drift.subject
    assert ["amount"] == drift.payload["drifted_features"]


def test_promotions_and_rollbacks_raise_alerts_and_other_decisions_do_not() -> None:
    """A promotion raises an alert naming who; a comparison that kept the champion does not."""
    promoted = LifecycleEvent(
        kind="promote",
        trigger="manual",
        actor="cli:ana",
        verdict="promoted",
        model_name="fraud-detector",
        champion_version="8",
        challenger_version="7",
        id=5,
    )
    kept = LifecycleEvent(kind="compare", trigger="schedule", actor="scheduler", verdict="kept")
    event = lifecycle_event(promoted, console_url="http://c")
    assert event is not None
    assert "lifecycle:5" == event.dedup_key
    assert "by cli:ana" in event.text
    assert "http://c/models" == event.link
    assert lifecycle_event(kept) is None


@pytest.mark.parametrize(
    ("attempts", "seconds"), [(0, 0), (1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (60, 3600)]
)
def test_retries_back_off_by_doubling_up_to_an_hour(attempts: int, seconds: int) -> None:
    """30 s after the first failure, doubling each time, never more than an hour."""
    assert timedelta(seconds=seconds) == retry_delay(attempts)


def test_a_digest_counts_the_burst_and_lists_its_subjects() -> None:
    """37 declines fold into "37 more declines in the last 5 minutes" with their trans_nums."""
    events = [
        decline_event(trans_num=f"t{i}", amount=1.0, merchant="m", score=declined())
        for i in range(37)
    ]
    digest = digest_event("decline", events, window=timedelta(minutes=5), key="digest:decline:1")
    assert "37 more declines in the last 5 minutes" == digest.subject
    assert [f"t{i}" for i in range(37)] == digest.payload["trans_nums"]
    assert "... and 17 more." in digest.text


def test_each_failed_quality_check_raises_an_alert_and_warnings_do_not() -> None:
    """A report with one failed and one warning check gives one alert, for the failure."""
    from fraudops.alerts.events import quality_events  # noqa: PLC0415
    from fraudops.monitoring.quality import Check, QualityReport  # noqa: PLC0415

    report = QualityReport(
        as_of=T0,
        start=T0 - timedelta(days=1),
        label_delay_days=7.0,
        transactions=100,
        checks=(
            Check(name="missing", status="fail", value=0.2, limit=0.05, detail="20% missing"),
            Check(name="late", status="warn", value=0.02, limit=0.01, detail="2% late"),
        ),
    )
    [event] = quality_events(report, console_url="http://c")
    assert "quality:missing:2026-03-01T12:00:00+00:00" == event.dedup_key
    assert "Data-quality check failed: missing" == event.subject
    assert "http://c/monitoring" == event.link
