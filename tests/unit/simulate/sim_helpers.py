"""Helpers shared by the simulator tests: derived columns and habit comparisons."""

import numpy as np
import pandas as pd

from fraudops.simulate.population import haversine_km

NIGHT_HOURS = (22, 23, 0, 1, 2, 3)


def with_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame plus parsed time, hour, day offset and home-to-merchant distance."""
    stamps = pd.to_datetime(frame["trans_date_trans_time"], format="%Y-%m-%d %H:%M:%S")
    return frame.assign(
        time=stamps,
        hour=stamps.dt.hour,
        day=(stamps - stamps.min().normalize()).dt.days,
        km=haversine_km(
            (frame["lat"].to_numpy(), frame["long"].to_numpy()),
            (frame["merch_lat"].to_numpy(), frame["merch_long"].to_numpy()),
        ),
    )


def habit_ratio(frame: pd.DataFrame, scenario: str) -> np.ndarray:
    """Fraud amounts of a scenario over the same card's legitimate mean in that category."""
    legit = frame[frame["is_fraud"] == 0]
    usual = legit.groupby(["cc_num", "category"])["amt"].mean().rename("usual")
    fraud = frame[frame["fraud_scenario"] == scenario].join(usual, on=["cc_num", "category"])
    fraud = fraud.dropna(subset=["usual"])
    return (fraud["amt"] / fraud["usual"]).to_numpy()


def outlets_to_cover(frame: pd.DataFrame, reference: pd.Series, *, days: int = 40) -> int:
    """How many outlets (greedily) cover every card in `reference` (card -> time) by a visit
    in the `days` before that card's reference time; few means a common point of purchase."""
    legit = frame[frame["is_fraud"] == 0]
    visits = legit.join(reference.rename("ref"), on="cc_num", how="inner")
    window = (visits["time"] < visits["ref"]) & (
        visits["time"] >= visits["ref"] - pd.Timedelta(days=days)
    )
    outlet = visits["merchant"] + "@" + visits["merch_lat"].round(3).astype(str)
    groups = [set(cards) for cards in visits[window].groupby(outlet[window])["cc_num"].unique()]
    left, needed = set(reference.index), 0
    while left:
        best = max(groups, key=lambda cards: len(cards & left))
        if not best & left:
            return needed + len(left)
        left -= best
        needed += 1
    return needed
