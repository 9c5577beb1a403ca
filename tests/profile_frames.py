"""Small fdh- and ulb-shaped transaction files made from the simulator, and tiny models on them.

The fdh rows are the simulator's purchases in Fraud Detection Handbook columns (`to_fdh`).
ULB files have no card or merchant: the rows keep the simulated times, amounts and labels,
and V1..V28 are noise with a shift on frauds in the first four, so a model has a signal.
"""

from datetime import datetime

import numpy as np
import pandas as pd

from fraudops.data.profiles import FDH, ULB, DatasetProfile
from fraudops.data.validation import check_frame
from fraudops.features.batch import batch_features
from fraudops.features.spec import MS_PER_DAY, fit_feature_spec
from fraudops.simulate import SimulationConfig, simulate, to_fdh
from fraudops.training.bundle import ModelBundle

ULB_ORIGIN = datetime(2013, 9, 1)


def simulated(*, days: int, cards: int, seed: int) -> pd.DataFrame:
    """The simulator's Sparkov rows, in time order."""
    frame = simulate(SimulationConfig(days=days, cards=cards, seed=seed))
    return frame.sort_values("trans_date_trans_time", kind="stable").reset_index(drop=True)


def fdh_raw(sparkov: pd.DataFrame) -> pd.DataFrame:
    """Simulated rows as an fdh file holds them (TX_DATETIME as text)."""
    raw = to_fdh(sparkov)
    raw["TX_DATETIME"] = raw["TX_DATETIME"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return raw


def ulb_raw(sparkov: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Simulated rows as a ulb file holds them: Time in seconds since the ULB origin."""
    rng = np.random.default_rng(seed)
    stamps = pd.to_datetime(sparkov["trans_date_trans_time"], format="%Y-%m-%d %H:%M:%S")
    fraud = sparkov["is_fraud"].to_numpy(dtype=np.int64)
    components = rng.normal(size=(len(sparkov), 28))
    components[:, :4] += 3.0 * fraud[:, None]
    return pd.DataFrame(
        {"Time": (stamps - pd.Timestamp(ULB_ORIGIN)).dt.total_seconds().to_numpy()}
        | {f"V{i}": components[:, i - 1] for i in range(1, 29)}
        | {"Amount": sparkov["amt"].to_numpy(dtype=np.float64), "Class": fraud}
    )


def loaded(raw: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """A raw frame parsed as load_transactions parses a file, refusing any bad row."""
    check = check_frame(raw, profile)
    assert not check.has_errors, [str(issue) for issue in check.issues]
    return check.clean_frame()


def tiny_bundle(
    frame: pd.DataFrame, profile: DatasetProfile, *, trained_until: datetime, seed: int = 1
) -> ModelBundle:
    """A small XGBoost bundle on a loaded frame of `profile` (label delay 2 days)."""
    from xgboost import XGBClassifier  # noqa: PLC0415 - heavy, only the model tests need it

    assert profile.label is not None
    spec = fit_feature_spec(frame, profile, label_delay_ms=2 * MS_PER_DAY)
    estimator = XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1, random_state=seed)
    estimator.fit(batch_features(frame, spec), frame[profile.label].to_numpy())
    return ModelBundle(
        spec=spec,
        estimator=estimator,
        threshold=0.5,
        model_type="xgboost",
        params={"n_estimators": 15, "max_depth": 3},
        metrics={"validation_average_precision": 0.5, "validation_f1": 0.5},
        training={"trained_until": trained_until.isoformat()},
    )


PROFILES = {"fdh": (FDH, fdh_raw), "ulb": (ULB, ulb_raw)}

# A user profile with every role under names of its own (not Python names, some of them).
USER_PROFILE_TOML = """
name = "acquirer"
transaction_id = "tx id"
amount = "amount eur"
card_id = "pan_token"
merchant_id = "mid"
category = "mcc"
categorical = ["channel"]
numeric = ["model_score"]
birth_date = "holder_dob"
label = "chargeback"
optional = ["model_score"]

[[timestamps]]
column = "ts"
unit = "unix_ms"

[geo]
lat = "home_lat"
long = "home_lon"
merch_lat = "shop_lat"
merch_long = "shop_lon"
"""
_USER_COLUMNS = {
    "trans_num": "tx id",
    "amt": "amount eur",
    "cc_num": "pan_token",
    "merchant": "mid",
    "category": "mcc",
    "gender": "channel",
    "city_pop": "model_score",
    "dob": "holder_dob",
    "is_fraud": "chargeback",
    "lat": "home_lat",
    "long": "home_lon",
    "merch_lat": "shop_lat",
    "merch_long": "shop_lon",
}


def user_raw(sparkov: pd.DataFrame) -> pd.DataFrame:
    """Simulated rows as the user profile's file holds them (time in epoch milliseconds)."""
    raw = sparkov[list(_USER_COLUMNS)].rename(columns=_USER_COLUMNS)
    raw["ts"] = sparkov["unix_time"].astype("int64") * 1000
    return raw
