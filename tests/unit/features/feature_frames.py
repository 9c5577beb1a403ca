"""Tiny transaction frames for the feature tests, parsed the way load_transactions parses them."""

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraudops.data.profiles import FDH, SPARKOV, ULB
from fraudops.data.validation import check_frame
from fraudops.features.online import EVENT_TIME_MS
from fraudops.features.spec import FEATURE_GROUPS, FeatureSpec, fit_feature_spec

# 2024-01-01 was a Monday.
START = datetime(2024, 1, 1)
HOUR = 3_600
DAY = 24 * HOUR

_SPARKOV_DEFAULTS: dict[str, Any] = {
    "cc_num": "card-a",
    "merchant": "shop-1",
    "category": "grocery_pos",
    "amt": 10.0,
    "gender": "F",
    "lat": 40.0,
    "long": -74.0,
    "city_pop": 1000,
    "dob": "1990-01-01",
    "merch_lat": 40.0,
    "merch_long": -74.0,
    "is_fraud": 0,
}


def stamp(seconds: float) -> str:
    """The Sparkov time text of a moment `seconds` after START."""
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def parsed(raw: pd.DataFrame, profile: Any, *, require_label: bool = True) -> pd.DataFrame:
    """A raw frame checked and parsed by the readers' validation, refusing any bad row."""
    check = check_frame(raw, profile, require_label=require_label)
    assert not check.has_errors, [str(issue) for issue in check.issues]
    return check.clean_frame()


def sparkov(*rows: dict[str, Any], label: bool = True) -> pd.DataFrame:
    """Loaded Sparkov rows: `s` is seconds after START, `id` the trans_num (else t000, t001..)."""
    records = []
    for number, row in enumerate(rows):
        fields = dict(row)
        record = _SPARKOV_DEFAULTS | {"trans_num": fields.pop("id", f"t{number:03d}")}
        record["trans_date_trans_time"] = stamp(fields.pop("s"))
        records.append(record | fields)
    raw = pd.DataFrame.from_records(records)
    if not label:
        raw = raw.drop(columns="is_fraud")
    return parsed(raw, SPARKOV, require_label=label)


def fdh(*rows: tuple[float, int, int, float, int]) -> pd.DataFrame:
    """Loaded FDH rows from (seconds after START, customer, terminal, amount, fraud)."""
    raw = pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(len(rows)),
            "TX_DATETIME": [stamp(row[0]) for row in rows],
            "CUSTOMER_ID": [row[1] for row in rows],
            "TERMINAL_ID": [row[2] for row in rows],
            "TX_AMOUNT": [row[3] for row in rows],
            "TX_FRAUD": [row[4] for row in rows],
        }
    )
    return parsed(raw, FDH)


def ulb(*rows: tuple[float, float, int]) -> pd.DataFrame:
    """Loaded ULB rows from (seconds from start, amount, class), V1..V28 = 0.5."""
    raw = pd.DataFrame(
        {"Time": [row[0] for row in rows], "Amount": [row[1] for row in rows]}
        | {f"V{i}": [0.5] * len(rows) for i in range(1, 29)}
        | {"Class": [row[2] for row in rows]}
    )
    return parsed(raw, ULB)


def sparkov_spec(
    frame: pd.DataFrame, *, delay_days: float = 0.0, lag_days: float | None = None
) -> FeatureSpec:
    """The Sparkov spec fitted on a frame, with a label delay in days and every feature group;
    the label windows end `lag_days` before t (default: as the frame's labels say)."""
    return fit_feature_spec(
        frame,
        SPARKOV,
        label_delay_ms=round(delay_days * DAY * 1000),
        groups=frozenset(FEATURE_GROUPS),
        label_window_lag_ms=None if lag_days is None else round(lag_days * DAY * 1000),
    )


def column(values: np.ndarray, spec: FeatureSpec, name: str) -> list[float]:
    """One named feature of every row, as a plain list."""
    result: list[float] = values[:, spec.names.index(name)].tolist()
    return result


START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, START in epoch milliseconds


def tx(
    seconds: float, *, trans_id: str, card: str = "card-a", amount: float | None = 10.0
) -> dict[str, Any]:
    """An online Sparkov transaction `seconds` after 2024-01-01, at shop-1."""
    return {
        "trans_num": trans_id,
        "cc_num": card,
        "merchant": "shop-1",
        "amt": amount,
        "category": "home",
        "gender": "F",
        "lat": 40.0,
        "long": -74.0,
        "merch_lat": 40.0,
        "merch_long": -74.0,
        "city_pop": 1000.0,
        "dob": "1990-01-01",
        EVENT_TIME_MS: START_MS + round(seconds * 1000),
    }
