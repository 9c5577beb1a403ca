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
