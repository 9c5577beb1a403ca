"""Alert events: what happened, in a subject and a text for people and a payload for machines.

Pure functions from the records the loop already has (a score, a monitoring run, a lifecycle
decision, a data-quality result) to an AlertEvent; no I/O.
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudops.monitoring.daily import DailyReport
    from fraudops.monitoring.quality import QualityReport
    from fraudops.storage.base import LifecycleEvent, MonitorRun, ScoreRecord

DECLINE = "decline"
MONITORING = "monitoring"
LIFECYCLE = "lifecycle"
QUALITY = "quality"
DAILY_REPORT = "daily_report"
DIGEST = "digest"
# Lifecycle verdicts worth an alert: the model in service changed.
SERVICE_CHANGES = ("promoted", "rolled_back")


@dataclass(frozen=True, kw_only=True)
class AlertEvent:
    """One alert: its kind, the key that makes it unique, words for people, data for machines."""

    kind: str
    dedup_key: str
    subject: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)
    link: str | None = None  # the console page about it, when the console URL is known

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form, as stored in the outbox and posted to webhooks."""
        return {
            "kind": self.kind,
            "dedup_key": self.dedup_key,
            "subject": self.subject,
            "text": self.text,
            "payload": self.payload,
            "link": self.link,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "AlertEvent":
        """The event back from its stored form."""
        return cls(
            kind=str(document["kind"]),
            dedup_key=str(document["dedup_key"]),
            subject=str(document["subject"]),
            text=str(document["text"]),
            payload=dict(document.get("payload") or {}),
            link=document.get("link"),
        )

    @property
    def message(self) -> str:
        """The text with the console link, as e-mail and chat show it."""
        return self.text if self.link is None else f"{self.text}\n{self.link}"


def console_link(console_url: str | None, path: str) -> str | None:
    """The console URL of a page, or None when no console URL is configured."""
    if not console_url:
        return None
    return console_url.rstrip("/") + path


@dataclass(frozen=True, kw_only=True)
class DeclineRule:
    """Which declined transactions raise an alert: all, or those above a probability or amount."""

    min_probability: float | None = None
    min_amount: float | None = None
    console_url: str | None = None

    def matches(self, *, fraud_probability: float, amount: float) -> bool:
        """Whether a declined transaction with this probability and amount is worth an alert."""
        if self.min_probability is not None and fraud_probability < self.min_probability:
            return False
        return self.min_amount is None or amount >= self.min_amount


def decline_event(
    *,
    trans_num: str,
    amount: float,
    merchant: str | None,
    score: "ScoreRecord",
    console_url: str | None = None,
    top_reasons: int = 3,
) -> AlertEvent:
    """The alert of a declined transaction: trans_num, amount, merchant, score, top reasons."""
    reasons = [reason.text for reason in score.reasons[:top_reasons]]
    shown_merchant = merchant or "an unknown merchant"
    lines = [
        f"Transaction {trans_num} was declined: {amount:.2f} at {shown_merchant}, "
        f"fraud probability {score.fraud_probability:.3f} "
        f"(model {score.model_name} v{score.model_version}).",
    ]
    if reasons:
        lines.append("Top reasons:")
        lines += [f"- {text}" for text in reasons]
    return AlertEvent(
        kind=DECLINE,
        dedup_key=f"decline:{trans_num}",
        subject=f"Declined: {trans_num} ({amount:.2f} at {shown_merchant})",
        text="\n".join(lines),
        payload={
            "trans_num": trans_num,
            "amount": amount,
            "merchant": merchant,
            "fraud_probability": score.fraud_probability,
            "decision": score.decision,
            "model_name": score.model_name,
            "model_version": str(score.model_version),
            "reasons": reasons,
        },
        link=console_link(console_url, f"/cases/{trans_num}"),
    )


def monitoring_event(run: "MonitorRun", *, console_url: str | None = None) -> AlertEvent | None:
    """The alert of a monitoring verdict that asks for retraining or reports drift, else None."""
    drifted = _drifted_features(run.result)
    if not run.retrain and not drifted:
        return None
    what = "asks for retraining" if run.retrain else "reports drift"
    lines = [f"Monitoring as of {run.as_of.isoformat()} {what} (model {run.model_version})."]
    lines += [f"- {reason}" for reason in run.reasons]
    if drifted:
        lines.append("Drifted features: " + ", ".join(drifted))
    return AlertEvent(
        kind=MONITORING,
        dedup_key=f"monitoring:{run.model_version}:{run.as_of.isoformat()}",
        subject=f"Monitoring {what}",
        text="\n".join(lines),
        payload={
            "as_of": run.as_of.isoformat(),
            "model_name": run.model_name,
            "model_version": run.model_version,
            "retrain": run.retrain,
            "reasons": list(run.reasons),
            "drifted_features": drifted,
        },
        link=console_link(console_url, "/monitoring"),
    )


def lifecycle_event(
    event: "LifecycleEvent", *, console_url: str | None = None
) -> AlertEvent | None:
    """The alert of a promotion or rollback, else None."""
    if event.kind not in ("promote", "rollback") or event.verdict not in SERVICE_CHANGES:
        return None
    verb = "promoted" if event.kind == "promote" else "rolled back"
    text = (
        f"Model {event.model_name} was {verb} by {event.actor} ({event.trigger}): "
        f"champion {event.champion_version}, challenger {event.challenger_version}."
    )
    return AlertEvent(
        kind=LIFECYCLE,
        dedup_key=f"lifecycle:{event.id if event.id is not None else text}",
        subject=f"Model {verb}: {event.model_name}",
        text=text,
        payload={
            "kind": event.kind,
            "verdict": event.verdict,
            "actor": event.actor,
            "trigger": event.trigger,
            "model_name": event.model_name,
            "champion_version": event.champion_version,
            "challenger_version": event.challenger_version,
        },
        link=console_link(console_url, "/models"),
    )


def quality_events(report: "QualityReport", *, console_url: str | None = None) -> list[AlertEvent]:
    """The alerts of the failed checks of a data-quality report."""
    as_of = report.as_of.isoformat()
    return [
        quality_event(check=check.name, detail=check.detail, as_of=as_of, console_url=console_url)
        for check in report.checks
        if check.status == "fail"
    ]


def quality_event(
    *, check: str, detail: str, as_of: str, console_url: str | None = None
) -> AlertEvent:
    """The alert of a failed data-quality check."""
    return AlertEvent(
        kind=QUALITY,
        dedup_key=f"quality:{check}:{as_of}",
        subject=f"Data-quality check failed: {check}",
        text=f"The data-quality check {check} failed as of {as_of}: {detail}",
        payload={"check": check, "detail": detail, "as_of": as_of},
        link=console_link(console_url, "/monitoring"),
    )


def daily_report_event(report: "DailyReport", *, console_url: str | None = None) -> AlertEvent:
    """The daily operations report as an alert: its figures in plain text, once per day."""
    from fraudops.monitoring.daily import daily_text  # noqa: PLC0415 - rich only when used

    day = report.day.isoformat()
    t = report.totals
    summary = (
        f"{t.scored:,} scored, {t.declines:,} declines, {t.reviews:,} reviews, "
        f"{t.frauds:,} frauds confirmed"
    )
    return AlertEvent(
        kind=DAILY_REPORT,
        dedup_key=f"{DAILY_REPORT}:{day}",
        subject=f"Daily operations report {day}: {summary}",
        text=daily_text(report),
        payload=report.to_dict(),
        link=console_link(console_url, f"/reports/daily?date={day}"),
    )


def _drifted_features(result: dict[str, Any]) -> list[str]:
    """Names of the features a monitoring result found drifted."""
    drift = result.get("drift")
    drifted = drift.get("drifted") if isinstance(drift, dict) else None
    return [str(name) for name in drifted] if isinstance(drifted, list) else []
