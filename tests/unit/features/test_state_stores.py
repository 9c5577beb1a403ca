"""State stores: transact reads, transforms and writes atomically; the engine goes through it.

Also the pure parts of the Redis layout (packed columns, ordered members, ids left in Redis)
and rebuilds: states built in process and loaded at once.
"""

import os
import struct
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from feature_frames import START_MS, sparkov, sparkov_spec, tx
from hypothesis import given
from hypothesis import strategies as st

from fraudops.features import redis_packing
from fraudops.features.batch import batch_features
from fraudops.features.columns import FeatureInputError
from fraudops.features.online import EVENT_TIME_MS, OnlineFeatureEngine, records_from_frame
from fraudops.features.state import (
    CardState,
    Claim,
    ClaimedError,
    FeatureStateUnavailableError,
    InMemoryStateStore,
    MerchantState,
    StateStep,
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
        self,
        card_key: str | None,
        merchant_key: str | None,
        work: StateTransition[T],
        *,
        claim: Claim | None = None,
    ) -> T:
        """Record the keys, then transact."""
        self.transactions.append((card_key, merchant_key))
        return super().transact(card_key, merchant_key, work, claim=claim)

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


def test_add_label_goes_through_a_card_and_merchant_transaction(spec_frame: pd.DataFrame) -> None:
    """A label is set on the card and the merchant in one transaction, counts once delay-old."""
    store = RecordingStore()
    engine = OnlineFeatureEngine(sparkov_spec(spec_frame, delay_days=1), store)
    engine.update(tx(0, trans_id="a"))
    assert engine.add_label(tx(0, trans_id="a"), is_fraud=True)
    assert not engine.add_label(tx(0, trans_id="unknown"), is_fraud=True)
    assert [("card-a", "shop-1")] * 3 == store.transactions
    assert [START_MS] == list(store.merchants["shop-1"].fraud_times)
    assert [START_MS] == list(store.cards["card-a"].fraud_times)
    values = engine.features(tx(2 * 86_400, trans_id="b"))
    assert 1.0 == values[engine.spec.names.index("merchant_risk_7d")]
    assert 1.0 == values[engine.spec.names.index("card_known_frauds_30d")]
    assert 2.0 == values[engine.spec.names.index("card_days_since_known_fraud")]


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
        self,
        card_key: str | None,
        merchant_key: str | None,
        work: StateTransition[T],
        *,
        claim: Claim | None = None,
    ) -> T:
        """Transact, logging the calling thread's current transaction id as it commits."""

        def logged(
            card: CardState | None, merchant: MerchantState | None
        ) -> tuple[T, CardState | None, MerchantState | None]:
            self.order.append(self.current.trans_id)
            return work(card, merchant)

        return super().transact(card_key, merchant_key, logged, claim=claim)


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


# --- the Redis layout's pure parts: packed columns, ordered members, ids kept in Redis -------


def float_bits(values: Any) -> list[bytes]:
    """The exact IEEE 754 bytes of each float."""
    return [struct.pack("<d", value) for value in values]


any_double = st.integers(min_value=0, max_value=2**64 - 1).map(
    lambda raw: struct.unpack("<d", struct.pack("<Q", raw))[0]
)


@given(
    times=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=50),
    doubles=st.lists(any_double | st.sampled_from([0.1 + 0.2, -0.0, 5e-324, 1 / 3]), max_size=50),
    labels=st.lists(st.integers(min_value=0, max_value=1), max_size=50),
)
def test_packed_columns_round_trip_bit_for_bit(
    times: list[int], doubles: list[float], labels: list[int]
) -> None:
    """Any int64, any double (NaN payloads, -0.0, subnormals) and labels come back unchanged."""
    assert times == redis_packing.unpack("q", redis_packing.pack("q", times)).tolist()
    back = redis_packing.unpack("d", redis_packing.pack("d", doubles)).tolist()
    assert float_bits(doubles) == float_bits(back)
    assert labels == redis_packing.unpack("B", redis_packing.pack("B", labels)).tolist()
    assert 8 * len(times) == len(redis_packing.pack("q", times))


def test_tokens_are_unique_and_a_forked_child_draws_its_own() -> None:
    """Versions never repeat in a process, nor between a process and a child it forks."""
    here = {redis_packing.new_token() for _ in range(10_000)}
    assert 10_000 == len(here)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write, redis_packing.new_token().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    theirs = os.read(read, 100).decode()
    os.close(read)
    assert theirs not in here
    assert theirs.split("-")[0] != redis_packing.new_token().split("-")[0]


@given(
    st.lists(
        st.tuples(st.integers(min_value=-(2**62), max_value=2**62), st.text(max_size=6)),
        max_size=30,
    )
)
def test_members_sort_as_events_do(events: list[tuple[int, str]]) -> None:
    """Sorted-set members sort bytewise in canonical (time, id) order, and give the id back."""
    members = [redis_packing.event_member(time_ms, trans_id) for time_ms, trans_id in events]
    assert sorted(events) == [events[members.index(member)] for member in sorted(members)]
    assert [trans_id for _, trans_id in events] == [redis_packing.id_of(m) for m in members]


class FetchLog:
    """Ids standing for those in Redis, counting the fetches."""

    def __init__(self, stored: list[str]) -> None:
        self.stored, self.fetched = stored, 0

    def __call__(self, lo: int, hi: int) -> list[str]:
        """The stored ids of ranks [lo, hi)."""
        self.fetched += hi - lo
        return self.stored[lo:hi]


edits = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(-60, 60), st.text(min_size=1, max_size=3)),
        st.tuples(st.just("drop"), st.integers(0, 8), st.just("")),
        st.tuples(st.just("read"), st.integers(-60, 60), st.just("")),
    ),
    max_size=25,
)


@given(stored=st.lists(st.text(min_size=1, max_size=3), max_size=20), edits=edits)
def test_stored_ids_act_as_the_list_they_stand_for(stored: list[str], edits: list[Any]) -> None:
    """Inserts, prefix drops and reads: the list's answers; `change` rebuilds the final list."""
    log = FetchLog(stored)
    ids = redis_packing.StoredIds(
        stored=len(stored), fetch=log, last=stored[-1] if stored else None
    )
    mirror = list(stored)
    for action, index, value in edits:
        if action == "insert":
            ids.insert(index, value)
            mirror.insert(index, value)
        elif action == "drop":
            del ids[:index]
            del mirror[:index]
        elif mirror and -len(mirror) <= index < len(mirror):
            assert mirror[index] == ids[index]
        assert len(mirror) == len(ids)
    assert mirror == list(ids)
    dropped, added = ids.change()
    rebuilt = stored[dropped:]
    for position, trans_id in added:
        rebuilt.insert(position, trans_id)
    assert mirror == rebuilt
    assert ids.last_known() in {None, mirror[-1] if mirror else None}


def test_a_state_read_as_arrays_and_stored_ids_moves_as_the_plain_one() -> None:
    """Ties, late events, replays, pruning and labels, as a Redis transaction applies them.

    The columns are arrays and the ids fetched on demand, as RedisStateStore hands them to
    a transition: every step leaves them equal to plain lists, sums bit for bit, and the ids
    read are only the ones compared.
    """
    day = 86_400_000
    plain_card, plain_merchant = CardState(), MerchantState()
    for number in range(40):
        plain_card.add(time_ms=number * day // 4, trans_id=f"t{number:02d}", amount=number + 0.1)
        plain_merchant.add(time_ms=number * day // 4, trans_id=f"t{number:02d}", label=0)
    log = FetchLog(list(plain_card.ids))

    def stored_like(state: CardState | MerchantState) -> Any:
        columns = redis_packing.CARD if isinstance(state, CardState) else redis_packing.MERCHANT
        fields = {
            name: redis_packing.unpack(code, redis_packing.pack(code, getattr(state, name)))
            for name, code in columns.columns
        }
        ids = redis_packing.StoredIds(stored=len(state.ids), fetch=log, last=state.ids[-1])
        return type(state)(ids=ids, **fields)

    card, merchant = stored_like(plain_card), stored_like(plain_merchant)
    steps = [
        (10 * day, "next", 1.5, None),  # in order
        (10 * day, "a-tie", 2.25, None),  # a tie, sorting before the latest
        (10 * day, "next", 1.5, None),  # a replay
        (3 * day, "late", 7.0, 1),  # late, with a label: sums after it re-added
        (3 * day, "late", 7.0, 1),  # a late replay
        (50 * day, "much-later", 0.3, 0),  # prunes most of the history
    ]
    for time_ms, trans_id, amount, label in steps:
        for state in (plain_card, card):
            added = state.add(
                time_ms=time_ms,
                trans_id=trans_id,
                amount=amount,
                merchant=7,
                category=3,
                label=label,
            )
            if added:
                state.prune(horizon_ms=37 * day)
        for state in (plain_merchant, merchant):
            if state.add(time_ms=time_ms, trans_id=trans_id, label=label):
                state.prune(horizon_ms=37 * day)
        assert list(plain_card.times) == list(card.times)
        assert list(plain_merchant.fraud_times) == list(merchant.fraud_times)
        assert list(plain_card.fraud_times) == list(card.fraud_times)
        for name in ("amounts", "sum1", "sum2", "hour_cos", "hour_sin"):
            assert float_bits(getattr(plain_card, name)) == float_bits(getattr(card, name))
    fetched = log.fetched
    assert plain_card.to_dict() == card.to_dict()
    assert plain_merchant.to_dict() == merchant.to_dict()
    assert fetched < 10, "ids are fetched where compared only (40 were stored per state)"
    assert merchant.set_label(time_ms=50 * day, trans_id="much-later", is_fraud=True)
    assert plain_merchant.set_label(time_ms=50 * day, trans_id="much-later", is_fraud=True)
    assert plain_merchant.to_dict() == merchant.to_dict()


def test_splice_sends_only_what_was_appended_and_pruned() -> None:
    """A pruned-and-appended column goes as a skip and a tail; a rewritten one goes whole."""
    old = redis_packing.pack("q", [1, 2, 3, 4])
    new_values = [3, 4, 5]
    new = redis_packing.pack("q", new_values)
    skip, tail = redis_packing.splice(
        memoryview(old), new, code="q", values=new_values, dropped=2, skipped=0
    )
    assert (16, redis_packing.pack("q", [5])) == (skip, tail)
    assert new == old[skip:] + tail
    fraud_values = [4]  # a sorted column pruned by a count of its own
    skip, tail = redis_packing.splice(
        memoryview(old),
        redis_packing.pack("q", fraud_values),
        code="q",
        values=fraud_values,
        dropped=0,
        skipped=0,
    )
    assert (24, b"") == (skip, tail)
    assert (8, b"") == redis_packing.splice(  # pruned more events than there were frauds
        memoryview(redis_packing.pack("q", [7])), b"", code="q", values=[], dropped=3, skipped=0
    )
    sums = redis_packing.pack("d", [0.0, 1.0, 9.0, 10.0])  # a late event changed a sum
    assert (-1, sums) == redis_packing.splice(
        memoryview(redis_packing.pack("d", [0.0, 1.0, 2.0])),
        sums,
        code="d",
        values=[0.0, 1.0, 9.0, 10.0],
        dropped=0,
        skipped=0,
    )
    big = redis_packing.pack("q", range(2_000))
    assert (
        -1
        == redis_packing.splice(
            memoryview(big), big[8:], code="q", values=[1], dropped=1, skipped=15_000
        )[0]
    ), "a front skipped past a quarter of the column is written anew"


# --- rebuilds ---------------------------------------------------------------------------------


def test_a_bulk_load_equals_per_transaction_updates(simulated_frame: pd.DataFrame) -> None:
    """States built in process and loaded at once: the store per-transaction updates give.

    And scoring then goes on from them exactly as it goes on from the updated store.
    """
    spec = sparkov_spec(simulated_frame.iloc[:1000], delay_days=2)
    records = records_from_frame(simulated_frame, spec)
    labels = simulated_frame["is_fraud"].tolist()
    order = sorted(range(len(records)), key=lambda row: records[row][EVENT_TIME_MS])
    history, rest = order[: len(order) * 3 // 4], order[len(order) * 3 // 4 :]
    updated, built, loaded = InMemoryStateStore(), InMemoryStateStore(), InMemoryStateStore()
    for store in (updated, built):
        engine = OnlineFeatureEngine(spec, store)
        for row in history:
            engine.update(records[row], label=labels[row])
    loaded.put_card("stale", card_with(1.0))
    loaded.load(built.cards, built.merchants)
    assert loaded.initialised()
    assert {k: v.to_dict() for k, v in updated.cards.items()} == {
        k: v.to_dict() for k, v in loaded.cards.items()
    }
    assert updated.merchants == loaded.merchants
    scores = [
        [OnlineFeatureEngine(spec, store).features_then_update(records[row]) for row in rest]
        for store in (updated, loaded)
    ]
    np.testing.assert_array_equal(np.array(scores[0]), np.array(scores[1]))


def test_in_memory_rebuild_lock_admits_one_builder_at_a_time() -> None:
    """While one holds the rebuild lock another is turned away; after it, the next gets it."""
    store = InMemoryStateStore()
    with store.rebuild_lock() as first, store.rebuild_lock() as second:
        assert (True, False) == (first, second)
    with store.rebuild_lock() as again:
        assert again


def _adding(trans_id: str, time_ms: int, amount: Any = 1.0) -> StateTransition[str]:
    """A transition adding one event to the card (refused by the card if `amount` is bad)."""

    def add(card: CardState | None, _merchant: MerchantState | None) -> Any:
        card = card if card is not None else CardState()
        if not isinstance(amount, float):
            raise FeatureInputError(f"transaction {trans_id}: bad amount")
        card.add(time_ms=time_ms, trans_id=trans_id, amount=amount)
        return trans_id, card, None

    return add


class _DownAfter(InMemoryStateStore):
    """In-process state that goes down after `good` transactions."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good

    def transact(self, *args: Any, **kwargs: Any) -> Any:
        if self.good == 0:
            raise FeatureStateUnavailableError("down")
        self.good -= 1
        return super().transact(*args, **kwargs)


def test_transact_each_gives_each_step_its_outcome_and_stops_where_the_state_fails() -> None:
    """A step's own error (its work, its claim) is its outcome and the others go on; from a
    state failure on, every later step gets that failure and changes nothing."""
    store = InMemoryStateStore()
    outcomes = store.transact_each(
        [
            StateStep("c", None, _adding("a", 1_000), Claim("a", "fp")),
            StateStep("c", None, _adding("b", 2_000, amount="x"), Claim("b", "fp")),
            StateStep("c", None, _adding("a", 3_000), Claim("a", "fp-other")),
            StateStep("c", None, _adding("d", 4_000), Claim("d", "fp")),
        ]
    )
    assert "a" == outcomes[0] and "d" == outcomes[3]
    assert isinstance(outcomes[1], FeatureInputError)
    assert isinstance(outcomes[2], ClaimedError) and "fp" == outcomes[2].fingerprint
    assert ["a", "d"] == store.cards["c"].ids

    failing = _DownAfter(good=1)
    outcomes = failing.transact_each(
        [StateStep("c", None, _adding(name, n * 1_000)) for n, name in enumerate("xyz")]
    )
    assert "x" == outcomes[0]
    assert outcomes[1] is outcomes[2] and isinstance(outcomes[1], FeatureStateUnavailableError)
    assert ["x"] == failing.cards["c"].ids
