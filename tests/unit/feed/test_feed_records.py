"""Preparing a Sparkov-shaped frame for the feed: order, time, digits, missing columns."""

import numpy as np
import pandas as pd
import pytest
from feed_frames import build_sparkov_frame, ms

from fraudops.data.profiles import FDH, SPARKOV, ULB
from fraudops.feed import FeedError, check_profile_can_feed, prepare_feed_records


def served(frame: pd.DataFrame, column: str) -> list[object]:
    """One served column of a prepared frame, in serving order."""
    records = prepare_feed_records(frame)
    return list(records.columns[column].take(np.arange(len(records))))


def test_rows_are_ordered_by_event_time_keeping_file_order_for_ties() -> None:
    """Serving order is the time order; rows with equal times stay in file order."""
    frame = build_sparkov_frame(
        ["2024-01-01 00:00:09", "2024-01-01 00:00:01", "2024-01-01 00:00:05", "2024-01-01 00:00:01"]
    )
    records = prepare_feed_records(frame)
    assert ["t1", "t3", "t2", "t0"] == served(frame, "trans_num")
    assert [ms("2024-01-01 00:00:01")] * 2 + [
        ms("2024-01-01 00:00:05"),
        ms("2024-01-01 00:00:09"),
    ] == records.event_ms.tolist()
    assert [1.0, 1.0, 0.0, 0.0] == records.is_fraud.tolist()


def test_readers_event_time_column_is_preferred_and_aware_times_become_utc() -> None:
    """The readers' event_time wins over trans_date_trans_time; an aware time is read in UTC."""
    frame = build_sparkov_frame(["2024-01-01 00:00:00", "2024-01-01 00:00:01"])
    aware = pd.Series(["2024-06-01 12:00:00", "2024-06-01 13:00:00"], dtype="str")
    frame["event_time"] = pd.to_datetime(aware).dt.tz_localize("Europe/Paris")
    records = prepare_feed_records(frame)
    assert [ms("2024-06-01 10:00:00"), ms("2024-06-01 11:00:00")] == records.event_ms.tolist()


def test_unix_time_is_used_when_it_is_the_only_time_column() -> None:
    """Epoch seconds alone are enough to order and stamp rows."""
    frame = build_sparkov_frame(["2024-01-01 00:00:07", "2024-01-01 00:00:03"])
    frame = frame.drop(columns=["trans_date_trans_time"])
    assert [ms("2024-01-01 00:00:03"), ms("2024-01-01 00:00:07")] == (
        prepare_feed_records(frame).event_ms.tolist()
    )


def test_rows_without_a_readable_time_are_dropped() -> None:
    """A row whose time cannot be read is not served; the others are."""
    frame = build_sparkov_frame(["2024-01-01 00:00:00", "not a time", "2024-01-01 00:00:02"])
    frame = frame.drop(columns=["unix_time"])
    assert ["t0", "t2"] == served(frame, "trans_num")


def test_card_numbers_as_digit_strings_are_served_as_integers() -> None:
    """cc_num and zip text of canonical digits become int64 with the same digits."""
    frame = build_sparkov_frame(
        ["2024-01-01 00:00:00", "2024-01-01 00:00:01"],
        cc_nums=["4992346398065154184", "60416207185"],
    )
    assert [4992346398065154184, 60416207185] == served(frame, "cc_num")
    assert [62701, 62701] == served(frame, "zip")


def test_card_numbers_that_cannot_round_trip_as_integers_stay_text() -> None:
    """A leading zero or a number past int64 keeps the whole column as strings."""
    frame = build_sparkov_frame(
        ["2024-01-01 00:00:00", "2024-01-01 00:00:01"], cc_nums=["0412345678901234", "41"]
    )
    assert ["0412345678901234", "41"] == served(frame, "cc_num")
    big = build_sparkov_frame(["2024-01-01 00:00:00"], cc_nums=["9999999999999999999"])
    assert ["9999999999999999999"] == served(big, "cc_num")


def test_city_population_read_as_float_is_served_as_an_integer() -> None:
    """city_pop from the readers (float64) goes out as a JSON integer, as the public feed has it."""
    frame = build_sparkov_frame(["2024-01-01 00:00:00", "2024-01-01 00:00:01"])
    frame["city_pop"] = [8336817.0, 149.0]
    assert [8336817, 149] == served(frame, "city_pop")
    assert all(isinstance(value, np.integer) for value in served(frame, "city_pop"))


def test_birth_dates_parsed_as_datetimes_are_served_as_iso_dates() -> None:
    """A datetime dob column is served as YYYY-MM-DD text, as the public feed sends it."""
    frame = build_sparkov_frame(["2024-01-01 00:00:00"])
    frame["dob"] = pd.to_datetime(frame["dob"])
    assert ["1980-02-29"] == served(frame, "dob")


def test_absent_optional_identity_columns_are_served_as_null() -> None:
    """first, last, street, city, state, zip and job may be missing; they are served as null."""
    frame = build_sparkov_frame(["2024-01-01 00:00:00"]).drop(columns=["first", "job"])
    assert [None] == served(frame, "first")
    assert [None] == served(frame, "job")


def test_missing_required_sparkov_column_is_a_clear_error() -> None:
    """Without merchant or is_fraud the frame cannot be served, and the error names them."""
    frame = build_sparkov_frame(["2024-01-01 00:00:00"]).drop(columns=["merchant", "is_fraud"])
    with pytest.raises(FeedError, match="missing Sparkov column\\(s\\) merchant, is_fraud"):
        prepare_feed_records(frame)


def test_empty_frame_is_refused() -> None:
    """An empty data set has nothing to feed."""
    with pytest.raises(FeedError, match="no rows"):
        prepare_feed_records(build_sparkov_frame([]))


def test_only_sparkov_shaped_profiles_can_feed() -> None:
    """The sparkov profile is accepted; fdh and ulb are refused naming the profile."""
    check_profile_can_feed(SPARKOV)
    for profile in (FDH, ULB):
        with pytest.raises(FeedError, match=f"profile '{profile.name}' cannot feed"):
            check_profile_can_feed(profile)
