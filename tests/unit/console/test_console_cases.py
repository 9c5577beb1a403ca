"""The review queue, a case page and the analyst's label."""

import re
from datetime import datetime

import pytest
from console_client import label, page_csrf, store_alert
from fastapi.testclient import TestClient

from fraudops.console.plots import card_timeline
from fraudops.storage import Warehouse
from fraudops.storage.console import CardPoint


def queue_trans_nums(client: TestClient, query: str = "") -> list[str]:
    """The trans_nums the queue's rows link to, in order."""
    html = client.get(f"/queue/rows?{query}", headers={"HX-Request": "true"}).text
    return re.findall(r'href="/cases/([^"]+)"', html)


def test_the_queue_holds_unlabelled_reviews_and_declines_newest_first(
    analyst: TestClient, warehouse: Warehouse
) -> None:
    """Approvals and labelled alerts are left out."""
    store_alert(warehouse, "old-decline", minutes=1)
    store_alert(warehouse, "review", minutes=2, decision="review", probability=0.5)
    store_alert(warehouse, "approved", minutes=3, decision="approve", probability=0.1)
    store_alert(warehouse, "labelled", minutes=4)
    label(warehouse, "labelled")
    assert ["review", "old-decline"] == queue_trans_nums(analyst)
    assert ["old-decline", "review"] == queue_trans_nums(analyst, "order=riskiest")


def test_the_queue_page_polls_its_rows(analyst: TestClient, warehouse: Warehouse) -> None:
    """The rows' body asks for itself every second, with the page's filters."""
    store_alert(warehouse, "t1")
    html = analyst.get("/queue?decision=decline&min_amount=10").text
    assert 'hx-get="/queue/rows?decision=decline&amp;min_amount=10.0' in html
    assert 'hx-trigger="every 1s"' in html
    assert "/cases/t1" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("decision=review", ["r"]),
        ("min_amount=150", ["big"]),
        ("max_amount=60", ["small"]),
        ("category=gas_transport", ["gas"]),
        ("merchant=fraud_Other", ["other"]),
        ("model_version=7", ["v7"]),
        ("start=2024-03-10T12:05:00", ["v7", "other", "gas"]),
        ("end=2024-03-10T12:02:00", ["big", "small"]),
        ("start=2024-03-10T12:02:00&end=2024-03-10T12:03:00", ["r"]),
        ("start=2024-03-10T14:05:00%2B02:00", ["v7", "other", "gas"]),  # converted to UTC
    ],
)
def test_queue_filters(
    analyst: TestClient, warehouse: Warehouse, query: str, expected: list[str]
) -> None:
    """Each filter keeps only its alerts."""
    store_alert(warehouse, "small", minutes=0, amount=50.0)
    store_alert(warehouse, "big", minutes=1, amount=200.0)
    store_alert(warehouse, "r", minutes=2, decision="review", probability=0.5)
    store_alert(warehouse, "gas", minutes=5, category="gas_transport")
    store_alert(warehouse, "other", minutes=6, merchant="fraud_Other")
    store_alert(warehouse, "v7", minutes=7, version="7")
    assert expected == queue_trans_nums(analyst, query)


def test_the_queue_pages(analyst: TestClient, warehouse: Warehouse) -> None:
    """25 a page; the second page holds the rest, and the first links to it."""
    for number in range(30):
        store_alert(warehouse, f"t{number:02d}", minutes=number)
    first = queue_trans_nums(analyst)
    second = queue_trans_nums(analyst, "page=2")
    assert [f"t{n:02d}" for n in range(29, 4, -1)] == first
    assert [f"t{n:02d}" for n in range(4, -1, -1)] == second
    assert 'href="/queue?page=2"' in analyst.get("/queue").text
    assert "Next page" not in analyst.get("/queue?page=2").text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("min_amount=abc", "min_amount"),
        ("min_amount=-5", "min_amount"),
        ("max_amount=inf", "max_amount"),
        ("min_amount=10&max_amount=5", "max_amount"),
        ("decision=approve", "decision"),
        ("order=random", "order"),
        ("page=0", "page"),
        ("page=99999999999999999999", "page"),
        ("start=yesterday", "start"),
        ("start=2024-03-02&end=2024-03-01", "end"),
        ("merchant=" + "m" * 300, "merchant"),
        ("category=%00", "category"),
        ("sort=amount", "sort"),
        ("start=0001-01-01T00:00:00%2B05:00", "start"),
    ],
)
def test_bad_filters_are_a_422_naming_the_field(
    analyst: TestClient, query: str, field: str
) -> None:
    """Hostile query strings never give a 500; the answer names the field."""
    for path in ("/queue", "/queue/rows"):
        response = analyst.get(f"{path}?{query}")
        assert 422 == response.status_code, (path, response.text[:200])
        assert field in response.text


def test_a_script_in_a_merchant_name_is_shown_as_text(
    analyst: TestClient, warehouse: Warehouse
) -> None:
    """Transaction content is untrusted: escaped in the queue and the case page."""
    store_alert(warehouse, "xss", merchant="<script>alert(1)</script>")
    for html in (analyst.get("/queue").text, analyst.get("/cases/xss").text):
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_pages_carry_the_security_headers(analyst: TestClient) -> None:
    """No inline script, no framing, no sniffing, no cached pages."""
    response = analyst.get("/queue")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "DENY" == response.headers["x-frame-options"]
    assert "nosniff" == response.headers["x-content-type-options"]
    assert "no-store" == response.headers["cache-control"]
    assert "<script>" not in response.text  # scripts only by src
    static = analyst.get("/static/htmx.min.js")
    assert 200 == static.status_code
    assert "max-age=3600" in static.headers["cache-control"]


def test_the_case_page_shows_the_case_without_personal_data(
    analyst: TestClient, warehouse: Warehouse
) -> None:
    """Last four digits, an age, the score, reasons in words, the shadow score, the merchant."""
    store_alert(warehouse, "earlier", minutes=-60, probability=0.2, decision="approve")
    store_alert(warehouse, "case-1", amount=1249.99, probability=0.87, shadow=0.42)
    html = analyst.get("/cases/case-1").text
    assert "•••• 7919" in html
    assert "4868880499277919" not in html
    assert "1980-06-15" not in html
    assert "<dd>43</dd>" in html  # born 1980-06-15, bought on 2024-03-10
    assert "0.870" in html
    assert "amount 1,249.99" in html
    assert "0.420 (review, v2)" in html
    assert "50.0% (1)" in html  # the merchant: 2 transactions, 1 alert
    assert "Confirm fraud" in html
    assert 'data-shortcut="f"' in html


def test_an_unknown_case_is_a_404(analyst: TestClient) -> None:
    """Not stored: 404 naming it."""
    response = analyst.get("/cases/nope")
    assert 404 == response.status_code
    assert "nope" in response.text


def test_the_card_timeline_is_an_svg(analyst: TestClient, warehouse: Warehouse) -> None:
    """The case's card history as an SVG image, with no script in it."""
    store_alert(warehouse, "earlier", minutes=-60, probability=0.2, decision="approve")
    store_alert(warehouse, "case-1")
    response = analyst.get("/plots/card-timeline.svg", params={"trans_num": "case-1"})
    assert 200 == response.status_code
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in response.text
    assert "<script" not in response.text
    assert 404 == analyst.get("/plots/card-timeline.svg?trans_num=nope").status_code
    assert 422 == analyst.get("/plots/card-timeline.svg").status_code


def test_a_card_with_one_purchase_gets_the_day_it_falls_on_not_years() -> None:
    """The time axis of a single purchase spans its day (hours as ticks), not matplotlib's years."""
    point = CardPoint(
        trans_num="only",
        event_time=datetime(2024, 1, 15, 13, 20),
        amount=42.0,
        fraud_probability=0.9,
        decision="decline",
        is_fraud=None,
    )
    svg = card_timeline([point], current="only").decode()
    ticks = set(re.findall(r"<text[^>]*>([^<]*)</text>", svg))
    assert {"06:00", "12:00", "18:00"} <= ticks, sorted(ticks)
    assert not any(re.fullmatch(r"20\d\d", tick) for tick in ticks), sorted(ticks)


def test_confirming_fraud_stores_an_analyst_label_audits_it_and_opens_the_next_case(
    analyst: TestClient, warehouse: Warehouse
) -> None:
    """The label has source analyst; the audit trail names alice and keeps the comment."""
    store_alert(warehouse, "first", minutes=1)
    store_alert(warehouse, "second", minutes=2)
    csrf = page_csrf(analyst, "/cases/second")
    response = analyst.post(
        "/labels",
        data={"csrf_token": csrf, "trans_num": "second", "verdict": "fraud", "comment": "called"},
        follow_redirects=False,
    )
    assert (303, "/cases/first") == (response.status_code, response.headers["location"])
    stored = warehouse.get_transaction("second")
    assert stored is not None and stored.label is not None
    assert (True, "analyst", "alice") == (
        stored.label.is_fraud,
        stored.label.source,
        stored.label.analyst,
    )
    event = warehouse.events(limit=1)[0]
    assert ("label", "fraud", "console:alice") == (event.kind, event.verdict, event.actor)
    assert {
        "trans_num": "second",
        "comment": "called",
        "via": "warehouse",
    }.items() <= event.detail.items()
    assert ["first"] == queue_trans_nums(analyst)
    response = analyst.post(
        "/labels",
        data={"csrf_token": csrf, "trans_num": "first", "verdict": "legitimate"},
        follow_redirects=False,
    )
    assert "/queue" == response.headers["location"]
    first = warehouse.get_transaction("first")
    assert first is not None and first.label is not None and first.label.is_fraud is False


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"trans_num": "t1", "verdict": "maybe"}, 422),
        ({"trans_num": "t1", "verdict": "fraud", "comment": "x" * 2001}, 422),
        ({"trans_num": "missing", "verdict": "fraud"}, 404),
    ],
)
def test_bad_labels_are_refused(
    analyst: TestClient, warehouse: Warehouse, form: dict[str, str], status: int
) -> None:
    """A verdict other than the two buttons', a long comment, an unknown case."""
    store_alert(warehouse, "t1")
    response = analyst.post("/labels", data={"csrf_token": page_csrf(analyst), **form})
    assert status == response.status_code
    stored = warehouse.get_transaction("t1")
    assert stored is not None and stored.label is None


def test_a_label_without_the_csrf_token_is_refused(
    analyst: TestClient, warehouse: Warehouse
) -> None:
    """403, and no label."""
    store_alert(warehouse, "t1")
    response = analyst.post("/labels", data={"trans_num": "t1", "verdict": "fraud"})
    assert 403 == response.status_code
    stored = warehouse.get_transaction("t1")
    assert stored is not None and stored.label is None


def test_unknown_pages_are_error_pages_not_500(analyst: TestClient) -> None:
    """404 for a path the console does not have, 405 for a wrong method: pages, escaped."""
    missing = analyst.get("/nothing-<b>here</b>")
    assert 404 == missing.status_code
    assert "text/html" in missing.headers["content-type"]
    assert 405 == analyst.put("/queue").status_code
