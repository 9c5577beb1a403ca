"""TransactionFeed: playback order, exhaustion, looping, accelerated time and delayed labels."""

import io
import json

import pandas as pd
import pytest
from feed_frames import build_sparkov_frame, ms
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fraudops.data.schema import FEED_COLUMNS
from fraudops.feed import (
    FeedExhaustedError,
    LabelsDisabledError,
    ManualClock,
    TransactionFeed,
)

MINUTES = [f"2024-03-01 10:{m:02d}:00" for m in range(6)]


def rows_of(document: str | None) -> pd.DataFrame:
    """Decode a served document the way feed clients do."""
    assert document is not None
    return pd.read_json(io.StringIO(document), orient="split")


def served_ids(feed: TransactionFeed, n: int) -> list[str]:
    """trans_num of the next batch."""
    document = feed.next_batch(n).document
    assert document is not None
    return [row[FEED_COLUMNS.index("trans_num")] for row in json.loads(document)["data"]]


def test_rows_come_in_time_order_each_once_with_their_event_time() -> None:
    """Without speed each call serves the next rows at once, stamped with their event time."""
    feed = TransactionFeed.from_frame(build_sparkov_frame(list(reversed(MINUTES))))
    first = json.loads(feed.next_batch(2).document or "")
    assert list(FEED_COLUMNS) == first["columns"]
    assert [ms(MINUTES[0]), ms(MINUTES[1])] == [row[-1] for row in first["data"]]
    assert ["t5", "t4"] == [row[FEED_COLUMNS.index("trans_num")] for row in first["data"]]
    assert [1, 0] == [row[FEED_COLUMNS.index("is_fraud")] for row in first["data"]]
    assert ["t3", "t2", "t1"] == served_ids(feed, 3)
    assert (5, 1) == (feed.served, feed.remaining)


def test_last_batch_is_short_then_the_feed_is_exhausted() -> None:
    """At the end a batch holds what is left; afterwards every call raises FeedExhaustedError."""
    feed = TransactionFeed.from_frame(build_sparkov_frame(MINUTES[:3]))
    assert 2 == feed.next_batch(2).rows
    assert 1 == feed.next_batch(5).rows
    assert 0 == feed.remaining
    with pytest.raises(FeedExhaustedError):
        feed.next_batch(1)
    with pytest.raises(FeedExhaustedError):
        feed.next_batch(1)


def test_loop_replays_the_data_later_with_fresh_ids() -> None:
    """With loop the next lap starts one span plus one mean gap later, trans_num suffixed -1."""
    feed = TransactionFeed.from_frame(build_sparkov_frame(MINUTES[:3]), loop=True)
    rows = rows_of(feed.next_batch(5).document)
    assert ["t0", "t1", "t2", "t0-1", "t1-1"] == rows["trans_num"].tolist()
    minute = 60_000
    expected = [ms(MINUTES[0]) + i * minute for i in range(5)]
    assert expected == [int(t.value // 1_000_000) for t in rows["current_time"]]
    assert [5, 1] == [feed.served, feed.remaining]


def test_speed_serves_only_rows_that_are_due_on_the_virtual_clock() -> None:
    """At 60x one data minute passes per real second; nothing is served before it is due."""
    clock = ManualClock()
    feed = TransactionFeed.from_frame(build_sparkov_frame(MINUTES[:3]), speed=60.0, clock=clock)
    assert ["t0"] == served_ids(feed, 3)
    early = feed.next_batch(3)
    assert (None, 0, 1.0) == (early.document, early.rows, early.wait_s)
    clock.advance(0.5)
    assert 0.5 == feed.next_batch(1).wait_s
    clock.advance(0.5)
    assert ["t1"] == served_ids(feed, 3)
    clock.advance(30.0)
    assert ["t2"] == served_ids(feed, 3)
    with pytest.raises(FeedExhaustedError):
        feed.next_batch(1)


def test_speed_backlog_is_served_oldest_first_never_skipped() -> None:
    """When the client falls behind the virtual clock, due rows come oldest first, all of them."""
    clock = ManualClock()
    feed = TransactionFeed.from_frame(build_sparkov_frame(MINUTES), speed=60.0, clock=clock)
    clock.advance(4.0)
    assert ["t0", "t1"] == served_ids(feed, 2)
    assert ["t2", "t3", "t4"] == served_ids(feed, 10)
    assert feed.next_batch(1).document is None


def test_delayed_labels_are_null_in_the_stream() -> None:
    """In delayed-label mode is_fraud is null in every served row."""
    feed = TransactionFeed.from_frame(build_sparkov_frame(MINUTES), label_delay_s=3600)
    data = json.loads(feed.next_batch(6).document or "")["data"]
    assert [None] * 6 == [row[FEED_COLUMNS.index("is_fraud")] for row in data]


def test_labels_arrive_only_once_their_delay_has_passed_on_the_timeline() -> None:
    """A label appears once the latest served row is at least the delay after its event."""
    feed = TransactionFeed.from_frame(build_sparkov_frame(MINUTES), label_delay_s=120)
    feed.next_batch(2)
    assert () == feed.labels_since(None).labels
    feed.next_batch(1)
    page = feed.labels_since(None)
    assert [("t0", 0, ms(MINUTES[0]), ms(MINUTES[2]))] == [
        (label.trans_num, label.is_fraud, label.event_time, label.label_time)
        for label in page.labels
    ]
    assert ms(MINUTES[2]) == page.until
    feed.next_batch(2)
    assert ["t1", "t2"] == [label.trans_num for label in feed.labels_since(page.until).labels]
    assert ["t0", "t1", "t2"] == [label.trans_num for label in feed.labels_since(None).labels]


def test_since_filters_on_label_time() -> None:
    """Only labels with label_time strictly after `since` are returned."""
    feed = TransactionFeed.from_frame(build_sparkov_frame(MINUTES), label_delay_s=60)
    feed.next_batch(6)
    assert ["t3", "t4"] == [label.trans_num for label in feed.labels_since(ms(MINUTES[3])).labels]


def test_labels_are_only_for_served_rows_under_speed() -> None:
    """A due row that nobody fetched has no label yet, and it is not lost once it is served."""
    clock = ManualClock()
    feed = TransactionFeed.from_frame(
        build_sparkov_frame(MINUTES[:3]), speed=60.0, label_delay_s=60, clock=clock
    )
    clock.advance(100.0)
    feed.next_batch(1)
    first = feed.labels_since(None)
    assert ["t0"] == [label.trans_num for label in first.labels]
    assert ms(MINUTES[2]) - 1 == first.until
    feed.next_batch(2)
    assert ["t1", "t2"] == [label.trans_num for label in feed.labels_since(first.until).labels]


def test_label_pages_respect_the_limit_and_continue_from_until() -> None:
    """With more labels than the limit the page is cut, says so, and `until` resumes it."""
    feed = TransactionFeed.from_frame(build_sparkov_frame(MINUTES), label_delay_s=0)
    feed.next_batch(6)
    page = feed.labels_since(None, limit=2)
    assert (["t0", "t1"], True) == ([label.trans_num for label in page.labels], page.more)
    rest = feed.labels_since(page.until, limit=10)
    assert ["t2", "t3", "t4", "t5"] == [label.trans_num for label in rest.labels]
    assert not rest.more


def test_labels_queue_is_off_without_a_delay() -> None:
    """Without delayed-label mode labels_since refuses and the stream carries is_fraud."""
    feed = TransactionFeed.from_frame(build_sparkov_frame(MINUTES))
    with pytest.raises(LabelsDisabledError):
        feed.labels_since(None)


def test_invalid_settings_are_refused() -> None:
    """Non-positive speed, negative delay and n < 1 are errors."""
    frame = build_sparkov_frame(MINUTES)
    with pytest.raises(ValueError, match="speed"):
        TransactionFeed.from_frame(frame, speed=0)
    with pytest.raises(ValueError, match="label delay"):
        TransactionFeed.from_frame(frame, label_delay_s=-1)
    with pytest.raises(ValueError, match="n must be"):
        TransactionFeed.from_frame(frame).next_batch(0)


@settings(max_examples=60, deadline=None)
@example(gaps=[0, 0], steps=[(1, 0.0)], delay_s=0, loop=False)  # a tie left unserved
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=25),
    steps=st.lists(
        st.tuples(st.integers(min_value=1, max_value=3), st.floats(min_value=0, max_value=20)),
        max_size=40,
    ),
    delay_s=st.integers(min_value=0, max_value=600),
    loop=st.booleans(),
)
def test_polling_labels_from_until_gets_each_due_label_once_and_never_early(
    gaps: list[int], steps: list[tuple[int, float]], delay_s: int, loop: bool
) -> None:
    """Polling with since=until never repeats or misses a label nor returns one before its time."""
    start = pd.Timestamp("2024-01-01")
    times = [str(start + pd.Timedelta(seconds=s)) for s in pd.Series(gaps).cumsum()]
    clock = ManualClock()
    feed = TransactionFeed.from_frame(
        build_sparkov_frame(times), speed=60.0, loop=loop, label_delay_s=delay_s, clock=clock
    )
    received: list[str] = []
    served: list[str] = []
    since: int | None = None
    for n, seconds in steps:
        clock.advance(seconds)
        try:
            document = feed.next_batch(n).document
        except FeedExhaustedError:
            document = None
        if document is not None:
            served += rows_of(document)["trans_num"].astype(str).tolist()
        page = feed.labels_since(since)
        assert all(label.label_time <= feed.timeline_ms for label in page.labels)
        assert all(since is None or label.label_time > since for label in page.labels)
        received += [label.trans_num for label in page.labels]
        since = page.until
    if not loop:
        # A label is held back while an unserved row shares its label time; drain the feed.
        clock.advance(10**9)
        while feed.remaining:
            document = feed.next_batch(feed.remaining).document
            assert document is not None
            served += rows_of(document)["trans_num"].astype(str).tolist()
        received += [label.trans_num for label in feed.labels_since(since).labels]
        assert served == received
    else:
        assert served[: len(received)] == received


def test_a_document_is_pandas_split_form_with_the_data_decimals(sample_frame: pd.DataFrame) -> None:
    """The real sample served whole: `{"columns", "index", "data"}` as `to_json(orient="split")`
    writes it, each float with the data's own decimals (no binary noise such as
    41.141000000000005), missing labels as null."""
    raw = sample_frame[[c for c in FEED_COLUMNS if c in sample_frame.columns]]
    feed = TransactionFeed.from_frame(sample_frame)
    document = json.loads(feed.next_batch(len(sample_frame)).document or "")
    assert list(FEED_COLUMNS) == document["columns"]
    assert list(range(len(sample_frame))) == document["index"]
    served = pd.DataFrame(document["data"], columns=FEED_COLUMNS).set_index("trans_num")
    source = raw.set_index(raw["trans_num"].astype(str))
    for column in ("amt", "lat", "long", "merch_lat", "merch_long"):
        expected = source.loc[served.index, column].round(10).tolist()
        assert expected == served[column].tolist(), column
