"""Batch and online engines agree on any stream, whatever the order within a timestamp."""

from typing import Any

import numpy as np
import pandas as pd
from feature_frames import DAY, HOUR, sparkov, sparkov_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudops.data.profiles import FDH
from fraudops.data.validation import check_frame
from fraudops.features.batch import batch_features
from fraudops.features.online import EVENT_TIME_MS, OnlineFeatureEngine, records_from_frame
from fraudops.features.spec import FEATURE_GROUPS, FeatureSpec, fit_feature_spec
from fraudops.simulate import to_fdh


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
    expected = batch_features(frame, spec)
    np.testing.assert_allclose(
        expected, replay(frame, spec, arrival=arrival), rtol=1e-9, atol=1e-9, equal_nan=True
    )


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
