"""Each built-in profile, and a user TOML profile, maps a frame onto typed columns and a time."""

from pathlib import Path

import pandas as pd
import pytest

from fraudops.data.profiles import FDH, SPARKOV, ULB, ProfileError, load_profile
from fraudops.data.validation import check_frame


def test_sparkov_frame_maps_to_typed_columns(sparkov_frame: pd.DataFrame) -> None:
    """Sparkov text rows become float amounts/coordinates, int8 labels, text ids and event times."""
    frame = check_frame(sparkov_frame, SPARKOV).clean_frame()

    assert [*sparkov_frame.columns, "event_time"] == list(frame.columns)
    assert "float64" == frame["amt"].dtype
    assert "float64" == frame["lat"].dtype
    assert "float64" == frame["city_pop"].dtype
    assert "int8" == frame["is_fraud"].dtype
    assert "datetime64[ns]" == frame["event_time"].dtype
    assert "datetime64[ns]" == frame["dob"].dtype
    assert ["2703186189652095", "630423337322", "4613314721966"] == frame["cc_num"].tolist()
    assert ["28654", "01160", "83252"] == frame["zip"].tolist()
    assert [4.97, 107.23, 220.11] == frame["amt"].tolist()
    assert [0, 0, 1] == frame["is_fraud"].tolist()
    assert pd.Timestamp("2019-01-01 00:00:44") == frame["event_time"].iloc[1]
    assert pd.Timestamp("1978-06-21") == frame["dob"].iloc[1]


def test_sparkov_numbers_become_text_ids(sparkov_typed_frame: pd.DataFrame) -> None:
    """A frame with integer card numbers still yields them as text, digit for digit."""
    frame = check_frame(sparkov_typed_frame, SPARKOV).clean_frame()

    assert ["2703186189652095", "630423337322", "4613314721966"] == frame["cc_num"].tolist()
    assert "1325376018" == frame["unix_time"].iloc[0]


def test_sparkov_falls_back_to_unix_time(sparkov_frame: pd.DataFrame) -> None:
    """Without trans_date_trans_time, the event time comes from unix_time (epoch seconds)."""
    frame = check_frame(sparkov_frame.drop(columns="trans_date_trans_time"), SPARKOV)

    assert pd.Timestamp("2012-01-01 00:00:18") == frame.clean_frame()["event_time"].iloc[0]


def test_sparkov_reads_feed_current_time_in_milliseconds(sparkov_frame: pd.DataFrame) -> None:
    """The live feed's current_time (epoch ms) is preferred over unix_time and keeps its millis."""
    feed = sparkov_frame.drop(columns="trans_date_trans_time")
    feed["current_time"] = ["1700000000123", "1700000001000", "1700000002000"]

    frame = check_frame(feed, SPARKOV).clean_frame()

    assert pd.Timestamp("2023-11-14 22:13:20.123") == frame["event_time"].iloc[0]


def test_fdh_frame_maps_with_scenario_kept_as_text(fdh_frame: pd.DataFrame) -> None:
    """FDH ids become text, TX_FRAUD int8, and TX_FRAUD_SCENARIO is kept without a warning."""
    check = check_frame(fdh_frame, FDH)
    frame = check.clean_frame()

    assert () == check.issues
    assert ["0", "1", "2"] == frame["TRANSACTION_ID"].tolist()
    assert ["596", "4961", "2"] == frame["CUSTOMER_ID"].tolist()
    assert ["0", "0", "1"] == frame["TX_FRAUD_SCENARIO"].tolist()
    assert "int8" == frame["TX_FRAUD"].dtype
    assert pd.Timestamp("2018-04-01 00:07:56") == frame["event_time"].iloc[2]


def test_ulb_frame_gets_row_number_ids_and_offset_times(ulb_frame: pd.DataFrame) -> None:
    """ULB has no id column: ids are 1-based row numbers; Time is seconds after the origin."""
    frame = check_frame(ulb_frame, ULB).clean_frame()

    assert "transaction_id" == frame.columns[0]
    assert ["1", "2", "3"] == frame["transaction_id"].tolist()
    assert pd.Timestamp("2013-09-01 00:06:46") == frame["event_time"].iloc[2]
    assert "float64" == frame["V28"].dtype
    assert [0, 0, 1] == frame["Class"].tolist()


def test_user_toml_profile_loads_and_maps(tmp_path: Path) -> None:
    """A user profile found by name in the profiles folder maps its own column names."""
    (tmp_path / "shop.toml").write_text(
        'transaction_id = "order"\n'
        'card_id = "card"\n'
        'amount = "total"\n'
        'label = "chargeback"\n'
        "[[timestamps]]\n"
        'column = "paid_at"\n'
        'unit = "datetime"\n'
        'format = "%d/%m/%Y %H:%M"\n',
        encoding="utf-8",
    )
    profile = load_profile("shop", user_dir=tmp_path)
    rows = pd.DataFrame(
        {
            "order": ["A1", "A2"],
            "card": ["0042", "0043"],
            "total": ["10.5", "3"],
            "chargeback": ["0", "1"],
            "paid_at": ["31/01/2024 09:30", "01/02/2024 18:05"],
        }
    )

    frame = check_frame(rows, profile).clean_frame()

    assert "shop" == profile.name
    assert ["0042", "0043"] == frame["card"].tolist()
    assert [10.5, 3.0] == frame["total"].tolist()
    assert pd.Timestamp("2024-02-01 18:05") == frame["event_time"].iloc[1]


def test_broken_toml_profile_names_the_field(tmp_path: Path) -> None:
    """A profile whose offset timestamp has no origin is refused, naming the field."""
    path = tmp_path / "broken.toml"
    path.write_text('amount = "amt"\n[[timestamps]]\ncolumn = "t"\nunit = "offset_s"\n')

    with pytest.raises(ProfileError, match=r"timestamps\.0.*offset_s' needs an origin"):
        load_profile(str(path))


def test_toml_profile_missing_amount_names_the_field(tmp_path: Path) -> None:
    """A profile without the required amount role is refused, naming `amount`."""
    path = tmp_path / "noamount.toml"
    path.write_text('[[timestamps]]\ncolumn = "t"\n')

    with pytest.raises(ProfileError, match=r"invalid: amount: Field required"):
        load_profile(str(path))
