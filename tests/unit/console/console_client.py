"""Tokens, logins and stored alerts for the console tests."""

import re
from datetime import datetime, timedelta

import httpx
from fastapi.testclient import TestClient

from fraudops.storage import LabelRecord, Reason, ScoredTransaction, ScoreRecord, Warehouse

ANALYST_TOKEN = "pW3xQ9vL2mK8sT4yR7bN1cF6hJ0dZ5gA"  # noqa: S105 - a test's own token
ADMIN_TOKEN = "Yt6Rm2Wq9Lx4Bn7Kc1Vs8Hd3Pf5Gz0Ja"  # noqa: S105
SESSION_SECRET = "Qm8Xv2Lr5Tn9Wc4Hy7Bd1Kf6Zs3Pj0Ga"  # noqa: S105 - a test's own key
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
START = datetime(2024, 3, 10, 12, 0, 0)


def csrf_of(html: str) -> str:
    """The CSRF token a page's form carries."""
    found = CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def log_in(client: TestClient, token: str) -> httpx.Response:
    """Log in through the login form; the client keeps the session cookie."""
    form = client.get("/login")
    return client.post(
        "/login",
        data={"token": token, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )


def page_csrf(client: TestClient, path: str = "/queue") -> str:
    """The session's CSRF token, read from a page's logout form."""
    return csrf_of(client.get(path).text)


def store_alert(
    warehouse: Warehouse,
    trans_num: str,
    *,
    minutes: float = 0.0,
    amount: float = 100.0,
    probability: float = 0.9,
    decision: str = "decline",
    merchant: str = "fraud_Kub PLC",
    category: str = "shopping_net",
    version: str = "1",
    card: str = "4868880499277919",
    shadow: float | None = None,
) -> None:
    """Store one scored transaction, `minutes` after START."""
    at = START + timedelta(minutes=minutes)
    record = {
        "trans_num": trans_num,
        "cc_num": card,
        "merchant": merchant,
        "category": category,
        "amt": amount,
        "dob": "1980-06-15",
        "trans_date_trans_time": at.isoformat(sep=" "),
    }
    score = ScoreRecord(
        model_name="fraud-detector",
        model_version=version,
        fraud_probability=probability,
        decision=decision,  # type: ignore[arg-type]
        scored_at=at,
        reasons=(
            Reason(feature="amount", value=amount, contribution=1.2, text=f"amount {amount:,.2f}"),
        ),
    )
    challenger = None
    if shadow is not None:
        challenger = ScoreRecord(
            model_name="fraud-detector",
            model_version="2",
            fraud_probability=shadow,
            decision="review",
            scored_at=at,
        )
    warehouse.store_scored_batch(
        [ScoredTransaction(transaction=record, score=score, shadow=challenger)]
    )


def label(warehouse: Warehouse, trans_num: str, *, is_fraud: bool = True) -> None:
    """Label a stored transaction as a chargeback would."""
    warehouse.record_labels(
        [LabelRecord(trans_num=trans_num, is_fraud=is_fraud, label_time=START, source="chargeback")]
    )
