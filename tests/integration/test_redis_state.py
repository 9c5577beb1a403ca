"""Feature state in the real Redis: exact round trips, parity, and scorers in separate processes."""

import multiprocessing
import random
import secrets
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudops.data.profiles import SPARKOV
from fraudops.data.readers import load_transactions
from fraudops.features.batch import batch_features
from fraudops.features.labels import NEVER_MS, label_arrival, label_known
from fraudops.features.online import EVENT_TIME_MS, OnlineFeatureEngine, records_from_frame
from fraudops.features.redis_store import LAYOUT, RedisStateStore
from fraudops.features.spec import FEATURE_GROUPS, MS_PER_DAY, FeatureSpec, fit_feature_spec
from fraudops.features.state import (
    CardState,
    Claim,
    ClaimedError,
    FeatureStateStore,
    FeatureStateUnavailableError,
    InMemoryStateStore,
    MerchantState,
    StateStep,
    StateTransition,
    T,
)
from fraudops.simulate import SimulationConfig, simulate, write_transactions

pytestmark = pytest.mark.integration

SPAWN = multiprocessing.get_context("spawn")
# Fields of the feature vector that depend on a merchant's state rather than the card's.
MERCHANT_FEATURES = ("merchant_count_", "merchant_risk_")


class Stream:
    """A time-ordered stream of online transactions with labels, and its spec."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.spec = fit_feature_spec(
            frame, SPARKOV, label_delay_ms=2 * MS_PER_DAY, groups=frozenset(FEATURE_GROUPS)
        )
        self.records = records_from_frame(frame, self.spec)
        self.labels: list[int] = frame["is_fraud"].tolist()

    def reference(self) -> tuple[np.ndarray, InMemoryStateStore]:
        """What one in-memory engine gives every transaction, fed in stream order."""
        store = InMemoryStateStore()
        engine = OnlineFeatureEngine(self.spec, store)
        rows = [
            engine.features_then_update(record, label=label)
            for record, label in zip(self.records, self.labels, strict=True)
        ]
        return np.array(rows), store


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Stream:
    """~700 simulated purchases of 24 cards at only 14 merchants, so merchants are shared."""
    path: Path = tmp_path_factory.mktemp("redis_state") / "stream.parquet"
    config = SimulationConfig(days=20, cards=24, merchants=14, fraud_rate=0.05, seed=3)
    write_transactions(simulate(config), path)
    frame = load_transactions(path, SPARKOV).frame.sort_values("event_time", kind="stable")
    return Stream(frame.reset_index(drop=True))


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test alone, cleared afterwards."""
    prefix = f"fraudops-test:{secrets.token_hex(6)}"
    yield prefix
    store = RedisStateStore.from_url(redis_url, prefix=prefix)
    store.clear()
    store.close()


@pytest.fixture
def store(redis_url: str, prefix: str) -> Iterator[RedisStateStore]:
    """An initialised Redis store under this test's prefix (writes need the mark)."""
    store = RedisStateStore.from_url(redis_url, prefix=prefix)
    store.mark_initialised()
    yield store
    store.close()


def stored_states(
    store: RedisStateStore, cards: set[str], merchants: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every given card's and merchant's stored state, as plain dicts."""

    def plain(state: CardState | MerchantState | None) -> dict[str, Any] | None:
        return state.to_dict() if state is not None else None

    return (
        {key: plain(store.get_card(key)) for key in sorted(cards)},
        {key: plain(store.get_merchant(key)) for key in sorted(merchants)},
    )


def memory_states(store: InMemoryStateStore) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every card's and merchant's state in memory, as plain dicts."""
    return (
        {key: store.cards[key].to_dict() for key in sorted(store.cards)},
        {key: store.merchants[key].to_dict() for key in sorted(store.merchants)},
    )


def bits(values: list[float]) -> list[bytes]:
    """The exact IEEE 754 bytes of each float."""
    return [struct.pack("<d", value) for value in values]


def test_states_round_trip_bit_for_bit(store: RedisStateStore) -> None:
    """Awkward doubles (tiny, huge, -0.0, 0.1 + 0.2) come back with the very same bits."""
    rng = random.Random(5)
    amounts = [0.1 + 0.2, -0.0, 5e-324, 1.7976931348623157e308 / 2**600, 1 / 3]
    amounts += [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(62)))[0] for _ in range(50)]
    card = CardState()
    for number, amount in enumerate(amounts):
        card.add(time_ms=1_700_000_000_000 + number, trans_id=f"t{number}", amount=amount)
    merchant = MerchantState()
    merchant.add(time_ms=5, trans_id="x", label=1)
    merchant.add(time_ms=5, trans_id="w", label=None)
    store.put_card("4111 1111", card)
    store.put_merchant("shop: a*b", merchant)
    back = store.get_card("4111 1111")
    assert back is not None
    for name in ("amounts", "sum1", "sum2"):
        assert bits(getattr(card, name)) == bits(getattr(back, name))
    assert card.to_dict() == back.to_dict()
    assert merchant == store.get_merchant("shop: a*b")
    assert (None, None) == (store.get_card("other"), store.get_merchant("other"))


def test_non_finite_numbers_keep_their_bits_as_in_memory(store: RedisStateStore) -> None:
    """NaN (with its payload), infinities: packed doubles store what memory would hold."""
    odd = [float("nan"), float("inf"), -float("inf"), struct.unpack("<d", b"\x01" * 8)[0]]
    odd.append(struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0])
    card = CardState(
        times=[1, 2, 3, 4, 5],
        ids=list("abcde"),
        amounts=odd,
        sum1=[0.0, *odd],
        sum2=[-0.0, *odd],
    )
    store.transact("c", None, lambda _card, _merchant: (None, card, None))
    back = store.get_card("c")
    assert back is not None
    for name in ("amounts", "sum1", "sum2"):
        assert bits(getattr(card, name)) == bits(getattr(back, name))


def test_initialised_mark_and_clear_keep_to_the_prefix(redis_url: str, prefix: str) -> None:
    """clear drops this prefix's keys and mark, not a neighbour's, even with glob characters."""
    tricky = RedisStateStore.from_url(redis_url, prefix=f"{prefix}:[ab]*")
    neighbour = RedisStateStore.from_url(redis_url, prefix=f"{prefix}:a")
    try:
        assert not tricky.initialised()
        tricky.mark_initialised()
        neighbour.mark_initialised()
        for number in range(1_234):
            tricky.put_card(f"c{number}", CardState())
        neighbour.put_card("c0", CardState())
        assert tricky.initialised()
        tricky.clear()
        assert (False, None) == (tricky.initialised(), tricky.get_card("c0"))
        assert (True, CardState()) == (neighbour.initialised(), neighbour.get_card("c0"))
    finally:
        neighbour.clear()
        tricky.close()
        neighbour.close()


def test_engine_over_redis_equals_engine_in_memory(stream: Stream, store: RedisStateStore) -> None:
    """A whole stream scored through Redis: the in-memory features and states, bit for bit."""
    expected, memory = stream.reference()
    engine = OnlineFeatureEngine(stream.spec, store)
    online = np.array(
        [
            engine.features_then_update(record, label=label)
            for record, label in zip(stream.records, stream.labels, strict=True)
        ]
    )
    np.testing.assert_array_equal(expected, online)
    assert memory_states(memory) == stored_states(store, set(memory.cards), set(memory.merchants))
    fraud = stream.records[stream.labels.index(1)]
    assert engine.add_label(fraud, is_fraud=False)
    merchant = store.get_merchant(str(fraud["merchant"]))
    assert merchant is not None
    assert fraud[EVENT_TIME_MS] not in merchant.fraud_times
    card = store.get_card(str(fraud["cc_num"]))
    assert card is not None
    assert fraud[EVENT_TIME_MS] not in card.fraud_times


def test_labels_counted_from_their_label_time_through_redis_give_the_batch_features(
    stream: Stream, store: RedisStateStore
) -> None:
    """Labels with their own times (minutes after the purchase, days after, weeks after, or
    never), each posted when it arrives: label windows end at t, and Redis, memory and the
    batch engine agree; with the delay as lag they agree too, on other values."""
    rng = np.random.default_rng(5)
    waits = rng.choice([10 * 60, 3 * 86_400, 40 * 86_400, -1], size=len(stream.frame))
    label_time = stream.frame["event_time"] + pd.to_timedelta(np.maximum(waits, 0), unit="s")
    frame = stream.frame.assign(label_time=label_time.where(waits >= 0))
    expected_by_lag = {}
    for lag_ms in (None, 2 * MS_PER_DAY):
        spec = fit_feature_spec(
            frame,
            SPARKOV,
            label_delay_ms=2 * MS_PER_DAY,
            groups=frozenset(FEATURE_GROUPS),
            label_window_lag_ms=lag_ms,
        )
        store.clear()
        store.mark_initialised()
        engines = [
            OnlineFeatureEngine(spec, InMemoryStateStore()),
            OnlineFeatureEngine(spec, store),
        ]
        arrival = label_arrival(frame, SPARKOV, label_delay_ms=spec.label_delay_ms)
        posted = sorted(
            (int(time_ms), row)
            for row, time_ms in enumerate(arrival.times_ms)
            if time_ms != NEVER_MS
        )
        records = records_from_frame(frame, spec)
        rows = []
        for record in records:
            while posted and label_known(posted[0][0], record[EVENT_TIME_MS]):
                label_time_ms, labelled = posted.pop(0)
                for engine in engines:
                    engine.add_label(
                        records[labelled],
                        is_fraud=bool(arrival.fraud[labelled]),
                        label_time_ms=label_time_ms,
                    )
            memory, redis = (engine.features_then_update(record) for engine in engines)
            np.testing.assert_array_equal(memory, redis, err_msg=record["trans_num"])
            rows.append(redis)
        expected = batch_features(frame, spec)
        np.testing.assert_allclose(expected, np.array(rows), rtol=1e-9, atol=1e-9, equal_nan=True)
        expected_by_lag[spec.label_lag_ms] = expected
    assert {0, 2 * MS_PER_DAY} == set(expected_by_lag)
    names = fit_feature_spec(
        frame, SPARKOV, label_delay_ms=0, groups=frozenset(FEATURE_GROUPS)
    ).names
    risk = names.index("merchant_risk_1d")
    assert not np.allclose(
        expected_by_lag[0][:, risk], expected_by_lag[2 * MS_PER_DAY][:, risk], equal_nan=True
    )


def busy_records(template: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Transactions of one busy card at one merchant, half an hour apart, with ties (every
    7th), and late by an hour or a day (a fifth of them)."""
    rng = random.Random(11)
    records: list[dict[str, Any]] = []
    for number in range(count):
        moment = number * 1_800_000 + rng.choice([0, 0, 0, -3_600_000, -86_400_000])
        if number % 7 == 0 and records:
            moment = records[-1][EVENT_TIME_MS] - template[EVENT_TIME_MS]  # a tie
        records.append(
            template
            | {
                "trans_num": f"e{number:05d}-{rng.randrange(100):02d}",
                "cc_num": "busy-card",
                "merchant": "busy-shop",
                "amt": round(rng.uniform(0.5, 900), 2),
                EVENT_TIME_MS: template[EVENT_TIME_MS] + moment,
            }
        )
    return records


def test_a_long_history_of_ties_late_events_and_labels_matches_memory(
    stream: Stream, store: RedisStateStore
) -> None:
    """Two months of one busy card and merchant, with ties, late events, replays and labels.

    Every feature and the final states equal the in-memory engine's bit for bit; pruned
    fronts are skipped, then written anew, so the stored columns stay near the live size.
    """
    records = busy_records(stream.records[0], 3_000)
    records += records[::97]  # replays
    memory = InMemoryStateStore()
    engines = [OnlineFeatureEngine(stream.spec, memory), OnlineFeatureEngine(stream.spec, store)]
    for number, record in enumerate(records):
        label = 1 if number % 41 == 0 else 0
        rows = [engine.features_then_update(record, label=label) for engine in engines]
        np.testing.assert_array_equal(rows[0], rows[1], err_msg=record["trans_num"])
        if number % 53 == 0:
            labelled = records[number // 2]
            assert engines[0].add_label(labelled, is_fraud=True) == engines[1].add_label(
                labelled, is_fraud=True
            )
    assert memory_states(memory) == stored_states(store, {"busy-card"}, {"busy-shop"})
    card = store.get_card("busy-card")
    assert card is not None
    for name in ("amounts", "sum1", "sum2", "hour_cos", "hour_sin"):
        assert bits(getattr(memory.cards["busy-card"], name)) == bits(getattr(card, name))
    live = 8 * len(card.times)
    stored = store.client.strlen(f"{store.prefix}:v3:card-times:busy-card")
    assert live <= stored <= live * 5 // 4 + 4_096 + 8


def one_by_one(
    engine: OnlineFeatureEngine, steps: Sequence[tuple[dict[str, Any], int | None, Claim | None]]
) -> list[Any]:
    """`features_then_update` of each step in turn: its features, or the error it raised."""
    outcomes: list[Any] = []
    for record, label, claim in steps:
        try:
            outcomes.append(engine.features_then_update(record, label=label, claim=claim))
        except ClaimedError as error:
            outcomes.append(error)
    return outcomes


def same_outcomes(expected: list[Any], got: list[Any]) -> None:
    """Equal features bit for bit, and the same refusals (error type, trans_num, fingerprint)."""
    assert len(expected) == len(got)
    for number, (one, other) in enumerate(zip(expected, got, strict=True)):
        if isinstance(one, Exception):
            assert type(one) is type(other), (number, other)
            assert vars(one) == vars(other), number
        else:
            np.testing.assert_array_equal(one, other, err_msg=str(number))


def test_transactions_sent_together_give_what_each_in_turn_gives(
    stream: Stream, store: RedisStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`features_then_update_each` over Redis, 16 transactions at a time: the stream, then a
    busy card with ties, late events and replays (claimed already: refused) all in the same
    batches. Every feature, every refusal and the final states equal those of the in-memory
    engine fed one transaction at a time; most writes went to Redis several at once."""
    records = stream.records + busy_records(stream.records[0], 400)
    labels = [*stream.labels, *([0] * 400)]
    replays = records[::23]  # in later batches
    records += replays
    labels += labels[::23]
    records[40:40] = records[30:32]  # replays in the same batch
    labels[40:40] = labels[30:32]
    steps = [
        (record, label, Claim(record["trans_num"], f"fp-{record['trans_num']}"))
        for record, label in zip(records, labels, strict=True)
    ]
    memory = InMemoryStateStore()
    expected = one_by_one(OnlineFeatureEngine(stream.spec, memory), steps)
    together: list[int] = []
    run_together = store._run_together

    def counted(calls: list[bytes]) -> Any:
        together.append(len(calls))
        return run_together(calls)

    monkeypatch.setattr(store, "_run_together", counted)
    engine = OnlineFeatureEngine(stream.spec, store)
    got = [
        outcome
        for start in range(0, len(steps), 16)
        for outcome in engine.features_then_update_each(steps[start : start + 16])
    ]

    same_outcomes(expected, got)
    assert sum(isinstance(outcome, ClaimedError) for outcome in got) == len(replays) + 2
    assert memory_states(memory) == stored_states(store, set(memory.cards), set(memory.merchants))
    written = sum(not isinstance(outcome, Exception) for outcome in got)
    assert sum(together) > written * 3 // 4, "most writes were sent together"
    assert len(together) < written / 4, "in few round trips"


def test_writes_sent_together_on_outdated_copies_are_refused_and_retried_in_order(
    stream: Stream,
    redis_url: str,
    prefix: str,
    store: RedisStateStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two replicas taking turns, 8 transactions each: each replica's kept copies are often
    outdated, so its writes are refused (with every later write of the batch on the same
    states) and retried one by one. The features are still those of one engine fed the
    stream in order, and transitions ran more often than there were transactions."""
    expected, memory = stream.reference()
    replicas = [RedisStateStore.from_url(redis_url, prefix=prefix) for _ in range(2)]
    runs = 0
    for replica in replicas:
        transition = replica._transition

        def counted(*args: Any, transition: Any = transition) -> Any:
            nonlocal runs
            runs += 1
            return transition(*args)

        monkeypatch.setattr(replica, "_transition", counted)
    engines = [OnlineFeatureEngine(stream.spec, replica) for replica in replicas]
    steps = [(r, label, None) for r, label in zip(stream.records, stream.labels, strict=True)]
    try:
        got = [
            outcome
            for number, start in enumerate(range(0, len(steps), 8))
            for outcome in engines[number % 2].features_then_update_each(steps[start : start + 8])
        ]
    finally:
        for replica in replicas:
            replica.close()
    np.testing.assert_array_equal(expected, np.array(got))
    assert memory_states(memory) == stored_states(store, set(memory.cards), set(memory.merchants))
    assert runs > len(steps), "no write was refused"


def test_writes_sent_together_stop_where_the_state_becomes_unavailable(
    store: RedisStateStore,
) -> None:
    """Without the initialised mark every step of a batch is refused, and nothing is written;
    a step refused for its claim leaves the others of its batch written."""
    store.transact("c", None, _add, claim=Claim("t1", "fp-a"))

    steps = [
        StateStep("c", None, _adding("t2", 2_000), Claim("t2", "fp")),
        StateStep("c", None, _adding("t1", 3_000), Claim("t1", "fp-b")),  # claimed already
        StateStep("c", None, _adding("t3", 4_000), Claim("t3", "fp")),
    ]
    outcomes = store.transact_each(steps)
    assert "t2" == outcomes[0] and "t3" == outcomes[2]
    assert isinstance(outcomes[1], ClaimedError) and "fp-a" == outcomes[1].fingerprint
    card = store.get_card("c")
    assert card is not None and ["t1", "t2", "t3"] == card.ids

    store.client.delete(f"{store.prefix}:v3:initialised")
    more = [
        StateStep("c", None, _adding(f"u{n}", 5_000 + n), Claim(f"u{n}", "fp")) for n in range(3)
    ]
    outcomes = store.transact_each(more)
    assert all(isinstance(one, FeatureStateUnavailableError) for one in outcomes), outcomes
    card = store.get_card("c")
    assert card is not None and ["t1", "t2", "t3"] == card.ids
    assert {"t1", "t2", "t3"} == set(store.stale_claims(older_than_seconds=0)), "no u claimed"


def test_a_redis_that_forgot_its_scripts_is_taught_them_again(store: RedisStateStore) -> None:
    """After SCRIPT FLUSH (as after a restart), writes sent together and alone still land."""

    store.transact("c", None, _adding("t0", 1_000))
    store.client.script_flush()
    steps = [
        StateStep("c", None, _adding(f"t{n}", 1_000 + n), Claim(f"t{n}", "fp")) for n in (1, 2)
    ]
    assert ["t1", "t2"] == store.transact_each(steps)
    store.client.script_flush()
    assert "t3" == store.transact("c", None, _adding("t3", 1_003), claim=Claim("t3", "fp"))
    card = store.get_card("c")
    assert card is not None and ["t0", "t1", "t2", "t3"] == card.ids


def test_an_outdated_kept_copy_is_refused_and_the_transition_reruns(
    redis_url: str, prefix: str
) -> None:
    """A process's kept copy, written over by another process, is never built on.

    The write is refused and answered with the fresh state; the transition runs again on it.
    """
    first = RedisStateStore.from_url(redis_url, prefix=prefix)
    second = RedisStateStore.from_url(redis_url, prefix=prefix)
    first.mark_initialised()
    counting = _CountingStore(first)

    def _adding(trans_id: str, time_ms: int) -> StateTransition[list[str]]:
        def add(card: CardState | None, _merchant: MerchantState | None) -> Any:
            card = card if card is not None else CardState()
            card.add(time_ms=time_ms, trans_id=trans_id, amount=1.5)
            return list(card.ids), card, None

        return add

    try:
        assert ["a"] == counting.transact("card", None, _adding("a", 1_000))  # read, then write
        assert ["a", "b"] == second.transact("card", None, _adding("b", 2_000))
        assert 1 == counting.runs
        assert ["a", "b", "c"] == counting.transact("card", None, _adding("c", 3_000))
        assert 3 == counting.runs, "the kept copy (a) was tried, then the fresh one (a, b)"
        assert ["a", "b", "c", "d"] == counting.transact("card", None, _adding("d", 4_000))
        assert 4 == counting.runs, "a kept copy still current is written at once"
    finally:
        first.close()
        second.close()


def test_writes_wait_for_the_initialised_mark_but_reads_do_not(store: RedisStateStore) -> None:
    """Without the mark (Redis lost everything, or a rebuild runs) nothing is written."""
    store.transact("c", None, lambda _card, _merchant: (None, CardState(), None))
    store.client.delete(f"{store.prefix}:v3:initialised")
    with pytest.raises(FeatureStateUnavailableError, match="not initialised"):
        store.transact("c", "m", lambda card, _merchant: (None, card, MerchantState()))
    card = store.transact("c", None, lambda card, _merchant: (card, None, None))
    assert card is not None
    assert CardState().to_dict() == card.to_dict()
    assert None is store.get_merchant("m")


def test_load_replaces_the_state_and_scoring_goes_on_as_in_memory(
    stream: Stream, redis_url: str, prefix: str, store: RedisStateStore
) -> None:
    """A rebuild's states loaded at once: stale keys go, the mark comes last, features match."""
    half = len(stream.records) // 2
    memory = InMemoryStateStore()
    engine = OnlineFeatureEngine(stream.spec, memory)
    for record, label in zip(stream.records[:half], stream.labels[:half], strict=True):
        engine.update(record, label=label)
    store.put_card("stale-card", CardState())
    neighbour = RedisStateStore.from_url(redis_url, prefix=f"{prefix}-neighbour")
    neighbour.put_card("c", CardState())
    try:
        store.load(memory.cards, memory.merchants)
        assert store.initialised()
        assert None is store.get_card("stale-card")
        assert CardState() == neighbour.get_card("c")
    finally:
        neighbour.clear()
        neighbour.close()
    assert memory_states(memory) == stored_states(store, set(memory.cards), set(memory.merchants))
    other = RedisStateStore.from_url(redis_url, prefix=prefix)  # a replica keeping nothing yet
    try:
        engines = [engine, OnlineFeatureEngine(stream.spec, store)]
        engines.append(OnlineFeatureEngine(stream.spec, other))
        rest = list(zip(stream.records[half:], stream.labels[half:], strict=True))
        for number, (record, label) in enumerate(rest):
            expected = engines[0].features_then_update(record, label=label)
            actual = engines[1 + number % 2].features_then_update(record, label=label)
            np.testing.assert_array_equal(expected, actual, err_msg=record["trans_num"])
    finally:
        other.close()
    assert memory_states(memory) == stored_states(store, set(memory.cards), set(memory.merchants))


def test_the_rebuild_lock_admits_one_process_and_is_renewed_while_held(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process is turned away for as long as the builder holds it, then gets it."""
    monkeypatch.setattr("fraudops.features.redis_store.REBUILD_LOCK_MILLISECONDS", 300)
    builder = RedisStateStore.from_url(redis_url, prefix=prefix)
    other = RedisStateStore.from_url(redis_url, prefix=prefix)
    try:
        with builder.rebuild_lock() as building:
            assert building
            time.sleep(0.8)  # well past the lock's 300 ms: only renewals keep it
            with other.rebuild_lock() as turned_away:
                assert not turned_away
        with other.rebuild_lock() as next_one:
            assert next_one
        assert not other.client.exists(f"{prefix}:v3:rebuilding")
    finally:
        builder.close()
        other.close()


class _Once:
    """A transition that, on its first run only, lets another writer commit in the middle."""

    def __init__(self, work: StateTransition[Any], meanwhile: Any) -> None:
        self.work, self.meanwhile, self.runs = work, meanwhile, 0

    def __call__(self, card: CardState | None, merchant: MerchantState | None) -> Any:
        self.runs += 1
        if self.runs == 1:
            self.meanwhile()
        return self.work(card, merchant)


def test_a_commit_between_read_and_write_makes_transact_retry(redis_url: str, prefix: str) -> None:
    """Two clients race on one card: with transact both events survive, with get/put one is lost.

    The interleaving is forced: the second client commits while the first is between its
    read and its write. transact notices (WATCH) and reruns on the fresh state.
    """
    first = RedisStateStore.from_url(redis_url, prefix=prefix)
    second = RedisStateStore.from_url(redis_url, prefix=prefix)

    def _adding(trans_id: str) -> StateTransition[None]:
        def add(card: CardState | None, _merchant: MerchantState | None) -> Any:
            card = card if card is not None else CardState()
            card.add(time_ms=1_000 if trans_id == "a" else 2_000, trans_id=trans_id, amount=1.5)
            return None, card, None

        return add

    first.mark_initialised()
    try:
        racing = _Once(_adding("a"), lambda: second.transact("card", None, _adding("b")))
        first.transact("card", None, racing)
        assert 2 == racing.runs
        assert ["a", "b"] == first.get_card("card").ids  # type: ignore[union-attr]

        first.clear()
        first.mark_initialised()
        card = first.get_card("card") or CardState()
        second.transact("card", None, _adding("b"))  # commits between the get and the put
        card.add(time_ms=1_000, trans_id="a", amount=1.5)
        first.put_card("card", card)
        assert ["a"] == first.get_card("card").ids  # type: ignore[union-attr]
    finally:
        first.close()
        second.close()


def test_a_lock_holds_writers_back_until_it_lapses_but_not_readers(
    store: RedisStateStore, prefix: str
) -> None:
    """While another transaction locks a card, a write waits for the lock; a read does not."""
    began = time.monotonic()
    store.client.set(f"{prefix}:v3:lock:card:c", "another-writer", px=150)
    assert "read" == store.transact("c", None, lambda _card, _merchant: ("read", None, None))
    assert time.monotonic() - began < 0.1
    store.transact("c", None, lambda _card, _merchant: (None, CardState(), None))
    assert time.monotonic() - began >= 0.15
    assert CardState() == store.get_card("c")


class _CountingStore:
    """A store counting how many times transitions ran (more than transactions: retries)."""

    def __init__(self, store: RedisStateStore) -> None:
        self.store, self.runs = store, 0

    def transact(
        self,
        card_key: str | None,
        merchant_key: str | None,
        work: StateTransition[T],
        *,
        claim: Claim | None = None,
    ) -> T:
        """Transact, counting each run of the transition."""

        def counted(
            card: CardState | None, merchant: MerchantState | None
        ) -> tuple[T, CardState | None, MerchantState | None]:
            self.runs += 1
            return work(card, merchant)

        return self.store.transact(card_key, merchant_key, counted, claim=claim)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _wait_for_all(store: RedisStateStore, processes: int) -> None:
    """Start together: count in, then wait until every process has."""
    name = f"{store.prefix}:test:ready"
    store.client.incr(name)
    while int(store.client.get(name) or 0) < processes:
        time.sleep(0.001)


def score_share(
    *,
    url: str,
    prefix: str,
    processes: int,
    spec: FeatureSpec,
    share: list[tuple[int, dict[str, Any], int]],
    in_turn: bool = False,
) -> tuple[dict[int, np.ndarray], int]:
    """In a child process: score (position, transaction, label) in order; features, runs.

    With `in_turn`, transaction at position i waits until position i - 1 has committed.
    """
    store = RedisStateStore.from_url(url, prefix=prefix)
    counting = _CountingStore(store)
    engine = OnlineFeatureEngine(spec, counting)
    turn = f"{prefix}:test:turn"
    _wait_for_all(store, processes)
    features = {}
    for position, record, label in share:
        while in_turn and int(store.client.get(turn) or 0) != position:
            pass
        features[position] = engine.features_then_update(record, label=label)
        if in_turn:
            store.client.set(turn, position + 1)
    store.close()
    return features, counting.runs


def run_processes(
    shares: list[list[tuple[int, dict[str, Any], int]]], **common: Any
) -> tuple[dict[int, np.ndarray], int]:
    """Run one spawned process per share, concurrently; all features by position, all runs."""
    with SPAWN.Pool(len(shares)) as pool:
        pending = [
            pool.apply_async(score_share, kwds=common | {"share": share, "processes": len(shares)})
            for share in shares
        ]
        answers = [answer.get(timeout=240) for answer in pending]
    features = {position: row for part, _ in answers for position, row in part.items()}
    return features, sum(runs for _, runs in answers)


def test_processes_scoring_their_own_cards_share_merchants_exactly(
    stream: Stream, redis_url: str, prefix: str, store: RedisStateStore
) -> None:
    """Two processes, each card's transactions in order in one of them, merchants shared.

    Guarantee: a transaction's features equal the single-process ones when every earlier
    transaction of its card and of its merchant has committed before it is scored. Here
    each card's history is complete in its process, so card features match exactly; the
    other process may be ahead or behind on a merchant, so merchant columns may differ.
    Whatever the interleaving, every card's and merchant's final state equals the
    single-process state: no update is lost on the contended merchant keys.
    """
    expected, memory = stream.reference()
    cards = sorted({str(record["cc_num"]) for record in stream.records})
    process_of = {card: number % 2 for number, card in enumerate(cards)}
    shares: list[list[tuple[int, dict[str, Any], int]]] = [[], []]
    for position, (record, label) in enumerate(zip(stream.records, stream.labels, strict=True)):
        shares[process_of[str(record["cc_num"])]].append((position, record, label))

    features, runs = run_processes(shares, url=redis_url, prefix=prefix, spec=stream.spec)

    assert memory_states(memory) == stored_states(store, set(memory.cards), set(memory.merchants))
    card_columns = [
        number
        for number, name in enumerate(stream.spec.names)
        if not name.startswith(MERCHANT_FEATURES)
    ]
    online = np.array([features[position] for position in range(len(stream.records))])
    np.testing.assert_array_equal(expected[:, card_columns], online[:, card_columns])
    assert runs >= len(stream.records)


def test_processes_taking_turns_on_shared_cards_give_single_process_features(
    stream: Stream, redis_url: str, prefix: str, store: RedisStateStore
) -> None:
    """Two processes in strict alternation over one stream: every feature as one process gives.

    Each transaction is scored only once the one before it has committed (a handshake key),
    so every card and merchant goes back and forth between the processes: a process's kept
    copy of a state is often outdated, and its write must then be refused and answered with
    the other process's last write. With no concurrency, no transition runs more than twice
    (on the kept copy, then on the fresh state), and the kept copies did save round trips.
    """
    expected, memory = stream.reference()
    shares: list[list[tuple[int, dict[str, Any], int]]] = [[], []]
    for position, (record, label) in enumerate(zip(stream.records, stream.labels, strict=True)):
        shares[position % 2].append((position, record, label))

    features, runs = run_processes(
        shares, url=redis_url, prefix=prefix, spec=stream.spec, in_turn=True
    )

    online = np.array([features[position] for position in range(len(stream.records))])
    np.testing.assert_array_equal(expected, online)
    assert len(stream.records) < runs < 2 * len(stream.records)
    assert memory_states(memory) == stored_states(store, set(memory.cards), set(memory.merchants))


def test_processes_hammering_one_card_lose_no_update(
    stream: Stream, redis_url: str, prefix: str, store: RedisStateStore
) -> None:
    """4 processes x 150 transactions of one card at one merchant, at once: all 600 are there.

    The card's events interleave in time across processes, so most arrive late and are
    inserted mid-history; the final state equals a sequential run's, sums bit-equal, and
    transitions ran more often than there were transactions (conflicts were retried, the
    most starved writers through a lock).
    """
    processes, each = 4, 150
    template = stream.records[0]
    shares = [
        [
            (
                j * processes + k,
                template
                | {
                    "trans_num": f"p{k}-{j:03d}",
                    "cc_num": "hot-card",
                    "merchant": "hot-shop",
                    "amt": round(1 + (37 * j + 11 * k) % 500 / 7, 2),
                    EVENT_TIME_MS: template[EVENT_TIME_MS] + (j * processes + k) // 2 * 1000,
                },
                0,
            )
            for j in range(each)
        ]
        for k in range(processes)
    ]
    everything = sorted(
        (record for share in shares for _, record, _ in share),
        key=lambda record: (record[EVENT_TIME_MS], record["trans_num"]),
    )
    sequential = OnlineFeatureEngine(stream.spec)
    for record in everything:
        sequential.update(record, label=0)
    reference = sequential.store
    assert isinstance(reference, InMemoryStateStore)

    _, runs = run_processes(shares, url=redis_url, prefix=prefix, spec=stream.spec)

    card = store.get_card("hot-card")
    assert card is not None
    assert [record["trans_num"] for record in everything] == card.ids
    assert reference.cards["hot-card"].to_dict() == card.to_dict()
    assert reference.merchants["hot-shop"] == store.get_merchant("hot-shop")
    assert runs > processes * each, "no conflict happened: the test proved nothing"


def test_unreachable_redis_raises_a_clear_error_without_the_password() -> None:
    """A closed port: FeatureStateUnavailableError naming the server, not the password."""
    store = RedisStateStore.from_url("redis://scorer:s3cret@127.0.0.1:1/0", prefix="x")
    try:
        assert not store.healthy()
        for call in (
            lambda: store.get_card("c"),
            lambda: store.transact("c", "m", lambda _card, _merchant: (None, None, None)),
            store.initialised,
            store.clear,
        ):
            with pytest.raises(FeatureStateUnavailableError) as raised:
                call()
            message = str(raised.value)
            assert "Redis at redis://127.0.0.1:1/0" in message
            assert "s3cret" not in message
    finally:
        store.close()


def _adding(trans_id: str, time_ms: int) -> StateTransition[str]:
    """A transition adding one event of 2.0 to the card; its result is the trans_id."""

    def add(card: CardState | None, _merchant: MerchantState | None) -> Any:
        card = card if card is not None else CardState()
        card.add(time_ms=time_ms, trans_id=trans_id, amount=2.0)
        return trans_id, card, None

    return add


def _add(card: CardState | None, merchant: MerchantState | None) -> tuple[str, Any, Any]:
    """A transition adding one event to the card."""
    state = card if card is not None else CardState()
    state.add(time_ms=1_000, trans_id="t1", amount=5.0)
    return "added", state, None


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_claimed_trans_num_cannot_change_the_state_again(
    kind: str, store: RedisStateStore
) -> None:
    """The second claim of a trans_num writes nothing and says which content claimed it."""
    target: FeatureStateStore = store if kind == "redis" else InMemoryStateStore()
    assert "added" == target.transact("card", None, _add, claim=Claim("t1", "fp-a"))

    def other(card: CardState | None, merchant: MerchantState | None) -> tuple[str, Any, Any]:
        state = card if card is not None else CardState()
        state.add(time_ms=2_000, trans_id="t2", amount=99_999.0)
        return "other", state, None

    with pytest.raises(ClaimedError) as claimed:
        target.transact("other-card", None, other, claim=Claim("t1", "fp-b"))
    assert "fp-a" == claimed.value.fingerprint
    assert target.get_card("other-card") is None
    card = target.get_card("card")
    assert card is not None and [5.0] == list(card.amounts)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_unconfirmed_claims_are_stale_until_confirmed(kind: str, store: RedisStateStore) -> None:
    """A claim never confirmed becomes stale; a confirmed one never does."""
    target: FeatureStateStore = store if kind == "redis" else InMemoryStateStore()
    target.heartbeat()
    target.transact("card", None, _add, claim=Claim("t1", "fp"))
    target.transact(None, None, lambda _c, _m: (None, None, None), claim=Claim("t2", "fp"))
    assert [] == target.stale_claims(older_than_seconds=60)
    assert {"t1", "t2"} == set(target.stale_claims(older_than_seconds=0))
    target.confirm(["t1"])
    assert ["t2"] == target.stale_claims(older_than_seconds=0)
    target.forget_claims(["t2"])
    assert [] == target.stale_claims(older_than_seconds=0)


def test_claims_of_a_process_without_heartbeat_are_stale_at_once(
    store: RedisStateStore, redis_url: str, prefix: str
) -> None:
    """Another replica's claims are in flight while it beats, stale as soon as it stops."""
    living = RedisStateStore.from_url(redis_url, prefix=prefix)
    dead = RedisStateStore.from_url(redis_url, prefix=prefix)
    try:
        living.heartbeat()
        living.transact("a", None, _add, claim=Claim("from-living", "fp"))
        dead.transact("b", None, _add, claim=Claim("from-dead", "fp"))
        assert ["from-dead"] == store.stale_claims(older_than_seconds=60)
    finally:
        living.close()
        dead.close()


def test_fraud_label_times_go_through_transactions_and_missing_ones_read_as_before(
    store: RedisStateStore,
) -> None:
    """Label times written by a transaction come back, for a merchant and a card; a state
    without its fraud_known column reads its frauds as known from their transaction's time."""
    merchant = MerchantState()
    merchant.add(time_ms=5, trans_id="x", label=1, label_time_ms=900)
    merchant.add(time_ms=5, trans_id="w", label=1, label_time_ms=700)
    store.put_merchant("m", merchant)
    card = CardState()
    card.add(time_ms=5, trans_id="x", amount=1.0, label=1, label_time_ms=900)
    store.put_card("c", card)

    def late_fraud(
        card: CardState | None, state: MerchantState | None
    ) -> tuple[None, CardState, MerchantState]:
        assert card is not None and state is not None
        state.add(time_ms=8, trans_id="y", label=1, label_time_ms=5_000)
        state.set_label(time_ms=5, trans_id="x", is_fraud=False)
        card.add(time_ms=8, trans_id="y", amount=2.0, label=1, label_time_ms=5_000)
        card.set_label(time_ms=5, trans_id="x", is_fraud=False)
        return None, card, state

    store.transact("c", "m", late_fraud)
    assert ([5, 8], [700, 5_000]) == (
        list(store.get_merchant("m").fraud_times),  # type: ignore[union-attr]
        list(store.get_merchant("m").fraud_known),  # type: ignore[union-attr]
    )
    assert ([8], [5_000]) == (
        list(store.get_card("c").fraud_times),  # type: ignore[union-attr]
        list(store.get_card("c").fraud_known),  # type: ignore[union-attr]
    )
    store.client.delete(f"{store.prefix}:{LAYOUT}:merchant-fraud_known:m")
    store.client.delete(f"{store.prefix}:{LAYOUT}:card-fraud_known:c")
    assert [5, 8] == list(store.get_merchant("m").fraud_known)  # type: ignore[union-attr]
    assert [8] == list(store.get_card("c").fraud_known)  # type: ignore[union-attr]
