"""The simulator's frame: determinism, columns, formats, rates and everyday realism."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sim_helpers import NIGHT_HOURS

from fraudops.data.schema import SPARKOV_CATEGORIES, SPARKOV_COLUMNS
from fraudops.simulate import (
    SCENARIOS,
    ScenarioMix,
    SimulationConfig,
    SimulationConfigError,
    simulate,
    summarise,
)

TEXT_COLUMNS = (
    "trans_date_trans_time", "cc_num", "merchant", "category", "first", "last", "gender",
    "street", "city", "state", "job", "dob", "trans_num", "fraud_scenario",
)  # fmt: skip
INT_COLUMNS = ("zip", "city_pop", "unix_time", "is_fraud")
FLOAT_COLUMNS = ("amt", "lat", "long", "merch_lat", "merch_long")


def _luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    doubled = [d * 2 - 9 if d * 2 > 9 else d * 2 for d in digits[1::2]]
    return (sum(digits[0::2]) + sum(doubled)) % 10 == 0


def test_same_seed_gives_identical_frame() -> None:
    """Two runs of one config give the same frame, trans_num included."""
    config = SimulationConfig(days=5, cards=150, seed=9)
    pd.testing.assert_frame_equal(simulate(config), simulate(config))


def test_other_seed_gives_other_transactions() -> None:
    """A different seed gives different ids, cards and amounts."""
    first = simulate(SimulationConfig(days=5, cards=150, seed=9))
    second = simulate(SimulationConfig(days=5, cards=150, seed=10))
    assert set(first["trans_num"]).isdisjoint(second["trans_num"])
    assert set(first["cc_num"]).isdisjoint(second["cc_num"])


def test_columns_are_sparkov_order_then_fraud_scenario(small_frame: pd.DataFrame) -> None:
    """Columns are the Sparkov columns in order, then the ground-truth fraud_scenario."""
    assert [*SPARKOV_COLUMNS, "fraud_scenario"] == list(small_frame.columns)


def test_column_types(small_frame: pd.DataFrame) -> None:
    """Text columns are strings (cc_num too), counts are int64, coordinates float64."""
    for column in TEXT_COLUMNS:
        assert pd.api.types.is_string_dtype(small_frame[column]), column
    assert {"int64"} == {str(small_frame[c].dtype) for c in INT_COLUMNS}
    assert {"float64"} == {str(small_frame[c].dtype) for c in FLOAT_COLUMNS}


def test_value_formats_match_the_sparkov_data(small_frame: pd.DataFrame) -> None:
    """Timestamps, dates, ids, card numbers, merchant names and codes look like Sparkov's."""
    assert (
        small_frame["trans_date_trans_time"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    )
    assert small_frame["dob"].str.fullmatch(r"\d{4}-\d\d-\d\d").all()
    assert small_frame["trans_num"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert small_frame["trans_num"].is_unique
    assert small_frame["cc_num"].str.fullmatch(r"[45]\d{15}").all()
    assert all(_luhn_valid(n) for n in small_frame["cc_num"].unique())
    assert small_frame["merchant"].str.startswith("fraud_").all()
    assert set(SPARKOV_CATEGORIES) == set(small_frame["category"])
    assert {"F", "M"} == set(small_frame["gender"])
    assert {0, 1} == set(small_frame["is_fraud"])
    assert ((small_frame["fraud_scenario"] != "") == (small_frame["is_fraud"] == 1)).all()
    assert set(small_frame["fraud_scenario"]) <= {"", *SCENARIOS}


def test_unix_time_is_the_timestamp_in_seconds(small_frame: pd.DataFrame) -> None:
    """unix_time counts the same naive time as trans_date_trans_time, in whole seconds."""
    stamps = pd.to_datetime(small_frame["trans_date_trans_time"]).astype("datetime64[s]")
    assert (stamps.astype("int64") == small_frame["unix_time"]).all()


def test_rows_are_sorted_by_time_within_the_period(small_frame: pd.DataFrame) -> None:
    """Rows come in time order, all inside the simulated 20 days from 2024-01-01."""
    assert small_frame["unix_time"].is_monotonic_increasing
    assert "2024-01-01 00:00:00" <= small_frame["trans_date_trans_time"].min()
    assert small_frame["trans_date_trans_time"].max() < "2024-01-21 00:00:00"


def test_cardholder_fields_are_fixed_per_card(small_frame: pd.DataFrame) -> None:
    """Each card has one name, address, birth date and home location."""
    per_card = small_frame.groupby("cc_num")[["first", "last", "street", "dob", "lat", "zip"]]
    assert (per_card.nunique() == 1).all().all()


def test_default_fraud_rate_within_tolerance(large_frame: pd.DataFrame) -> None:
    """About 100,000 rows hold 0.4% to 0.6% fraud by default."""
    assert len(large_frame) > 90_000
    assert 0.004 <= large_frame["is_fraud"].mean() <= 0.006


def test_requested_fraud_rate_and_mix_within_tolerance() -> None:
    """A 2% fraud rate with a 60/20/20 mix comes out within two points of each share."""
    mix = ScenarioMix(card_testing=0.6, compromised_merchant=0.2, stolen_credentials=0.2)
    frame = simulate(
        SimulationConfig(days=30, cards=1_500, seed=4, fraud_rate=0.02, scenario_mix=mix)
    )
    assert 0.018 <= frame["is_fraud"].mean() <= 0.022
    shares = frame.loc[frame["is_fraud"] == 1, "fraud_scenario"].value_counts(normalize=True)
    for name, wanted in mix.fractions().items():
        assert wanted == pytest.approx(shares[name], abs=0.02), name


def test_zero_fraud_rate_gives_no_fraud() -> None:
    """With fraud_rate 0 every transaction is legitimate."""
    frame = simulate(SimulationConfig(days=3, cards=100, seed=1, fraud_rate=0.0))
    assert 0 == frame["is_fraud"].sum()


def test_merchant_count_defaults_to_a_twentieth_of_cards() -> None:
    """Merchants default to cards // 20, but at least 50; an explicit count is kept."""
    assert 50 == SimulationConfig(days=1, cards=100).merchant_count
    assert 500 == SimulationConfig(days=1, cards=10_000).merchant_count
    assert 70 == SimulationConfig(days=1, cards=100, merchants=70).merchant_count
    frame = simulate(SimulationConfig(days=10, cards=300, merchants=20, seed=3))
    assert frame["merchant"].nunique() <= 20


def test_category_amount_levels_follow_sparkov(large_frame: pd.DataFrame) -> None:
    """Mean legitimate amounts sit near Sparkov's: gas ~ $62, grocery_pos ~ $115."""
    means = large_frame[large_frame["is_fraud"] == 0].groupby("category")["amt"].mean()
    assert 55 <= means["gas_transport"] <= 70
    assert 100 <= means["grocery_pos"] <= 130
    assert 65 <= means["shopping_net"] <= 95


def test_daily_and_weekly_rhythm(large_frame: pd.DataFrame) -> None:
    """Few legitimate purchases at night; weekend days are busier than weekdays."""
    legit = large_frame[large_frame["is_fraud"] == 0]
    assert legit["hour"].isin(NIGHT_HOURS).mean() < 0.1
    per_day = legit.groupby(legit["time"].dt.normalize()).size()
    weekend = per_day.index.day_of_week >= 5
    assert per_day[weekend].mean() > 1.1 * per_day[~weekend].mean()


def test_most_legitimate_purchases_are_near_home(large_frame: pd.DataFrame) -> None:
    """Cards mostly shop near home: the median legitimate distance is under 50 km."""
    legit = large_frame[large_frame["is_fraud"] == 0]
    assert np.median(legit["km"]) < 50


def test_summary_counts_rows_fraud_and_scenarios(small_frame: pd.DataFrame) -> None:
    """The summary matches the frame's counts and time range."""
    summary = summarise(small_frame)
    assert len(small_frame) == summary.rows
    assert (
        int(small_frame["is_fraud"].sum())
        == summary.fraud_rows
        == sum(summary.by_scenario.values())
    )
    assert small_frame["trans_date_trans_time"].iloc[0] == summary.first
    assert summary.lines()[0].startswith("transactions")


def test_progress_is_reported_up_to_done() -> None:
    """The progress callback hears increasing fractions ending with 1.0."""
    heard: list[tuple[str, float]] = []
    simulate(
        SimulationConfig(days=2, cards=50), progress=lambda stage, done: heard.append((stage, done))
    )
    fractions = [done for _, done in heard]
    assert fractions == sorted(fractions)
    assert ("done", 1.0) == heard[-1]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"days": 0, "cards": 10}, "days must be between"),
        ({"days": 5, "cards": 0}, "cards must be at least 1"),
        ({"days": 5, "cards": 10, "fraud_rate": 0.9}, "fraud rate must be between"),
        ({"days": 5, "cards": 10, "merchants": 3}, "merchants must be at least 14"),
        ({"days": 5, "cards": 10, "seed": -1}, "seed must not be negative"),
    ],
)
def test_config_rejects_out_of_range_settings(settings: dict[str, int], message: str) -> None:
    """Out-of-range settings fail at construction with a reason."""
    with pytest.raises(SimulationConfigError, match=message):
        SimulationConfig(**settings)  # type: ignore[arg-type]


def test_config_start_moves_the_period() -> None:
    """A later start date moves every transaction to the new period."""
    frame = simulate(SimulationConfig(days=2, cards=50, start=date(2025, 6, 1)))
    assert frame["trans_date_trans_time"].str.startswith(("2025-06-01", "2025-06-02")).all()
