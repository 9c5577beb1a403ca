"""Fill a warehouse with a simulated frame as if it had been served and then labelled."""

from datetime import datetime, timedelta

import pandas as pd

from fraudops.storage import LabelRecord, ScoredTransaction, ScoreRecord, Warehouse

PLACEHOLDER_SCORE = ScoreRecord(
    model_name="fraud-detector",
    model_version="0",
    fraud_probability=0.0,
    decision="approve",
    scored_at=datetime(2024, 1, 1),
)


def store_served(warehouse: Warehouse, frame: pd.DataFrame, *, label_days: float) -> None:
    """Store every transaction with a placeholder score; each fraud labelled `label_days` later.

    Legitimate transactions get no label, as in production: unlabelled and older than the
    label delay means legitimate.
    """
    records = frame.drop(columns=["is_fraud", "fraud_scenario"]).to_dict(orient="records")
    for first in range(0, len(records), 5_000):
        part = records[first : first + 5_000]
        warehouse.store_scored_batch(
            [ScoredTransaction(transaction=r, score=PLACEHOLDER_SCORE) for r in part]
        )
    frauds = frame[frame["is_fraud"] == 1]
    warehouse.record_labels(
        [
            LabelRecord(
                trans_num=row.trans_num,
                is_fraud=True,
                label_time=datetime.fromisoformat(row.trans_date_trans_time)
                + timedelta(days=label_days),
                source="chargeback",
            )
            for row in frauds.itertuples()
        ]
    )


# One day (2024-03-10) of hand-made served transactions, and one on each side of it:
# (trans_num, event time, amount, champion version, decision, label or None), the label as
# (is_fraud, hours after the event, source). tests/integration/test_daily_report.py works
# out the report's figures from these rows by hand.
DAY_ROWS: tuple[tuple[str, str, float, str, str, tuple[bool, float, str] | None], ...] = (
    ("d1", "2024-03-10T01:00:00", 100.0, "3", "approve", None),
    ("d2", "2024-03-10T03:00:00", 50.0, "3", "approve", (True, 120.0, "chargeback")),
    ("d3", "2024-03-10T05:00:00", 200.0, "3", "review", (True, 2.0, "analyst")),
    ("d4", "2024-03-10T08:00:00", 80.0, "3", "review", (False, 4.0, "analyst")),
    ("d5", "2024-03-10T10:00:00", 300.0, "4", "decline", (True, 48.0, "chargeback")),
    ("d6", "2024-03-10T12:00:00", 20.0, "4", "decline", None),
    ("d7", "2024-03-10T23:59:59", 10.0, "4", "review", (False, 1.0, "analyst")),
    ("before", "2024-03-09T23:59:59", 500.0, "3", "decline", (True, 1.0, "analyst")),
    ("after", "2024-03-11T00:00:00", 999.0, "4", "decline", (True, 1.0, "analyst")),
)


def store_day(warehouse: Warehouse) -> None:
    """Store DAY_ROWS as served (scored one second after the event) and labelled."""
    items = []
    labels = []
    for trans_num, at, amount, version, decision, label in DAY_ROWS:
        event_time = datetime.fromisoformat(at)
        record = {
            "trans_num": trans_num,
            "cc_num": "4868880499277919",
            "merchant": f"merchant {trans_num}",
            "category": "shopping_net",
            "amt": amount,
            "trans_date_trans_time": at,
        }
        score = ScoreRecord(
            model_name="fraud-detector",
            model_version=version,
            fraud_probability={"approve": 0.1, "review": 0.6, "decline": 0.9}[decision],
            decision=decision,  # type: ignore[arg-type]
            scored_at=event_time + timedelta(seconds=1),
        )
        items.append(ScoredTransaction(transaction=record, score=score))
        if label is not None:
            is_fraud, hours, source = label
            labels.append(
                LabelRecord(
                    trans_num=trans_num,
                    is_fraud=is_fraud,
                    label_time=event_time + timedelta(hours=hours),
                    source=source,
                )
            )
    warehouse.store_scored_batch(items)
    warehouse.record_labels(labels)
