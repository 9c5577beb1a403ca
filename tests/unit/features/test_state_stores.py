"""State stores: transact reads, transforms and writes atomically; the engine goes through it."""

import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from feature_frames import START_MS, sparkov, sparkov_spec, tx

from fraudops.features.batch import batch_features
from fraudops.features.columns import FeatureInputError
from fraudops.features.online import EVENT_TIME_MS, OnlineFeatureEngine, records_from_frame
from fraudops.features.state import (
    CardState,
    InMemoryStateStore,
    MerchantState,
    StateTransition,
    T,
)


def card_with(*amounts: float) -> CardState:
    """A card with one event per amount, a second apart."""
    state = CardState()
    for number, amount in enumerate(amounts):
        state.add(time_ms=number * 1000, trans_id=f"t{number}", amount=amount)
    return state


class RecordingStore(InMemoryStateStore):
    """An in-memory store that counts transactions and refuses plain reads and writes."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions: list[tuple[str | None, str | None]] = []

    def transact(
        self, card_key: str | None, merchant_key: str | None, work: StateTransition[T]
    ) -> T:
        """Record the keys, then transact."""
        self.transactions.append((card_key, merchant_key))
        return super().transact(card_key, merchant_key, work)

    def get_card(self, key: str) -> CardState | None:  # noqa: ARG002 - the protocol's name
        """Not used by the engine."""
        raise AssertionError("get_card outside a transaction")

    def get_merchant(self, key: str) -> MerchantState | None:  # noqa: ARG002 - the protocol's name
        """Not used by the engine."""
        raise AssertionError("get_merchant outside a transaction")


@pytest.fixture
def spec_frame() -> pd.DataFrame:
    """Two Sparkov rows to fit a spec on."""
    return sparkov({"s": 0, "category": "home"}, {"s": 1, "category": "travel"})


@pytest.fixture
def fast_thread_switching() -> Iterator[None]:
    """Threads switch every microsecond, so unguarded read-modify-writes would interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_transact_hands_the_stored_states_and_stores_the_returned_ones() -> None:
    """The transition sees the stored card and merchant; its result and new states come back."""
    store = InMemoryStateStore()
    card, merchant = card_with(1.0), MerchantState()
    store.put_card("c", card)
    store.put_merchant("m", merchant)
    seen: list[tuple[CardState | None, MerchantState | None]] = []
    replacement = card_with(2.0, 3.0)

    def swap(
        old_card: CardState | None, old_merchant: MerchantState | None
    ) -> tuple[str, CardState, None]:
        seen.append((old_card, old_merchant))
        return "done", replacement, None

    assert "done" == store.transact("c", "m", swap)
    assert [(card, merchant)] == seen
    assert replacement is store.get_card("c")
    assert merchant is store.get_merchant("m")


def test_transact_on_unknown_or_absent_keys_hands_none() -> None:
    """Unknown keys give None; a transition returning None for a key writes nothing."""
    store = InMemoryStateStore()
    assert (None, None) == store.transact("c", None, lambda c, m: ((c, m), None, None))
    assert {} == store.cards
    assert {} == store.merchants


def test_transact_refuses_a_state_for_a_key_not_given() -> None:
    """A transition cannot invent the key its state is stored under."""
    store = InMemoryStateStore()
    with pytest.raises(ValueError, match="no card key"):
        store.transact(None, "m", lambda _c, _m: (None, CardState(), None))
    assert {} == store.cards


def test_in_memory_transact_runs_the_transition_once() -> None:
    """No retries in memory: the transition runs exactly once, on the stored object itself."""
    store = InMemoryStateStore()
    store.put_card("c", card_with(1.0))
    calls: list[int] = []

    def add_event(card: CardState | None, _merchant: MerchantState | None) -> tuple[int, Any, None]:
        assert card is not None
        calls.append(1)
        card.add(time_ms=5_000, trans_id="late", amount=4.0)
        return len(card.times), card, None

    assert 2 == store.transact("c", None, add_event)
    assert [1] == calls
    assert card_with(1.0, 4.0).sum1 == store.cards["c"].sum1


def test_initialised_mark_is_dropped_by_clear() -> None:
    """A new store is not initialised; clear drops the mark with every card and merchant."""
    store = InMemoryStateStore()
    assert not store.initialised()
    store.mark_initialised()
    store.put_card("c", card_with(1.0))
    store.put_merchant("m", MerchantState())
    assert store.initialised()
    store.clear()
    assert (False, {}, {}) == (store.initialised(), store.cards, store.merchants)


def test_scoring_goes_through_one_transaction_each_and_keeps_parity(
    simulated_frame: pd.DataFrame,
) -> None:
    """features_then_update: one transact per transaction, and still the batch features."""
    spec = sparkov_spec(simulated_frame.iloc[:1000], delay_days=2)
    records = records_from_frame(simulated_frame, spec)
    labels = simulated_frame["is_fraud"].tolist()
    order = sorted(range(len(records)), key=lambda row: records[row][EVENT_TIME_MS])
    store = RecordingStore()
    engine = OnlineFeatureEngine(spec, store)
    online = np.empty((len(records), len(spec.names)))
    for row in order:
        online[row] = engine.features_then_update(records[row], label=labels[row])
    expected = batch_features(simulated_frame, spec)
    np.testing.assert_allclose(expected, online, rtol=1e-9, atol=1e-9, equal_nan=True)
    exact = [n for n in spec.names if n not in {"log_amount", "home_merchant_km", "age_years"}]
    columns = [spec.names.index(n) for n in exact]
    np.testing.assert_array_equal(expected[:, columns], online[:, columns])
    keys = [(str(records[row]["cc_num"]), str(records[row]["merchant"])) for row in order]
    assert keys == store.transactions


def test_add_label_goes_through_a_merchant_transaction(spec_frame: pd.DataFrame) -> None:
    """A label is set inside a merchant-only transaction, and counts once delay-old."""
    store = RecordingStore()
    engine = OnlineFeatureEngine(sparkov_spec(spec_frame, delay_days=1), store)
    engine.update(tx(0, trans_id="a"))
    assert engine.add_label(tx(0, trans_id="a"), is_fraud=True)
    assert not engine.add_label(tx(0, trans_id="unknown"), is_fraud=True)
    assert [("card-a", "shop-1"), (None, "shop-1"), (None, "shop-1")] == store.transactions
    assert [START_MS] == store.merchants["shop-1"].fraud_times
    values = engine.features(tx(2 * 86_400, trans_id="b"))
    assert 1.0 == values[engine.spec.names.index("merchant_risk_7d")]


def test_a_transaction_without_amount_is_refused_and_changes_nothing(
    spec_frame: pd.DataFrame,
) -> None:
    """A missing amount would put NaN in the card's running sums for good: refused instead."""
    engine = OnlineFeatureEngine(sparkov_spec(spec_frame))
    engine.update(tx(0, trans_id="a", amount=12.5))
    store = engine.store
    assert isinstance(store, InMemoryStateStore)
    before = (store.cards["card-a"].to_dict(), store.merchants["shop-1"].to_dict())
    with pytest.raises(FeatureInputError, match="amount must be a number"):
        engine.features_then_update(tx(60, trans_id="b", amount=None))
    assert before == (store.cards["card-a"].to_dict(), store.merchants["shop-1"].to_dict())


class CommitLog(InMemoryStateStore):
    """An in-memory store noting, under its lock, which transaction each commit was for."""

    def __init__(self) -> None:
        super().__init__()
        self.current = threading.local()
        self.order: list[str] = []

    def transact(
        self, card_key: str | None, merchant_key: str | None, work: StateTransition[T]
    ) -> T:
        """Transact, logging the calling thread's current transaction id as it commits."""

        def logged(
            card: CardState | None, merchant: MerchantState | None
        ) -> tuple[T, CardState | None, MerchantState | None]:
            self.order.append(self.current.trans_id)
            return work(card, merchant)

        return super().transact(card_key, merchant_key, logged)


@pytest.mark.usefixtures("fast_thread_switching")
def test_threads_scoring_one_card_lose_no_update(spec_frame: pd.DataFrame) -> None:
    """8 threads x 200 transactions of one card, out of order across threads: no event lost.

    The final state equals a sequential run's (canonical order, bit-equal sums), and each
    transaction got exactly the features one engine gives it when fed the transactions in
    the order they committed.
    """
    spec = sparkov_spec(spec_frame, delay_days=1)
    threads, per_thread = 8, 200
    streams = [
        [
            tx((j * threads + k) // 2, trans_id=f"t{k}-{j:03d}", amount=(7 * j + k) % 97 + 0.01)
            for j in range(per_thread)
        ]
        for k in range(threads)
    ]
    store = CommitLog()
    engine = OnlineFeatureEngine(spec, store)
    scored: dict[str, np.ndarray] = {}
    start = threading.Barrier(threads)

    def score(stream: list[dict[str, Any]]) -> None:
        start.wait()
        for record in stream:
            store.current.trans_id = record["trans_num"]
            scored[record["trans_num"]] = engine.features_then_update(record)

    workers = [threading.Thread(target=score, args=(stream,)) for stream in streams]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    by_id = {record["trans_num"]: record for stream in streams for record in stream}
    in_time_order = sorted(by_id.values(), key=lambda r: (r[EVENT_TIME_MS], r["trans_num"]))
    sequential = OnlineFeatureEngine(spec)
    for record in in_time_order:
        sequential.update(record)
    reference = sequential.store
    assert isinstance(reference, InMemoryStateStore)
    assert [r["trans_num"] for r in in_time_order] == store.cards["card-a"].ids
    assert reference.cards["card-a"].to_dict() == store.cards["card-a"].to_dict()
    assert reference.merchants["shop-1"].to_dict() == store.merchants["shop-1"].to_dict()
    switches = sum(a[:2] != b[:2] for a, b in zip(store.order, store.order[1:], strict=False))
    assert switches > threads, "the threads never interleaved"
    replay = OnlineFeatureEngine(spec)
    for trans_id in store.order:
        np.testing.assert_array_equal(
            replay.features_then_update(by_id[trans_id]), scored[trans_id], err_msg=trans_id
        )
