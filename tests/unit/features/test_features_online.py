"""Online engine: reading leaves state alone; ties, late events, replays, labels and pruning."""

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from feature_frames import DAY, HOUR, START_MS, sparkov, sparkov_spec, tx, ulb
from hypothesis import given
from hypothesis import strategies as st

from fraudops.data.profiles import ULB
from fraudops.features.batch import batch_features
from fraudops.features.online import (
    EVENT_TIME_MS,
    OnlineFeatureEngine,
    datetime_ms,
    records_from_frame,
    transaction_record,
)
from fraudops.features.spec import FeatureSpec
from fraudops.features.state import CardState, InMemoryStateStore, MerchantState


@pytest.fixture
def engine() -> OnlineFeatureEngine:
    """An engine for the Sparkov profile with a one-day label delay, in memory."""
    frame = sparkov({"s": 0, "category": "home"}, {"s": 1, "category": "travel"})
    return OnlineFeatureEngine(sparkov_spec(frame, delay_days=1))


def feature(engine: OnlineFeatureEngine, values: np.ndarray, name: str) -> float:
    """One named feature of an online feature vector."""
    return float(values[engine.spec.names.index(name)])


def test_reading_features_leaves_the_state_unchanged(engine: OnlineFeatureEngine) -> None:
    """features() twice gives the same vector and the store keeps its content."""
    engine.update(tx(0, trans_id="a"))
    store = engine.store
    assert isinstance(store, InMemoryStateStore)
    before = store.cards["card-a"].to_dict()
    first = engine.features(tx(60, trans_id="b"))
    np.testing.assert_array_equal(first, engine.features(tx(60, trans_id="b")))
    assert before == store.cards["card-a"].to_dict()
    assert 1.0 == feature(engine, first, "card_count_1h")


def test_scoring_path_reads_before_adding(engine: OnlineFeatureEngine) -> None:
    """features_then_update returns the history before the transaction, then records it."""
    first = engine.features_then_update(tx(0, trans_id="a", amount=10.0))
    second = engine.features_then_update(tx(60, trans_id="b", amount=30.0))
    assert 0.0 == feature(engine, first, "card_count_1h")
    assert 10.0 == feature(engine, second, "card_amount_sum_1h")
    assert 60.0 == feature(engine, second, "card_seconds_since_previous")
    assert 1.0 == feature(engine, second, "merchant_count_1d")


def test_late_and_tied_events_give_the_in_order_result(engine: OnlineFeatureEngine) -> None:
    """Events arriving late or tied land in canonical order: the sums match in-order arrival."""
    events = [
        tx(0, trans_id="a", amount=0.1),
        tx(10, trans_id="c", amount=0.2),
        tx(10, trans_id="b", amount=0.7),
        tx(20, trans_id="d", amount=0.3),
    ]
    in_order = OnlineFeatureEngine(engine.spec)
    for event in sorted(events, key=lambda e: (e[EVENT_TIME_MS], e["trans_num"])):
        in_order.update(event)
    for event in reversed(events):
        engine.update(event)
    probe = tx(30, trans_id="e")
    np.testing.assert_array_equal(in_order.features(probe), engine.features(probe))
    store = engine.store
    assert isinstance(store, InMemoryStateStore)
    assert ["a", "b", "c", "d"] == store.cards["card-a"].ids


def test_replayed_transaction_is_counted_once(engine: OnlineFeatureEngine) -> None:
    """Updating with the same transaction twice (a retry) does not double it."""
    engine.update(tx(0, trans_id="a"))
    engine.update(tx(0, trans_id="a"))
    values = engine.features(tx(60, trans_id="b"))
    assert 1.0 == feature(engine, values, "card_count_1h")
    assert 1.0 == feature(engine, values, "merchant_count_1d")


def test_label_counts_once_it_is_delay_old(engine: OnlineFeatureEngine) -> None:
    """add_label marks a fraud that merchant risk uses after the one-day delay, and can undo it."""
    fraud = tx(0, trans_id="a", card="x")
    engine.update(fraud)
    engine.update(tx(HOUR, trans_id="b", card="y"))
    assert engine.add_label(fraud, is_fraud=True)
    too_soon = engine.features(tx(DAY - 1, trans_id="c"))
    assert math.isnan(feature(engine, too_soon, "merchant_risk_1d"))
    known = engine.features(tx(DAY + 2 * HOUR, trans_id="c"))
    assert 0.5 == feature(engine, known, "merchant_risk_1d")
    assert engine.add_label(fraud, is_fraud=False)
    assert 0.0 == feature(
        engine, engine.features(tx(DAY + 2 * HOUR, trans_id="c")), "merchant_risk_1d"
    )


def test_label_for_an_unknown_transaction_is_not_applied(engine: OnlineFeatureEngine) -> None:
    """A label for a transaction the state does not hold returns False and changes nothing."""
    engine.update(tx(0, trans_id="a"))
    assert not engine.add_label(tx(5, trans_id="zzz"), is_fraud=True)
    assert not engine.add_label(tx(5, trans_id="zzz") | {"merchant": "elsewhere"}, is_fraud=True)


def test_old_events_are_pruned_without_changing_results() -> None:
    """State keeps only the horizon (30 days + delay) yet equals the batch engine."""
    rows = [{"s": day * DAY, "amt": 1.0 + day / 10} for day in range(0, 80, 2)]
    frame = sparkov(*rows)
    spec = sparkov_spec(frame, delay_days=2)
    engine = OnlineFeatureEngine(spec)
    online = np.array([engine.features_then_update(r) for r in records_from_frame(frame, spec)])
    np.testing.assert_allclose(
        batch_features(frame, spec), online, rtol=1e-12, atol=0, equal_nan=True
    )
    store = engine.store
    assert isinstance(store, InMemoryStateStore)
    assert 17 == len(store.cards["card-a"].times)
    assert 17 == len(store.merchants["shop-1"].times)


def test_a_card_idle_past_the_horizon_keeps_its_last_event() -> None:
    """Seconds since the previous purchase survives pruning of everything else."""
    engine = OnlineFeatureEngine(
        FeatureSpec(profile=sparkov_spec(sparkov({"s": 0})).profile, label_delay_ms=0)
    )
    engine.update(tx(0, trans_id="a"))
    engine.update(tx(40 * DAY, trans_id="b"))
    values = engine.features(tx(100 * DAY, trans_id="c"))
    assert 60 * DAY == feature(engine, values, "card_seconds_since_previous")
    assert 0.0 == feature(engine, values, "card_count_30d")


def test_missing_card_id_gives_an_empty_history(engine: OnlineFeatureEngine) -> None:
    """A transaction without a card id has no card history and adds none."""
    engine.update(tx(0, trans_id="a") | {"cc_num": None})
    values = engine.features(tx(60, trans_id="b") | {"cc_num": " "})
    assert 0.0 == feature(engine, values, "card_count_1h")
    assert 1.0 == feature(engine, values, "merchant_count_1d")
    store = engine.store
    assert isinstance(store, InMemoryStateStore)
    assert {} == store.cards


def test_state_round_trips_through_json() -> None:
    """Card and merchant state are plain lists, ready for a shared store."""
    card = CardState()
    card.add(time_ms=5, trans_id="a", amount=2.5)
    merchant = MerchantState()
    merchant.add(time_ms=5, trans_id="a", label=1)
    assert card == CardState.from_dict(json.loads(json.dumps(card.to_dict())))
    assert merchant == MerchantState.from_dict(json.loads(json.dumps(merchant.to_dict())))
    assert {"times": [5], "ids": ["a"], "labels": [1], "fraud_times": [5]} == merchant.to_dict()


def test_record_of_a_row_matches_the_frame_records() -> None:
    """transaction_record of a frame row equals the record records_from_frame builds."""
    frame = sparkov({"s": 90, "lat": None}, {"s": 100, "dob": None})
    spec = sparkov_spec(frame)
    records = records_from_frame(frame, spec)
    for position, record in enumerate(records):
        single = transaction_record(frame.iloc[position], spec)
        assert json.dumps(record, sort_keys=True) == json.dumps(single, sort_keys=True)
    assert START_MS + 90_000 == records[0][EVENT_TIME_MS]
    assert None is records[0]["lat"] or math.isnan(records[0]["lat"])
    assert None is records[1]["dob"]


def test_birth_dates_in_any_form_become_epoch_milliseconds() -> None:
    """Dates, ISO strings, aware date-times and epoch numbers all read as UTC milliseconds."""
    expected = 631_152_000_000  # 1990-01-01 00:00 UTC
    assert expected == datetime_ms("1990-01-01")
    assert expected == datetime_ms(date(1990, 1, 1))
    assert expected == datetime_ms(datetime(1990, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    assert expected == datetime_ms(datetime(1990, 1, 1, tzinfo=UTC))
    assert expected == datetime_ms(pd.Timestamp("1990-01-01"))
    assert expected == datetime_ms(np.int64(expected))
    assert [None, None, None, None] == [datetime_ms(v) for v in (None, math.nan, "soon", pd.NaT)]


def test_ulb_online_has_amount_calendar_and_v_columns() -> None:
    """Without card or merchant ids the online engine still scores ULB rows."""
    frame = ulb((0, 10.0, 0), (3600, 20.0, 1))
    spec = FeatureSpec(profile=ULB, label_delay_ms=0)
    engine = OnlineFeatureEngine(spec)
    online = [engine.features_then_update(r) for r in records_from_frame(frame, spec)]
    np.testing.assert_array_equal(batch_features(frame, spec), np.array(online))


@given(st.floats(min_value=0.0, max_value=1e9, allow_nan=False))
def test_log_amount_equals_the_batch_formula_bit_for_bit(amount: float) -> None:
    """One amount's log1p online is the very float the vectorised batch formula gives."""
    from fraudops.features.formulas import log_amount, log_amount_array  # noqa: PLC0415

    batch = log_amount_array(np.array([amount, amount, 1.0, 22.3] * 5))[0]
    assert batch.tobytes() == np.float64(log_amount(amount)).tobytes()


@given(
    st.floats(min_value=-90, max_value=90),
    st.floats(min_value=-180, max_value=180),
    st.floats(min_value=-90, max_value=90),
    st.floats(min_value=-180, max_value=180),
)
def test_home_merchant_distance_equals_the_batch_formula_bit_for_bit(
    lat: float, long: float, merch_lat: float, merch_long: float
) -> None:
    """One transaction's distance online is the very float the vectorised formula gives."""
    from fraudops.features.formulas import haversine_km, haversine_km_array  # noqa: PLC0415

    batch = haversine_km_array(
        lat=np.array([lat, 10.0] * 9),
        long=np.array([long, 20.0] * 9),
        merch_lat=np.array([merch_lat, 11.0] * 9),
        merch_long=np.array([merch_long, 21.0] * 9),
    )[0]
    online = haversine_km(lat=lat, long=long, merch_lat=merch_lat, merch_long=merch_long)
    assert batch.tobytes() == np.float64(online).tobytes()


def test_home_merchant_distance_equals_the_one_element_formula_bit_for_bit() -> None:
    """The float-at-a-time distance is the very float of the formula on one-element arrays,
    near and far, at the poles, antipodes and the same point."""
    from fraudops.features.formulas import haversine_km, haversine_km_array  # noqa: PLC0415

    rng = np.random.default_rng(7)
    lat, long = rng.uniform(-90, 90, 20_000), rng.uniform(-180, 180, 20_000)
    merch_lat = np.clip(lat + rng.normal(0, 1, lat.size), -90, 90)
    merch_long = long + rng.normal(0, 1, long.size)
    merch_lat[:500], merch_long[:500] = -lat[:500], long[:500] + 180.0
    merch_lat[500:1000], merch_long[500:1000] = lat[500:1000], long[500:1000]
    lat[1000:1010], merch_lat[1000:1010] = 90.0, -90.0
    columns = (lat.tolist(), long.tolist(), merch_lat.tolist(), merch_long.tolist())
    for values in zip(*columns, strict=True):
        one = dict(zip(("lat", "long", "merch_lat", "merch_long"), values, strict=True))
        arrays = {name: np.array([value]) for name, value in one.items()}
        expected = haversine_km_array(**arrays)[0]
        assert expected.tobytes() == np.float64(haversine_km(**one)).tobytes(), values


def test_one_event_dated_far_ahead_does_not_erase_the_history(
    engine: OnlineFeatureEngine,
) -> None:
    """After 150 purchases over a week, one dated year 9999 on the same card and merchant:
    the next ordinary purchase still sees the week (as if the outlier had not come)."""
    reference = OnlineFeatureEngine(engine.spec)
    for number in range(150):
        event = tx(number * HOUR, trans_id=f"h{number:03d}")
        engine.update(event)
        reference.update(event)
    far = tx(0, trans_id="poison")
    far[EVENT_TIME_MS] = 253_402_300_799_000
    engine.update(far)
    nxt = tx(150 * HOUR, trans_id="next")
    got = engine.features_then_update(nxt)
    expected = reference.features_then_update(nxt)
    np.testing.assert_array_equal(expected, got)
    assert 24.0 == feature(engine, got, "card_count_1d")
    assert feature(engine, got, "merchant_count_7d") > 100


def test_the_event_clock_skips_the_latest_one_in_a_hundred() -> None:
    """A high quantile of the latest times: two outliers among 200 events do not move it."""
    from fraudops.features.clock import EventClock  # noqa: PLC0415

    clock = EventClock()
    assert clock.now_ms is None
    for number in range(198):
        clock.observe(number * 1000)
    clock.observe(10**15)
    clock.observe(10**15 + 1)
    for number in range(198, 256):
        clock.observe(number * 1000)
    assert clock.now_ms is not None
    assert clock.now_ms <= 255_000
    assert 250_000 <= clock.prune_reference(10**15)
