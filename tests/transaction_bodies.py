"""JSON bodies of /v1/score built from loaded transaction rows, for the API and process tests."""

from collections.abc import Mapping
from typing import Any

import pandas as pd


def request_body(row: Mapping[str, Any]) -> dict[str, Any]:
    """A loaded Sparkov row (readers' output, with event_time) as a canonical JSON body."""
    return {
        "trans_num": str(row["trans_num"]),
        "cc_num": str(row["cc_num"]),
        "merchant": str(row["merchant"]),
        "category": str(row["category"]),
        "amt": float(row["amt"]),
        "first": str(row["first"]),
        "last": str(row["last"]),
        "gender": str(row["gender"]),
        "street": str(row["street"]),
        "city": str(row["city"]),
        "state": str(row["state"]),
        "zip": str(row["zip"]),
        "lat": float(row["lat"]),
        "long": float(row["long"]),
        "city_pop": int(row["city_pop"]),
        "job": str(row["job"]),
        "dob": pd.Timestamp(row["dob"]).date().isoformat(),
        "merch_lat": float(row["merch_lat"]),
        "merch_long": float(row["merch_long"]),
        "trans_date_trans_time": pd.Timestamp(row["event_time"]).isoformat(),
    }
