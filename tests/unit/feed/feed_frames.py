"""Small Sparkov-shaped frames for the feed tests, built in SPARKOV_COLUMNS order."""

from collections.abc import Sequence

import pandas as pd

from fraudops.data.schema import SPARKOV_COLUMNS


def build_sparkov_frame(
    times: Sequence[str],
    *,
    frauds: Sequence[int] | None = None,
    cc_nums: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per time, with distinct trans_num t0, t1, ... in the given (file) order."""
    count = len(times)
    stamps = pd.to_datetime(pd.Series(list(times), dtype="str"), format="ISO8601", errors="coerce")
    frame = pd.DataFrame(
        {
            "trans_date_trans_time": list(times),
            "cc_num": list(cc_nums) if cc_nums is not None else ["4377338765909719"] * count,
            "merchant": [f"fraud_Merchant {i % 3}" for i in range(count)],
            "category": ["grocery_pos"] * count,
            "amt": [10.5 + i for i in range(count)],
            "first": ["Ann"] * count,
            "last": ["Lee"] * count,
            "gender": ["F"] * count,
            "street": ["1 Main St"] * count,
            "city": ["Springfield"] * count,
            "state": ["IL"] * count,
            "zip": ["62701"] * count,
            "lat": [39.78] * count,
            "long": [-89.65] * count,
            "city_pop": [116250] * count,
            "job": ["Teacher"] * count,
            "dob": ["1980-02-29"] * count,
            "trans_num": [f"t{i}" for i in range(count)],
            "unix_time": stamps.fillna(pd.Timestamp(0)).dt.as_unit("s").astype("int64").tolist(),
            "merch_lat": [39.8] * count,
            "merch_long": [-89.6] * count,
            "is_fraud": list(frauds) if frauds is not None else [i % 2 for i in range(count)],
        },
        columns=list(SPARKOV_COLUMNS),
    )
    return frame


def ms(timestamp: str) -> int:
    """Epoch milliseconds of a naive timestamp read as UTC."""
    return int(pd.Timestamp(timestamp, tz="UTC").value // 1_000_000)
