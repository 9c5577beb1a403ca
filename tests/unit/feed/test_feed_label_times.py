"""TransactionFeed with the data's own label times: each label when it arrives, or never."""

import json

import pandas as pd
import pytest
from feed_frames import build_sparkov_frame, ms
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudops.data.schema import FEED_COLUMNS
from fraudops.feed import FeedExhaustedError, ManualClock, TransactionFeed

MINUTES = [f"2024-03-01 10:{m:02d}:00" for m in range(6)]
# t0 reviewed after 1 min (legit); t1 charged back at 10:05 as friendly fraud; t2 never.
LABEL_TIMES = ["2024-03-01 10:01:00", "2024-03-01 10:05:00", None, None, None, None]
REPORTED = [0.0, 1.0, None, None, None, None]


def labelled_frame(
    times: list[str], label_times: list[str | None], reported: list[float | None]
) -> pd.DataFrame:
    """A Sparkov-shaped frame with the contract's label_time and reported_fraud columns."""
    frame = build_sparkov_frame(times, frauds=[0] * len(times))
    return frame.assign(
        label_time=pd.to_datetime(pd.Series(label_times, dtype="object")),
        reported_fraud=pd.Series(reported, dtype="float64"),
    )


def triples(feed: TransactionFeed, since: int | None = None) -> list[tuple[str, int, int]]:
    """(trans_num, is_fraud, label_time) of the labels due after `since`."""
    return [(x.trans_num, x.is_fraud, x.label_time) for x in feed.labels_since(since).labels]


def test_labels_arrive_at_their_own_time_with_the_reported_value() -> None:
    """The stream carries no label; each one arrives at its label_time; some never arrive."""
    feed = TransactionFeed.from_frame(
        labelled_frame(MINUTES, LABEL_TIMES, REPORTED), label_times=True
    )
    data = json.loads(feed.next_batch(2).document or "")["data"]
    assert [None, None] == [row[FEED_COLUMNS.index("is_fraud")] for row in data]
    assert [("t0", 0, ms(MINUTES[1]))] == triples(feed)
    feed.next_batch(3)
    assert [("t0", 0, ms(MINUTES[1]))] == triples(feed)
    feed.next_batch(1)
    assert [("t1", 1, ms(MINUTES[5]))] == triples(feed, ms(MINUTES[1]))
    assert ["t0", "t1"] == [x[0] for x in triples(feed)]


def test_a_looped_lap_gets_its_labels_one_lap_later() -> None:
    """Looping re-stamps label times with the lap, under the lap's suffixed trans_num."""
    feed = TransactionFeed.from_frame(
        labelled_frame(MINUTES, LABEL_TIMES, REPORTED), loop=True, label_times=True
    )
    feed.next_batch(9)  # the whole first lap and t0..t2 of the second (lap of 6 minutes)
    assert ["t0", "t1", "t0-1"] == [x[0] for x in triples(feed)]
    assert ms(MINUTES[1]) + 6 * 60_000 == triples(feed)[-1][2]


def test_label_times_need_the_column_and_exclude_a_fixed_delay() -> None:
    """Without label_time, or together with a fixed delay, the feed refuses label times."""
    with pytest.raises(ValueError, match="label_time column"):
        TransactionFeed.from_frame(build_sparkov_frame(MINUTES), label_times=True)
    frame = labelled_frame(MINUTES, LABEL_TIMES, REPORTED)
    with pytest.raises(ValueError, match="not both"):
        TransactionFeed.from_frame(frame, label_times=True, label_delay_s=60)


@settings(max_examples=30, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=300),
            st.one_of(st.none(), st.integers(min_value=0, max_value=900)),
        ),
        min_size=1,
        max_size=25,
    ),
    steps=st.lists(
        st.tuples(st.integers(min_value=1, max_value=3), st.floats(min_value=0, max_value=20)),
        max_size=40,
    ),
    loop=st.booleans(),
)
def test_polling_from_until_gets_each_label_once_and_never_early(
    rows: list[tuple[int, int | None]], steps: list[tuple[int, float]], loop: bool
) -> None:
    """Polling with since=until never repeats or misses a label nor returns one early/unserved."""
    start = pd.Timestamp("2024-01-01")
    event = start + pd.to_timedelta(pd.Series([gap for gap, _ in rows]).cumsum(), unit="s")
    delay = pd.to_timedelta(pd.Series([d for _, d in rows], dtype="float64"), unit="s")
    frame = labelled_frame(
        [str(t) for t in event],
        [None if pd.isna(d) else str(t + d) for t, d in zip(event, delay, strict=True)],
        [None if pd.isna(d) else float(i % 2) for i, d in enumerate(delay)],
    )
    clock = ManualClock()
    feed = TransactionFeed.from_frame(frame, speed=60.0, loop=loop, label_times=True, clock=clock)
    served: set[str] = set()
    received: list[str] = []
    since: int | None = None
    for n, seconds in steps:
        clock.advance(seconds)
        try:
            document = feed.next_batch(n).document
        except FeedExhaustedError:
            document = None
        if document is not None:
            served |= {
                str(row[FEED_COLUMNS.index("trans_num")]) for row in json.loads(document)["data"]
            }
        page = feed.labels_since(since)
        assert all(label.label_time <= feed.timeline_ms for label in page.labels)
        assert all(since is None or label.label_time > since for label in page.labels)
        assert {label.trans_num for label in page.labels} <= served
        received += [label.trans_num for label in page.labels]
        since = page.until
    if not loop:
        clock.advance(10**9)
        while feed.remaining:
            feed.next_batch(feed.remaining)
        received += [label.trans_num for label in feed.labels_since(since).labels]
        expected = frame.loc[frame["label_time"].notna(), "trans_num"]
        assert sorted(expected) == sorted(received)
    assert len(received) == len(set(received))
