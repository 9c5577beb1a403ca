"""Each fraud scenario leaves the signature docs/simulator.md promises."""

import numpy as np
import pandas as pd
from sim_helpers import NIGHT_HOURS, habit_ratio, outlets_to_cover, with_derived

from fraudops.simulate import ScenarioMix, SimulationConfig, simulate

ONLINE = {"shopping_net", "misc_net", "grocery_net"}


def _scenario(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame[frame["fraud_scenario"] == name]


def test_card_testing_probes_small_then_buys_big_at_night(large_frame: pd.DataFrame) -> None:
    """Card testing: $1-20 probes (median < $20), large buys after, mostly 22:00-04:00, online."""
    testing = _scenario(large_frame, "card_testing")
    probes = testing[testing["amt"] <= 20]
    assert len(probes) > 0.5 * len(testing)
    assert probes["amt"].median() < 20
    assert (testing["amt"] >= 150).sum() > 0.1 * len(testing)
    assert testing["hour"].isin(NIGHT_HOURS).mean() > 0.6
    legit = large_frame[large_frame["is_fraud"] == 0]
    assert legit["hour"].isin(NIGHT_HOURS).mean() < 0.15
    assert set(testing["category"]) <= ONLINE


def test_card_testing_bursts_last_minutes_to_hours(large_frame: pd.DataFrame) -> None:
    """Each card's testing burst spans under three hours and starts with a small probe."""
    testing = _scenario(large_frame, "card_testing").sort_values("time")
    spans = testing.groupby("cc_num")["time"].agg(lambda t: t.max() - t.min())
    assert (spans < pd.Timedelta(hours=3)).all()
    assert (testing.groupby("cc_num")["amt"].first() <= 20).all()


def test_stolen_credentials_spend_far_from_home_well_above_habit(large_frame: pd.DataFrame) -> None:
    """Stolen credentials: median distance from home over 500 km (legit < 50), 3-10x habit."""
    stolen = _scenario(large_frame, "stolen_credentials")
    legit = large_frame[large_frame["is_fraud"] == 0]
    assert np.median(stolen["km"]) > 500
    assert np.median(legit["km"]) < 50
    assert np.median(habit_ratio(large_frame, "stolen_credentials")) > 3


def test_stolen_credentials_last_one_to_five_days_several_a_day(large_frame: pd.DataFrame) -> None:
    """A stolen card is used on 1-5 consecutive days, at least twice on most of them."""
    stolen = _scenario(large_frame, "stolen_credentials")
    days = stolen.groupby("cc_num")["day"].agg(lambda d: d.max() - d.min() + 1)
    assert days.between(1, 5).all()
    per_day = stolen.groupby(["cc_num", "day"]).size()
    assert (per_day >= 2).mean() > 0.8


def test_compromised_merchant_victims_shared_an_outlet_before_fraud() -> None:
    """Victims group behind a few outlets they visited before their fraud; random cards do not."""
    mix = ScenarioMix(card_testing=0, compromised_merchant=1, stolen_credentials=0)
    config = SimulationConfig(days=45, cards=2_000, seed=11, fraud_rate=0.0005, scenario_mix=mix)
    frame = with_derived(simulate(config))
    first_fraud = _scenario(frame, "compromised_merchant").groupby("cc_num")["time"].min()
    legit_cards = frame.loc[frame["is_fraud"] == 0, "cc_num"].drop_duplicates()
    others = legit_cards.sample(len(first_fraud), random_state=0).to_numpy()
    assert len(first_fraud) >= 10
    assert outlets_to_cover(frame, first_fraud) <= len(first_fraud) / 4
    random_cards = pd.Series(first_fraud.to_numpy(), index=others)
    assert outlets_to_cover(frame, random_cards) >= len(first_fraud) / 2


def test_compromised_merchant_fraud_is_near_home_above_habit(large_frame: pd.DataFrame) -> None:
    """Cloned-card fraud happens near home, at 2-5x the card's usual amount."""
    cloned = _scenario(large_frame, "compromised_merchant")
    assert np.median(cloned["km"]) < 50
    assert np.median(habit_ratio(large_frame, "compromised_merchant")) > 2


def test_each_defrauded_card_suffers_one_scenario(large_frame: pd.DataFrame) -> None:
    """While unused cards remain, no card is hit by two scenarios."""
    fraud = large_frame[large_frame["is_fraud"] == 1]
    assert (fraud.groupby("cc_num")["fraud_scenario"].nunique() == 1).all()
