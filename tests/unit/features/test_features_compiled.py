"""The compiled state features equal the Python reference functions, bit for bit."""

import sys
from typing import Any

import numpy as np
import pytest
from feature_frames import DAY, HOUR, START_MS, sparkov, sparkov_spec, tx
from hypothesis import given, settings
from hypothesis import strategies as st

import fraudops.features
from fraudops.features import online
from fraudops.features.online import EVENT_TIME_MS, OnlineFeatureEngine, state_kernel
from fraudops.features.spec import FeatureSpec
from fraudops.features.state import CardState, InMemoryStateStore, MerchantState

SPEC_WITH_LAG = sparkov_spec(
    sparkov({"s": 0, "category": "home"}, {"s": 1, "category": "travel"}),
    delay_days=2,
    lag_days=1,
)

# One event: seconds after the start (on a coarse grid, so that ties and window edges are
# met), card, merchant, category, amount, label and the label's delay in half hours (on the
# same grid, so that labels become known at the very instant of other events).
EVENTS = st.lists(
    st.tuples(
        st.integers(0, 40 * 24).map(lambda half_hours: half_hours * HOUR // 2),
        st.sampled_from(["card-a", "card-b"]),
        st.sampled_from(["shop-1", "shop-2", "shop-3"]),
        st.sampled_from(["home", "travel", "", "grocery_pos"]),
        st.sampled_from([0.0, -0.0, 0.0, -0.0, 1.0, 9.99, 10.0, 250.5, 1e6, -3.0]),
        st.sampled_from([None, 0, 1]),
        st.integers(-4, 2 * 24 * 9),
    ),
    max_size=60,
)


def bits(values: np.ndarray) -> list[int]:
    """Each value's bit pattern, NaNs as one pattern (what a NaN carries is not a feature)."""
    return [-1 if np.isnan(value) else int(value.view(np.int64)) for value in values]


def transaction(event: tuple[Any, ...], number: int) -> dict[str, Any]:
    """The Sparkov transaction of a generated event."""
    seconds, card, merchant, category, amount, _, _ = event
    return tx(seconds, trans_id=f"t{number:03d}", card=card, amount=amount) | {
        "merchant": merchant,
        "category": category or None,
    }


def engines(spec: FeatureSpec) -> tuple[OnlineFeatureEngine, OnlineFeatureEngine]:
    """A compiled engine and a Python one on the same store."""
    store = InMemoryStateStore()
    return OnlineFeatureEngine(spec, store), OnlineFeatureEngine(spec, store, kernel="python")


def test_the_kernel_loads_here() -> None:
    """numba loads on this machine, so the tests below compare two real implementations."""
    assert state_kernel() is not None
    compiled, python = engines(SPEC_WITH_LAG)
    assert compiled.compiled
    assert not python.compiled
    background = OnlineFeatureEngine(SPEC_WITH_LAG, kernel="background")
    assert background.wait_compiled(timeout=60)


def test_without_numba_the_engine_computes_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the kernel cannot load (no numba wheel, no cache folder), `state_kernel` says
    None and an engine asked for the kernel computes the same values in Python."""
    compiled = OnlineFeatureEngine(SPEC_WITH_LAG)
    assert compiled.compiled
    monkeypatch.setitem(sys.modules, "fraudops.features.compiled", None)  # import fails
    monkeypatch.delattr(fraudops.features, "compiled", raising=False)
    assert state_kernel.__wrapped__() is None
    monkeypatch.setattr(online, "state_kernel", state_kernel.__wrapped__)
    fallback = OnlineFeatureEngine(SPEC_WITH_LAG, compiled.store)
    assert not fallback.compiled
    for number in range(3):
        record = tx(number * HOUR, trans_id=f"t{number}", amount=5.0 * number)
        expected = compiled.features(record)
        assert bits(fallback.features_then_update(record)) == bits(expected)


@settings(max_examples=150, deadline=None)
@given(events=EVENTS, probes=st.lists(st.integers(0, 45 * 24 * 2), min_size=1, max_size=6))
def test_compiled_features_equal_the_python_functions(
    events: list[tuple[Any, ...]], probes: list[int]
) -> None:
    """Any history of ties, late events, labels known early or late, missing categories and
    zero, negative or large amounts: every feature read from the state is the same double."""
    compiled, python = engines(SPEC_WITH_LAG)
    lag_ms = SPEC_WITH_LAG.label_lag_ms
    edges: list[int] = []  # instants where a label becomes known or an event leaves a window
    for number, event in enumerate(events):
        label, delay_half_hours = event[5], event[6]
        record = transaction(event, number)
        label_time = record[EVENT_TIME_MS] + delay_half_hours * HOUR * 500
        edges += [label_time, record[EVENT_TIME_MS] + 30 * DAY * 1000 + lag_ms]
        edges.append(record[EVENT_TIME_MS] + 30 * DAY * 1000)
        if number % 2:
            got, expected = (
                compiled.features_then_update(record, label=label, label_time_ms=label_time),
                python.features(record),
            )
        else:
            expected, got = (
                python.features_then_update(record, label=label, label_time_ms=label_time),
                compiled.features(record),
            )
        assert bits(got) == bits(expected)
    instants = [START_MS + half_hours * HOUR * 500 for half_hours in probes] + edges
    for number, time_ms in enumerate(instants):
        for card in ("card-a", "card-b", "card-new"):
            probe = transaction((0, card, "shop-2", "home", 10.0, 0, 0), 900)
            probe |= {"trans_num": f"probe{number}", EVENT_TIME_MS: time_ms}
            assert bits(compiled.features(probe)) == bits(python.features(probe))


def test_the_largest_amount_is_the_first_of_equal_ones() -> None:
    """max() keeps the first of equal values: -0.0 before 0.0 stays -0.0, bit for bit."""
    compiled, python = engines(SPEC_WITH_LAG)
    for number, amount in enumerate([-3.0, -0.0, 0.0]):
        compiled.update(tx(number * 60, trans_id=f"t{number}", amount=amount))
    probe = tx(HOUR, trans_id="probe")
    largest = compiled.spec.names.index("card_amount_max_1h")
    assert np.signbit(compiled.features(probe)[largest])
    assert bits(compiled.features(probe)) == bits(python.features(probe))


@pytest.mark.parametrize("groups", [frozenset(), frozenset({"card_hour_profile"})])
def test_specs_with_fewer_groups_fill_the_same_columns(groups: frozenset[str]) -> None:
    """A spec without the optional groups: the kernel writes only the blocks it has."""
    frame = sparkov({"s": 0}, {"s": DAY, "amt": 30.0}, {"s": 2 * DAY, "amt": 5.0})
    spec = sparkov_spec(frame, delay_days=1)
    spec = FeatureSpec(
        profile=spec.profile,
        label_delay_ms=spec.label_delay_ms,
        vocabularies=spec.vocabularies,
        groups=groups,
    )
    compiled, python = engines(spec)
    for number, seconds in enumerate([0, HOUR, DAY, 3 * DAY]):
        record = tx(seconds, trans_id=f"t{number}", amount=10.0 + number)
        assert len(spec.names) == len(compiled.features(record))
        assert bits(compiled.features_then_update(record)) == bits(python.features(record))


def test_states_made_from_lists_hold_arrays() -> None:
    """States given lists (from JSON, or by hand) keep arrays of the packed typecodes, which
    the kernel reads without a copy."""
    card = CardState.from_dict(CardState().to_dict() | {"times": [1], "amounts": [2.0]})
    merchant = MerchantState(times=[5], ids=["x"], labels=[0])
    assert ("q", "d", "d") == (card.times.typecode, card.amounts.typecode, card.sum1.typecode)
    assert ("q", "B") == (merchant.times.typecode, merchant.labels.typecode)
    assert [1] == list(card.times)
    assert ["x"] == merchant.ids
