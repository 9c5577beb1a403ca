"""Write simulated transactions to Parquet or CSV, in Sparkov or FDH columns."""

from datetime import date, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fraudops.simulate.catalogue import SCENARIOS

OutputKind = Literal["parquet", "csv"]
FDH_COLUMNS: tuple[str, ...] = (
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
)


class OutputPathError(ValueError):
    """An output path whose extension names no supported format."""


def output_kind(path: Path) -> OutputKind:
    """Parquet for .parquet, CSV for .csv/.csv.gz; anything else is an error."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    msg = f"cannot tell the format of {path}: use a .parquet, .csv or .csv.gz file name"
    raise OutputPathError(msg)


def write_transactions(frame: pd.DataFrame, path: Path) -> Path:
    """Write a frame as Parquet or CSV (gzip for .csv.gz), creating the folder; return the path."""
    kind = output_kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, compression="infer")
    return path


def to_fdh(frame: pd.DataFrame, *, origin: date | None = None) -> pd.DataFrame:
    """The same transactions in Fraud Detection Handbook columns (integer ids, scenario codes)."""
    # TX_TIME_SECONDS and TX_TIME_DAYS count from midnight of `origin` (default: the first
    # transaction's day); customers and terminals are numbered in order of first appearance.
    stamps = pd.to_datetime(frame["trans_date_trans_time"], format="%Y-%m-%d %H:%M:%S").astype(
        "datetime64[s]"
    )
    if origin is None:
        origin = stamps.min().date() if len(frame) else date(1970, 1, 1)
    seconds = (
        stamps - pd.Timestamp(datetime.combine(origin, datetime.min.time()))
    ).dt.total_seconds()
    codes = {"": 0} | {name: number for number, name in enumerate(SCENARIOS, start=1)}
    return pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(len(frame), dtype=np.int64),
            "TX_DATETIME": stamps.to_numpy(),
            "CUSTOMER_ID": pd.factorize(frame["cc_num"])[0].astype(np.int64),
            "TERMINAL_ID": pd.factorize(frame["merchant"])[0].astype(np.int64),
            "TX_AMOUNT": frame["amt"].to_numpy(dtype=np.float64),
            "TX_TIME_SECONDS": seconds.to_numpy(dtype=np.int64),
            "TX_TIME_DAYS": (seconds // 86_400).to_numpy(dtype=np.int64),
            "TX_FRAUD": frame["is_fraud"].to_numpy(dtype=np.int64),
            "TX_FRAUD_SCENARIO": frame["fraud_scenario"].map(codes).to_numpy(dtype=np.int64),
        },
        columns=list(FDH_COLUMNS),
    )
