"""Batch and online engines agree on any stream, whatever the order within a timestamp."""

from typing import Any

import numpy as np
import pandas as pd
import pytest
from feature_frames import DAY, HOUR, sparkov, sparkov_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudops.data.profile_schema import transaction_schema
from fraudops.data.profiles import FDH
from fraudops.data.validation import check_frame
from fraudops.features.batch import batch_features
from fraudops.features.labels import NEVER_MS, label_arrival, label_known
from fraudops.features.online import (
    EVENT_TIME_MS,
    OnlineFeatureEngine,
    records_from_frame,
    transaction_record,
)
from fraudops.features.spec import FEATURE_GROUPS, FeatureSpec, fit_feature_spec
from fraudops.simulate import to_fdh
from profile_frames import PROFILES, loaded


def replay(
    frame: pd.DataFrame, spec: FeatureSpec, *, arrival: list[int] | None = None
) -> np.ndarray:
    """Online features of every row, fed in time order (ties in `arrival` order), in row order."""
    records = records_from_frame(frame, spec)
    labels = (
        frame[spec.profile.label].tolist() if spec.profile.label in frame else [None] * len(frame)
    )
    tiebreak = arrival if arrival is not None else list(range(len(frame)))
    order = sorted(range(len(frame)), key=lambda row: (records[row][EVENT_TIME_MS], tiebreak[row]))
    engine = OnlineFeatureEngine(spec)
    online = np.empty((len(frame), len(spec.names)))
    for row in order:
        online[row] = engine.features_then_update(records[row], label=labels[row])
    return online


def replay_with_label_arrival(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Online features of every row as a service gets them: transactions in time order, each
    label posted on its own once known (after its transaction, before those after it)."""
    records = records_from_frame(frame, spec)
    arrival = label_arrival(frame, spec.profile, label_delay_ms=spec.label_delay_ms)
    posted = sorted(
        (int(arrival.times_ms[row]), row)
        for row in range(len(frame))
        if arrival.times_ms[row] != NEVER_MS
    )
    engine = OnlineFeatureEngine(spec)
    online = np.empty((len(frame), len(spec.names)))
    for row in sorted(range(len(frame)), key=lambda row: records[row][EVENT_TIME_MS]):
        time_ms = records[row][EVENT_TIME_MS]
        while posted and label_known(posted[0][0], time_ms):
            label_time_ms, labelled = posted.pop(0)
            engine.add_label(
                records[labelled],
                is_fraud=bool(arrival.fraud[labelled]),
                label_time_ms=label_time_ms,
            )
        online[row] = engine.features_then_update(records[row])
    return online


@st.composite
def streams(draw: st.DrawFn) -> tuple[pd.DataFrame, list[int], int]:
    """Random purchases of a few cards at a few shops, with many same-second ties and labels."""
    size = draw(st.integers(min_value=1, max_value=40))
    anchors = draw(st.lists(st.integers(0, 40 * DAY), min_size=1, max_size=5))
    moments = st.one_of(
        st.sampled_from(anchors),
        st.sampled_from(anchors).flatmap(lambda a: st.integers(a, a + 2 * HOUR)),
        st.integers(0, 40 * DAY),
    )
    ids = draw(st.permutations(range(size)))
    rows: list[dict[str, Any]] = [
        {
            "s": draw(moments),
            "id": f"tx{ids[number]:02d}",
            "cc_num": draw(st.sampled_from(["a", "b", "c"])),
            "merchant": draw(st.sampled_from(["m1", "m2"])),
            "amt": draw(st.integers(0, 100_000)) / 100,
            "is_fraud": draw(st.integers(0, 1)),
            "category": draw(st.sampled_from(["home", "travel", "misc_net"])),
        }
        for number in range(size)
    ]
    arrival = draw(st.lists(st.integers(0, 1_000), min_size=size, max_size=size))
    delay_ms = draw(st.integers(0, 3 * DAY)) * 1000
    return sparkov(*rows), arrival, delay_ms


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_batch_equals_online_on_random_streams(stream: tuple[pd.DataFrame, list[int], int]) -> None:
    """Any stream, ties fed in any order: online features equal batch features."""
    frame, arrival, delay_ms = stream
    spec = fit_feature_spec(
        frame.iloc[: max(1, len(frame) // 2)],
        frame_profile(),
        label_delay_ms=delay_ms,
        groups=frozenset(FEATURE_GROUPS),
    )
    assert delay_ms == spec.label_lag_ms  # no label times: the fixed rule, as before
    expected = batch_features(frame, spec)
    np.testing.assert_allclose(
        expected, replay(frame, spec, arrival=arrival), rtol=1e-9, atol=1e-9, equal_nan=True
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.data())
def test_batch_equals_online_with_label_times(
    stream: tuple[pd.DataFrame, list[int], int], data: st.DataObject
) -> None:
    """Labels known at their own time (minutes after, within the delay, long after it, or
    never), some reported other than the truth, label windows ending at t or the delay before
    (as fitted, or set): online, fed each label when it arrives, equals batch."""
    frame, _, delay_ms = stream
    waits = st.one_of(
        st.none(),  # never arrives
        st.integers(0, 2 * HOUR),  # an analyst's verdict, minutes after, before the delay
        st.integers(0, 60 * DAY),  # a chargeback, possibly long after the delay
    )
    known = [data.draw(waits) for _ in range(len(frame))]
    reported = [data.draw(st.sampled_from([0.0, 1.0, None])) for _ in range(len(frame))]
    label_time = [
        pd.NaT if wait is None else event + pd.Timedelta(seconds=wait)
        for wait, event in zip(known, frame["event_time"], strict=True)
    ]
    frame = frame.assign(
        label_time=pd.to_datetime(pd.Series(label_time, index=frame.index)),
        reported_fraud=[
            float("nan") if wait is None or value is None else value
            for wait, value in zip(known, reported, strict=True)
        ],
    )
    lag_ms = data.draw(st.sampled_from([None, 0, delay_ms]))
    spec = fit_feature_spec(
        frame.iloc[: max(1, len(frame) // 2)],
        frame_profile(),
        label_delay_ms=delay_ms,
        groups=frozenset(FEATURE_GROUPS),
        label_window_lag_ms=lag_ms,
    )
    assert spec.label_lag_ms in {0, delay_ms}
    np.testing.assert_allclose(
        batch_features(frame, spec),
        replay_with_label_arrival(frame, spec),
        rtol=1e-9,
        atol=1e-9,
        equal_nan=True,
    )


def test_labels_fed_with_transactions_count_from_their_label_time(
    simulated_frame: pd.DataFrame,
) -> None:
    """Online labels handed over with their transaction (a rebuild from the warehouse) still
    count only from their label time: the batch values of a frame with label times."""
    frame = simulated_frame.iloc[:2000]
    rng = np.random.default_rng(3)
    waits = pd.to_timedelta(rng.choice([60, 3 * DAY, 40 * DAY], size=len(frame)), unit="s")
    frame = frame.assign(label_time=frame["event_time"] + waits)
    spec = sparkov_spec(frame, delay_days=2)
    arrival = label_arrival(frame, spec.profile, label_delay_ms=spec.label_delay_ms)
    engine = OnlineFeatureEngine(spec)
    records = records_from_frame(frame, spec)
    online = np.array(
        [
            engine.features_then_update(record, label=int(fraud), label_time_ms=int(label_time_ms))
            for record, fraud, label_time_ms in zip(
                records, arrival.fraud, arrival.times_ms, strict=True
            )
        ]
    )
    expected = batch_features(frame, spec)
    np.testing.assert_allclose(expected, online, rtol=1e-9, atol=1e-9, equal_nan=True)
    fixed = batch_features(frame.drop(columns="label_time"), spec)
    for name in ("merchant_risk_30d", "card_known_frauds_30d"):
        column = spec.names.index(name)
        assert not np.allclose(fixed[:, column], expected[:, column], equal_nan=True), name


def frame_profile() -> Any:
    """The Sparkov profile the stream frames are built with."""
    return sparkov_spec(sparkov({"s": 0})).profile


def test_batch_equals_online_on_a_simulated_frame(simulated_frame: pd.DataFrame) -> None:
    """Thousands of simulated purchases: identical sums and counts, transcendental within 1e-9."""
    spec = sparkov_spec(simulated_frame.iloc[:1000], delay_days=2)
    expected = batch_features(simulated_frame, spec)
    online = replay(simulated_frame, spec)
    np.testing.assert_allclose(expected, online, rtol=1e-9, atol=1e-9, equal_nan=True)
    exact = [n for n in spec.names if n not in {"log_amount", "home_merchant_km", "age_years"}]
    columns = [spec.names.index(n) for n in exact]
    np.testing.assert_array_equal(expected[:, columns], online[:, columns])
    assert len(simulated_frame) > 3_000


def test_batch_equals_online_on_fdh_columns(simulated_frame: pd.DataFrame) -> None:
    """The same purchases in Fraud Detection Handbook columns agree as well."""
    raw = to_fdh(
        simulated_frame.assign(
            trans_date_trans_time=simulated_frame["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S")
        )
    )
    frame = check_frame(raw, FDH).clean_frame()
    spec = FeatureSpec(profile=FDH, label_delay_ms=DAY * 1000, groups=frozenset(FEATURE_GROUPS))
    assert "card_known_frauds_30d" in spec.names
    np.testing.assert_allclose(
        batch_features(frame, spec), replay(frame, spec), rtol=1e-9, atol=1e-9, equal_nan=True
    )


def served_replay(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Online features of every row sent as the service reads it: a request of the profile,
    validated and mapped to canonical form, then back to the profile's columns."""
    schema = transaction_schema(spec.profile)
    label = spec.profile.label
    requests = [
        {k: v for k, v in row.items() if k not in ("event_time", label)}
        for row in frame.to_dict("records")
    ]
    canonical = [schema.canonical(request) for request in requests]
    records = []
    for transaction in canonical:
        fields = schema.record(transaction) | {EVENT_TIME_MS: transaction.event_time_ms}
        records.append(transaction_record(fields, spec))
    order = sorted(range(len(frame)), key=lambda row: (records[row][EVENT_TIME_MS], row))
    labels = frame[label].tolist()
    engine = OnlineFeatureEngine(spec)
    online = np.empty((len(frame), len(spec.names)))
    for row in order:
        online[row] = engine.features_then_update(records[row], label=labels[row])
    return online


@pytest.mark.parametrize("name", ["fdh", "ulb"])
def test_served_requests_of_a_profile_give_the_batch_features(
    name: str, simulated_frame: pd.DataFrame
) -> None:
    """fdh and ulb transactions read through the request schema get the batch features."""
    profile, to_raw = PROFILES[name]
    sparkov_rows = simulated_frame.assign(
        trans_date_trans_time=simulated_frame["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    )
    frame = loaded(to_raw(sparkov_rows), profile)
    spec = fit_feature_spec(frame, profile, label_delay_ms=DAY * 1000)
    expected = batch_features(frame, spec)
    np.testing.assert_allclose(
        expected, served_replay(frame, spec), rtol=1e-9, atol=1e-9, equal_nan=True
    )
    assert len(frame) > 3_000
