"""Request bodies and tokens shared by the API tests."""

import secrets
from typing import Any

import pandas as pd

SCORING_TOKEN = "score-" + secrets.token_urlsafe(24)
ADMIN_TOKEN = "admin-" + secrets.token_urlsafe(24)


def transaction_json(frame: pd.DataFrame, index: int) -> dict[str, Any]:
    """A sample row as the JSON body of /v1/score (its timestamp as ISO text)."""
    row = frame.iloc[index]
    body = {
        "trans_num": str(row["trans_num"]),
        "cc_num": int(row["cc_num"]),
        "merchant": str(row["merchant"]),
        "category": str(row["category"]),
        "amt": float(row["amt"]),
        "first": str(row["first"]),
        "last": str(row["last"]),
        "gender": str(row["gender"]),
        "street": str(row["street"]),
        "city": str(row["city"]),
        "state": str(row["state"]),
        "zip": int(row["zip"]),
        "lat": float(row["lat"]),
        "long": float(row["long"]),
        "city_pop": int(row["city_pop"]),
        "job": str(row["job"]),
        "dob": pd.Timestamp(row["dob"]).date().isoformat(),
        "merch_lat": float(row["merch_lat"]),
        "merch_long": float(row["merch_long"]),
        "trans_date_trans_time": pd.Timestamp(row["trans_date_trans_time"]).isoformat(),
    }
    return body
