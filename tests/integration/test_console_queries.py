"""The console's warehouse reads (storage.console) on SQLite and PostgreSQL alike."""

from datetime import date, datetime, timedelta

from fraudops.storage import ScoredTransaction, ScoreRecord, Warehouse
from fraudops.storage.console import DayAlerts, QueueFilter
from warehouse_fill import store_day

EXTRA = (  # trans_num, event time, amount, decision, probability, merchant
    ("e1", "2024-03-11T09:00:00", 40.0, "review", 0.55, "merchant d1"),
    ("e2", "2024-03-11T10:00:00", 900.0, "decline", 0.97, "merchant d1"),
    ("e3", "2024-03-12T08:00:00", 15.0, "decline", 0.91, "other"),
)


def store_extra(warehouse: Warehouse) -> None:
    """Three unlabelled alerts after DAY_ROWS' day, on the same card."""
    items = []
    for trans_num, at, amount, decision, probability, merchant in EXTRA:
        record = {
            "trans_num": trans_num,
            "cc_num": "4868880499277919",
            "merchant": merchant,
            "category": "grocery_pos",
            "amt": amount,
            "trans_date_trans_time": at,
        }
        score = ScoreRecord(
            model_name="fraud-detector",
            model_version="5",
            fraud_probability=probability,
            decision=decision,  # type: ignore[arg-type]
            scored_at=datetime.fromisoformat(at),
        )
        items.append(ScoredTransaction(transaction=record, score=score))
    warehouse.store_scored_batch(items)


def test_the_queue_orders_filters_and_pages(warehouse: Warehouse) -> None:
    """Unlabelled alerts only (d6 and the extras), in either order, filtered, paged."""
    store_day(warehouse)
    store_extra(warehouse)

    def queue(which: QueueFilter = QueueFilter(), **options: object) -> list[str]:  # noqa: B008
        options.setdefault("order", "newest")
        options.setdefault("limit", 10)
        return [item.trans_num for item in warehouse.alert_queue(which, **options)]  # type: ignore[arg-type]

    assert ["e3", "e2", "e1", "d6"] == queue()
    assert ["e2", "e3", "d6", "e1"] == queue(order="riskiest")
    assert ["e2", "e1"] == queue(limit=2, offset=1)
    assert ["e1"] == queue(QueueFilter(decision="review"))
    assert ["e2"] == queue(QueueFilter(min_amount=100.0))
    assert ["e3", "d6"] == queue(QueueFilter(max_amount=20.0))
    assert ["e3", "e2", "e1"] == queue(QueueFilter(category="grocery_pos"))
    assert ["e2", "e1"] == queue(QueueFilter(merchant="merchant d1"))
    assert ["d6"] == queue(QueueFilter(model_version="4"))
    day = QueueFilter(start=datetime(2024, 3, 11), end=datetime(2024, 3, 12))
    assert ["e2", "e1"] == queue(day)
    item = warehouse.alert_queue(QueueFilter(decision="review"), order="newest", limit=1)[0]
    assert ("7919", 40.0, "5") == (item.card_last4, item.amount, item.model_version)


def test_a_cards_history_and_a_merchants_rates(warehouse: Warehouse) -> None:
    """The card's transactions in time order with scores and labels; the merchant's counts."""
    store_day(warehouse)
    store_extra(warehouse)
    card = warehouse.card_of("e2")
    assert card is not None and card.startswith("h1:")
    history = warehouse.card_history(
        card, start=datetime(2024, 3, 10, 23), end=datetime(2024, 3, 11, 9)
    )
    assert [("d7", 0.6, False), ("after", 0.9, True), ("e1", 0.55, None)] == [
        (p.trans_num, p.fraud_probability, p.is_fraud) for p in history
    ]
    latest = warehouse.card_history(
        card, start=datetime(2024, 1, 1), end=datetime(2025, 1, 1), limit=2
    )
    assert ["e2", "e3"] == [p.trans_num for p in latest]
    rates = warehouse.merchant_rates(
        "merchant d1", start=datetime(2024, 3, 1), end=datetime(2024, 3, 12)
    )
    # d1 (approve, unlabelled), e1 (review), e2 (decline): two alerts, nothing labelled.
    assert (3, 2, 0, 0) == (rates.transactions, rates.alerts, rates.frauds, rates.labelled)
    assert warehouse.card_of("nope") is None


def test_alerts_per_day_and_the_score_histogram(warehouse: Warehouse) -> None:
    """Reviews and declines per event day; scores binned with the frauds apart."""
    store_day(warehouse)
    store_extra(warehouse)
    days = warehouse.alerts_per_day(datetime(2024, 3, 9), datetime(2024, 3, 13))
    assert [
        DayAlerts(day=date(2024, 3, 9), reviews=0, declines=1),
        DayAlerts(day=date(2024, 3, 10), reviews=3, declines=2),
        DayAlerts(day=date(2024, 3, 11), reviews=1, declines=2),
        DayAlerts(day=date(2024, 3, 12), reviews=0, declines=1),
    ] == days
    frauds, others = warehouse.score_histogram(
        datetime(2024, 3, 10), datetime(2024, 3, 10) + timedelta(days=1), bins=10
    )
    # d1 0.1 | d2 0.1 fraud | d3 0.6 fraud, d4 0.6, d7 0.6 | d5 0.9 fraud, d6 0.9
    assert [0, 1, 0, 0, 0, 0, 1, 0, 0, 1] == frauds
    assert [0, 1, 0, 0, 0, 0, 2, 0, 0, 1] == others
