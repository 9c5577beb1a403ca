"""The canonical transaction accepts the three timestamp forms and names bad fields."""

from datetime import datetime

import pytest
from pydantic import ValidationError

from fraudops.data.schema import FEED_COLUMNS, SPARKOV_COLUMNS, CanonicalTransaction

BASE = {
    "trans_num": "edd18a9b887dda3f74c4b075c934dc34",
    "cc_num": 4377338765909719,
    "merchant": "fraud_Heathcote LLC",
    "category": "shopping_net",
    "amt": 1104.91,
    "lat": 36.115,
    "long": -84.0438,
    "merch_lat": 37.015648,
    "merch_long": -84.488588,
}


def _errors(record: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        CanonicalTransaction.model_validate(record)
    return {".".join(str(p) for p in e["loc"]) or "__root__": e["msg"] for e in info.value.errors()}


def test_date_time_string_is_the_event_time() -> None:
    """A Sparkov date-time string is used as it is."""
    tx = CanonicalTransaction.model_validate(
        {**BASE, "trans_date_trans_time": "2019-01-15 22:24:12"}
    )
    assert datetime(2019, 1, 15, 22, 24, 12) == tx.event_time


def test_unix_seconds_and_feed_milliseconds_give_the_same_time() -> None:
    """unix_time (seconds) and current_time (milliseconds) resolve to the same instant."""
    by_seconds = CanonicalTransaction.model_validate({**BASE, "unix_time": 1_547_591_052})
    by_millis = CanonicalTransaction.model_validate({**BASE, "current_time": 1_547_591_052_000})
    assert datetime(2019, 1, 15, 22, 24, 12) == by_seconds.event_time == by_millis.event_time


def test_date_time_wins_over_the_epoch_fields() -> None:
    """With several timestamp fields the Sparkov date-time string is preferred."""
    tx = CanonicalTransaction.model_validate(
        {**BASE, "trans_date_trans_time": "2019-01-15 22:24:12", "unix_time": 0}
    )
    assert datetime(2019, 1, 15, 22, 24, 12) == tx.event_time


def test_missing_timestamp_is_refused() -> None:
    """A transaction with no timestamp field at all is refused with a message saying which."""
    errors = _errors(BASE)
    assert "one of trans_date_trans_time, unix_time or current_time is required" in next(
        iter(errors.values())
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amt", -1.0),
        ("amt", float("inf")),
        ("amt", float("nan")),
        ("lat", 91.0),
        ("long", -181.0),
        ("merch_lat", float("nan")),
        ("is_fraud", 2),
        ("trans_num", ""),
    ],
)
def test_bad_values_name_their_field(field: str, value: object) -> None:
    """Negative or non-finite amounts, impossible coordinates and bad labels name the field."""
    errors = _errors({**BASE, "unix_time": 1, field: value})
    assert [field] == list(errors)


def test_unknown_fields_are_named() -> None:
    """A field the schema does not know is refused by name rather than silently ignored."""
    errors = _errors({**BASE, "unix_time": 1, "cvv": "123"})
    assert ["cvv"] == list(errors)


def test_nan_from_pandas_means_missing() -> None:
    """from_record turns pandas' NaN placeholders into missing optional values."""
    tx = CanonicalTransaction.from_record({**BASE, "unix_time": 1, "city_pop": float("nan")})
    assert tx.city_pop is None


def test_feed_columns_are_sparkov_columns_with_current_time() -> None:
    """The feed's columns are the Sparkov fields less its two timestamps, plus current_time."""
    expected = set(SPARKOV_COLUMNS) - {"trans_date_trans_time", "unix_time"} | {"current_time"}
    assert expected == set(FEED_COLUMNS)
    assert "current_time" == FEED_COLUMNS[-1]
