"""Batch engine: hand-computed values for every feature group, point-in-time by construction."""

import math

import numpy as np
import pandas as pd
import pytest
from feature_frames import DAY, HOUR, column, fdh, sparkov, sparkov_spec, ulb

from fraudops.data.profiles import FDH, ULB
from fraudops.features import windows
from fraudops.features.batch import batch_feature_frame, batch_features
from fraudops.features.columns import FeatureInputError
from fraudops.features.spec import FeatureSpec

NAN = math.nan


def nan_equal(expected: list[float], actual: list[float]) -> bool:
    """Lists equal element by element, NaN equal to NaN."""
    return len(expected) == len(actual) and all(
        (math.isnan(e) and math.isnan(a)) or e == pytest.approx(a, rel=1e-12)
        for e, a in zip(expected, actual, strict=True)
    )


def test_amount_and_calendar() -> None:
    """Amount, log1p, hour, Monday-0 weekday and night/weekend flags of the UTC time."""
    frame = sparkov({"s": 5 * DAY + 23.5 * HOUR}, {"s": 2 * DAY + 12 * HOUR, "amt": 0.0})
    spec = sparkov_spec(frame)
    values = batch_features(frame, spec)
    assert [10.0, 0.0] == column(values, spec, "amount")
    assert [math.log1p(10.0), 0.0] == column(values, spec, "log_amount")
    assert [23.0, 12.0] == column(values, spec, "hour")
    assert [5.0, 2.0] == column(values, spec, "weekday")
    assert [1.0, 0.0] == column(values, spec, "is_night")
    assert [1.0, 0.0] == column(values, spec, "is_weekend")


def test_card_windows_count_sum_mean_max_over_earlier_events_only() -> None:
    """Each window [t - W, t) of the same card; the other card's purchase never counts."""
    frame = sparkov(
        {"s": 0, "amt": 10.0},
        {"s": 1800, "amt": 20.0},
        {"s": HOUR, "amt": 1000.0, "cc_num": "card-b"},
        {"s": 2 * HOUR, "amt": 60.0},
        {"s": DAY, "amt": 5.0},
    )
    spec = sparkov_spec(frame)
    values = batch_features(frame, spec)
    card_a = [0, 1, 3, 4]
    assert [0.0, 1.0, 0.0, 0.0] == [column(values, spec, "card_count_1h")[i] for i in card_a]
    # The one-day window of the last purchase starts exactly at the first one: included.
    assert [0.0, 1.0, 2.0, 3.0] == [column(values, spec, "card_count_1d")[i] for i in card_a]
    assert [0.0, 10.0, 30.0, 90.0] == [
        column(values, spec, "card_amount_sum_1d")[i] for i in card_a
    ]
    means = [column(values, spec, "card_amount_mean_30d")[i] for i in card_a]
    assert nan_equal([NAN, 10.0, 15.0, 30.0], means)
    maxima = [column(values, spec, "card_amount_max_7d")[i] for i in card_a]
    assert nan_equal([NAN, 10.0, 20.0, 60.0], maxima)
    assert nan_equal(
        [NAN, NAN, NAN, NAN], [column(values, spec, "card_amount_max_1h")[i] for i in (0, 2, 3, 4)]
    )


def test_card_ratio_zscore_and_seconds_since_previous() -> None:
    """Amount over the 30-day mean, its z-score with the sample std, and the gap in seconds."""
    frame = sparkov(
        {"s": 0, "amt": 10.0},
        {"s": 1800, "amt": 20.0},
        {"s": 2 * HOUR, "amt": 60.0},
        {"s": DAY, "amt": 5.0},
    )
    spec = sparkov_spec(frame)
    values = batch_features(frame, spec)
    ratio = column(values, spec, "card_amount_ratio_mean_30d")
    assert nan_equal([NAN, 2.0, 4.0, 5.0 / 30.0], ratio)
    zscore = column(values, spec, "card_amount_zscore_30d")
    assert nan_equal([NAN, NAN, 45.0 / math.sqrt(50.0), -25.0 / math.sqrt(700.0)], zscore)
    since = column(values, spec, "card_seconds_since_previous")
    assert nan_equal([NAN, 1800.0, 5400.0, 79200.0], since)


def test_constant_amounts_have_no_zscore() -> None:
    """Equal amounts have no spread: NaN, not the huge z-score prefix-sum rounding would give."""
    # Running sums carry 123.45 from 31 days ago, so the window variance of 10, 10 comes
    # out as 2.8e-13 instead of 0; the variance floor reads it as 0.
    frame = sparkov(
        {"s": 0, "amt": 123.45},
        {"s": 31 * DAY, "amt": 10.0},
        {"s": 31 * DAY + 1, "amt": 10.0},
        {"s": 31 * DAY + 2, "amt": 12.0},
        {"s": 31 * DAY + 3, "amt": 5.0},
    )
    spec = sparkov_spec(frame)
    zscore = column(batch_features(frame, spec), spec, "card_amount_zscore_30d")
    assert math.isnan(zscore[3])
    assert (5.0 - 32.0 / 3.0) / math.sqrt(4.0 / 3.0) == pytest.approx(zscore[4], rel=1e-9)


def test_same_instant_purchases_do_not_see_each_other() -> None:
    """Two purchases of a card in the same second both see an empty history."""
    frame = sparkov(
        {"s": 100, "amt": 10.0, "id": "t-b"},
        {"s": 100, "amt": 20.0, "id": "t-a"},
        {"s": 200, "amt": 5.0},
    )
    spec = sparkov_spec(frame)
    values = batch_features(frame, spec)
    assert [0.0, 0.0, 2.0] == column(values, spec, "card_count_1h")
    assert [0.0, 0.0, 2.0] == column(values, spec, "merchant_count_1d")
    assert nan_equal([NAN, NAN, 20.0], column(values, spec, "card_amount_max_1h"))
    assert nan_equal([NAN, NAN, 100.0], column(values, spec, "card_seconds_since_previous"))


def test_merchant_counts_across_cards() -> None:
    """A merchant's count covers every card's purchases in [t - W, t)."""
    frame = sparkov(
        {"s": 0, "cc_num": "a"},
        {"s": 0, "cc_num": "b"},
        {"s": HOUR, "cc_num": "c"},
        {"s": 2 * DAY, "cc_num": "a"},
        {"s": 2 * DAY, "cc_num": "a", "merchant": "shop-2"},
    )
    spec = sparkov_spec(frame)
    values = batch_features(frame, spec)
    assert [0.0, 0.0, 2.0, 0.0, 0.0] == column(values, spec, "merchant_count_1d")
    assert [0.0, 0.0, 2.0, 3.0, 0.0] == column(values, spec, "merchant_count_7d")


def test_merchant_risk_uses_a_label_only_once_it_is_delay_old() -> None:
    """With a 7-day delay, a fraud 6 days old is unknown and one 8 days old counts."""
    frame = sparkov(
        {"s": 0, "cc_num": "a"},
        {"s": 2 * DAY, "cc_num": "b", "is_fraud": 1},
        {"s": 8 * DAY, "cc_num": "c"},
        {"s": 10 * DAY, "cc_num": "d"},
    )
    spec = sparkov_spec(frame, delay_days=7)
    values = batch_features(frame, spec)
    assert nan_equal([NAN, NAN, 0.0, 0.5], column(values, spec, "merchant_risk_7d"))
    assert nan_equal([NAN, NAN, 0.0, 1.0], column(values, spec, "merchant_risk_1d"))


def _labelled_second_row(frame: pd.DataFrame, label_after: int | None) -> pd.DataFrame:
    """The frame with the second row's label known `label_after` seconds after it (None:
    never), and no label for the others."""
    arrival = (
        None if label_after is None else frame["event_time"][1] + pd.Timedelta(seconds=label_after)
    )
    labels = [pd.NaT, arrival, *[pd.NaT] * (len(frame) - 2)]
    return frame.assign(label_time=pd.Series(labels, index=frame.index))


def _merchant_stream() -> pd.DataFrame:
    """One shop: a fraud on day 2 among purchases of other cards on days 0, 8, 10 and 12."""
    return sparkov(
        {"s": 0, "cc_num": "a"},
        {"s": 2 * DAY, "cc_num": "b", "is_fraud": 1},
        {"s": 8 * DAY, "cc_num": "c"},
        {"s": 10 * DAY, "cc_num": "d"},
        {"s": 12 * DAY, "cc_num": "e"},
    )


@pytest.mark.parametrize(
    ("label_after", "expected"),
    [
        (HOUR, [NAN, 0.0, 0.5, 1 / 3, 0.25]),  # an analyst's verdict, within the delay
        (9 * DAY, [NAN, 0.0, 0.0, 0.0, 0.25]),  # a chargeback two days after the delay
        (None, [NAN, 0.0, 0.0, 0.0, 0.0]),  # never reported
    ],
)
def test_merchant_risk_counts_a_fraud_from_its_label_time(
    label_after: int | None, expected: list[float]
) -> None:
    """With label windows ending at t, a fraud counts in merchant risk from its label time on,
    whatever the delay."""
    frame = _labelled_second_row(_merchant_stream(), label_after)
    spec = sparkov_spec(frame, delay_days=7, lag_days=0)
    assert nan_equal(expected, column(batch_features(frame, spec), spec, "merchant_risk_30d"))


@pytest.mark.parametrize(
    ("label_after", "expected"),
    [
        (HOUR, [NAN, NAN, 0.0, 0.5, 0.5]),
        (9 * DAY, [NAN, NAN, 0.0, 0.0, 0.5]),
        (None, [NAN, NAN, 0.0, 0.0, 0.0]),
    ],
)
def test_merchant_risk_with_the_delay_as_lag_keeps_its_delay_shifted_windows(
    label_after: int | None, expected: list[float]
) -> None:
    """Label windows ending the delay before t (the rule before label times counted): a fraud
    counts in the delay-shifted window only once it is known."""
    frame = _labelled_second_row(_merchant_stream(), label_after)
    spec = sparkov_spec(frame, delay_days=7, lag_days=7)
    assert nan_equal(expected, column(batch_features(frame, spec), spec, "merchant_risk_7d"))


def test_a_fraud_confirmed_minutes_after_counts_from_then() -> None:
    """A fraud confirmed 10 minutes after it counts for the shop and the card 20 minutes
    after it, not 5 minutes after; with the delay as lag, not for a week."""
    frame = sparkov(
        {"s": 0, "cc_num": "a", "merchant": "m1", "is_fraud": 1},
        {"s": 300, "cc_num": "a", "merchant": "m1"},
        {"s": 1_200, "cc_num": "a", "merchant": "m1"},
    )
    frame = frame.assign(
        label_time=[frame["event_time"][0] + pd.Timedelta(minutes=10), pd.NaT, pd.NaT]
    )
    spec = sparkov_spec(frame, delay_days=7)
    assert 0 == spec.label_lag_ms  # fitted on labels that arrive before the delay
    values = batch_features(frame, spec)
    assert nan_equal([NAN, 0.0, 0.5], column(values, spec, "merchant_risk_1d"))
    assert [0.0, 0.0, 1.0] == column(values, spec, "card_known_frauds_30d")
    assert nan_equal(
        [NAN, NAN, 1_200 / (DAY * 1.0)], column(values, spec, "card_days_since_known_fraud")
    )
    delayed = sparkov_spec(frame, delay_days=7, lag_days=7)
    old = batch_features(frame, delayed)
    assert nan_equal([NAN] * 3, column(old, delayed, "merchant_risk_1d"))
    assert [0.0] * 3 == column(old, delayed, "card_known_frauds_30d")


def test_merchant_risk_reads_the_reported_label_where_there_is_one() -> None:
    """A friendly fraud (reported 1, truth 0) counts as fraud; an unreported fraud does not."""
    frame = sparkov(
        {"s": 0, "cc_num": "a", "is_fraud": 0},
        {"s": HOUR, "cc_num": "b", "is_fraud": 1},
        {"s": 3 * DAY, "cc_num": "c"},
    )
    known = frame["event_time"] + pd.Timedelta(hours=2)
    frame = frame.assign(
        label_time=[known[0], pd.NaT, pd.NaT], reported_fraud=[1.0, float("nan"), float("nan")]
    )
    spec = sparkov_spec(frame, delay_days=1, lag_days=0)
    assert nan_equal([NAN, 0.0, 0.5], column(batch_features(frame, spec), spec, "merchant_risk_7d"))


@pytest.mark.parametrize(
    ("label_after", "lag_days", "expected_count", "expected_days"),
    [
        (HOUR, 0, [0.0, 0.0, 1.0, 1.0, 1.0], [NAN, NAN, 6.0, 8.0, 10.0]),  # an analyst
        (9 * DAY, 0, [0.0, 0.0, 0.0, 0.0, 1.0], [NAN, NAN, NAN, NAN, 10.0]),  # a chargeback
        (None, 0, [0.0] * 5, [NAN] * 5),  # never reported
        (HOUR, 7, [0.0, 0.0, 0.0, 1.0, 1.0], [NAN, NAN, NAN, 8.0, 10.0]),  # the delay as lag
        (9 * DAY, 7, [0.0, 0.0, 0.0, 0.0, 1.0], [NAN, NAN, NAN, NAN, 10.0]),
    ],
)
def test_card_fraud_history_counts_a_fraud_from_its_label_time(
    label_after: int | None,
    lag_days: float,
    expected_count: list[float],
    expected_days: list[float],
) -> None:
    """The card's frauds follow merchant risk's rule: in the window ending the label lag
    before t (0 or the delay), and only once their label time has passed."""
    frame = sparkov(
        {"s": 0, "merchant": "m1"},
        {"s": 2 * DAY, "merchant": "m2", "is_fraud": 1},
        {"s": 8 * DAY, "merchant": "m3"},
        {"s": 10 * DAY, "merchant": "m4"},
        {"s": 12 * DAY, "merchant": "m5"},
    )
    frame = _labelled_second_row(frame, label_after)
    spec = sparkov_spec(frame, delay_days=7, lag_days=lag_days)
    values = batch_features(frame, spec)
    assert expected_count == column(values, spec, "card_known_frauds_30d")
    assert nan_equal(expected_days, column(values, spec, "card_days_since_known_fraud"))


def test_frame_without_labels_reads_as_no_known_fraud() -> None:
    """At scoring time (no label column) merchant risk is 0, or NaN for an empty window."""
    frame = sparkov({"s": 0}, {"s": HOUR}, label=False)
    spec = sparkov_spec(frame)
    assert nan_equal([NAN, 0.0], column(batch_features(frame, spec), spec, "merchant_risk_1d"))


def test_home_merchant_distance_and_age() -> None:
    """Haversine km between home and merchant; age in years at the time; NaN when missing."""
    frame = sparkov({"s": 0, "merch_lat": 41.0}, {"s": 1, "lat": None, "dob": None})
    spec = sparkov_spec(frame)
    values = batch_features(frame, spec)
    distance = column(values, spec, "home_merchant_km")
    assert 111.1950802335329 == pytest.approx(distance[0], rel=1e-12)
    assert math.isnan(distance[1])
    age = column(values, spec, "age_years")
    assert 12418 / 365.25 == pytest.approx(age[0], rel=1e-12)
    assert math.isnan(age[1])


def test_numeric_columns_are_raw_and_unknown_categories_are_all_zero() -> None:
    """city_pop passes through; a category unseen in training sets no one-hot column."""
    training = sparkov({"s": 0, "category": "home"}, {"s": 1, "category": "travel"})
    spec = sparkov_spec(training)
    scoring = sparkov(
        {"s": 0, "category": "travel", "city_pop": 52}, {"s": 1, "category": "gambling"}
    )
    frame = batch_feature_frame(scoring, spec)
    assert [52.0, 1000.0] == frame["city_pop"].tolist()
    assert [[0.0, 1.0], [0.0, 0.0]] == frame[
        ["category=home", "category=travel"]
    ].to_numpy().tolist()


def test_feature_frame_keeps_the_index_and_names() -> None:
    """The feature frame has the input frame's index and the spec's names as columns."""
    frame = sparkov({"s": 0}, {"s": 1}).set_axis(["x", "y"])
    spec = sparkov_spec(frame)
    features = batch_feature_frame(frame, spec)
    assert ["x", "y"] == features.index.tolist()
    assert list(spec.names) == features.columns.tolist()


def test_rows_follow_the_input_order(simulated_frame: pd.DataFrame) -> None:
    """Shuffling the input rows shuffles the feature rows the same way, bit for bit."""
    spec = sparkov_spec(simulated_frame, delay_days=1)
    expected = batch_features(simulated_frame, spec)
    order = np.random.default_rng(3).permutation(len(simulated_frame))
    shuffled = batch_features(simulated_frame.iloc[order], spec)
    np.testing.assert_array_equal(expected[order], shuffled)


def test_own_label_never_changes_own_features(simulated_frame: pd.DataFrame) -> None:
    """Flipping a transaction's label leaves its own features as they were (delay 0)."""
    spec = sparkov_spec(simulated_frame, delay_days=0)
    expected = batch_features(simulated_frame, spec)
    rows = np.random.default_rng(5).choice(len(simulated_frame), size=20, replace=False)
    for row in rows:
        flipped = simulated_frame.copy()
        flipped.loc[row, "is_fraud"] = 1 - flipped.loc[row, "is_fraud"]
        np.testing.assert_array_equal(expected[row], batch_features(flipped, spec)[row])


def test_labels_younger_than_the_delay_do_not_leak(simulated_frame: pd.DataFrame) -> None:
    """Relabelling transactions in [T, T + d) leaves every feature before T + d unchanged."""
    delay = 3
    spec = sparkov_spec(simulated_frame, delay_days=delay)
    expected = batch_features(simulated_frame, spec)
    start = simulated_frame["event_time"].min() + pd.Timedelta(days=20)
    end = start + pd.Timedelta(days=delay)
    inside = (simulated_frame["event_time"] >= start) & (simulated_frame["event_time"] < end)
    relabelled = simulated_frame.copy()
    rng = np.random.default_rng(7)
    relabelled.loc[inside, "is_fraud"] = rng.permutation(
        relabelled.loc[inside, "is_fraud"].to_numpy()
    )
    relabelled.loc[inside & (rng.random(len(inside)) < 0.3), "is_fraud"] = 1
    actual = batch_features(relabelled, spec)
    before = (simulated_frame["event_time"] < end).to_numpy()
    np.testing.assert_array_equal(expected[before], actual[before])
    assert not np.array_equal(expected[~before], actual[~before], equal_nan=True)


def test_packed_and_ranked_time_keys_agree(
    simulated_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rank fallback for spans too wide to pack gives the same features."""
    spec = sparkov_spec(simulated_frame, delay_days=2)
    expected = batch_features(simulated_frame, spec)
    monkeypatch.setattr(windows, "_KEY_LIMIT", 1)
    np.testing.assert_array_equal(expected, batch_features(simulated_frame, spec))


def test_ulb_without_card_or_merchant_still_works() -> None:
    """ULB rows get the amount, calendar and V columns only."""
    frame = ulb((0, 10.0, 0), (3600, 20.0, 1))
    spec = FeatureSpec(profile=ULB, label_delay_ms=0)
    values = batch_features(frame, spec)
    assert (2, 34) == values.shape
    # 2013-09-01 (the ULB origin) was a Sunday.
    assert [20.0, math.log1p(20.0), 1.0, 6.0, 1.0, 1.0, 0.5] == values[1, :7].tolist()


def test_fdh_velocity_and_risk() -> None:
    """FDH customers and terminals drive the card and merchant features."""
    frame = fdh((0, 1, 7, 10.0, 1), (60, 1, 7, 30.0, 0), (120, 2, 7, 5.0, 0))
    spec = FeatureSpec(profile=FDH, label_delay_ms=0)
    values = batch_features(frame, spec)
    assert [0.0, 1.0, 0.0] == column(values, spec, "card_count_1h")
    assert [0.0, 1.0, 2.0] == column(values, spec, "merchant_count_1d")
    assert nan_equal([NAN, 1.0, 0.5], column(values, spec, "merchant_risk_1d"))


def test_empty_frame_gives_an_empty_matrix() -> None:
    """No rows in, no rows out, with every feature column."""
    frame = sparkov({"s": 0}).iloc[:0]
    spec = sparkov_spec(sparkov({"s": 0}))
    assert (0, len(spec.names)) == batch_features(frame, spec).shape


def test_frame_without_event_time_is_refused() -> None:
    """Features need the parsed event time that load_transactions adds."""
    frame = sparkov({"s": 0}).drop(columns="event_time")
    with pytest.raises(FeatureInputError, match="event_time"):
        batch_features(frame, sparkov_spec(frame))


def card_profile_frame() -> pd.DataFrame:
    """A card's fraud at shop-1, a purchase at shop-2 an hour later, shop-1 again a day on."""
    return sparkov(
        {"s": 0, "merchant": "shop-1", "category": "grocery_pos", "amt": 10.0, "is_fraud": 1},
        {"s": HOUR, "merchant": "shop-2", "category": "travel", "amt": 100.0},
        {"s": DAY + 2 * HOUR, "merchant": "shop-1", "category": "grocery_pos", "amt": 30.0},
    )


def test_card_profile_features_use_earlier_events_and_known_labels_only() -> None:
    """Known frauds a delay on, a first visit, distinct merchants and categories, category
    amount ratio and hour similarity, each from the card's earlier purchases."""
    frame = card_profile_frame()
    spec = sparkov_spec(frame, delay_days=1)
    values = batch_features(frame, spec)
    assert [0.0, 0.0, 1.0] == column(values, spec, "card_known_frauds_30d")
    assert nan_equal([NAN, NAN, 1 + 2 / 24], column(values, spec, "card_days_since_known_fraud"))
    assert [1.0, 1.0, 0.0] == column(values, spec, "card_new_merchant_30d")
    assert [0.0, 1.0, 0.0] == column(values, spec, "card_distinct_merchants_1d")
    assert [0.0, 1.0, 2.0] == column(values, spec, "card_distinct_merchants_7d")
    assert [0.0, 1.0, 0.0] == column(values, spec, "card_distinct_categories_1d")
    assert [0.0, 1.0, 2.0] == column(values, spec, "card_distinct_categories_7d")
    assert nan_equal([NAN, NAN, 3.0], column(values, spec, "card_category_amount_ratio_30d"))
    cos15, cos30 = math.cos(math.pi / 12), math.cos(math.pi / 6)
    assert nan_equal(
        [NAN, cos15, (cos30 + cos15) / 2], column(values, spec, "card_hour_similarity_30d")
    )


def test_card_profile_groups_can_be_switched_off() -> None:
    """A spec without groups has none of the card-profile columns."""
    frame = card_profile_frame()
    spec = FeatureSpec(profile=sparkov_spec(frame).profile, label_delay_ms=0)
    assert not [name for name in spec.names if name.startswith("card_distinct")]
    assert (3, len(spec.names)) == batch_features(frame, spec).shape


def test_fdh_gets_the_card_profile_groups_it_supports() -> None:
    """FDH has no category: fraud history, novelty, distinct terminals and hours only."""
    frame = fdh((0, 1, 7, 10.0, 1), (HOUR, 1, 8, 20.0, 0), (2 * DAY, 1, 7, 5.0, 0))
    spec = FeatureSpec(profile=FDH, label_delay_ms=DAY * 1000, groups=frozenset({"card_diversity"}))
    assert ["card_distinct_merchants_1d", "card_distinct_merchants_7d"] == [
        name for name in spec.names if name.startswith("card_distinct")
    ]
    values = batch_features(frame, spec)
    assert [0.0, 1.0, 2.0] == column(values, spec, "card_distinct_merchants_7d")
