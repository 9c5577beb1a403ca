"""The live transaction of a profile: its fields, its precise errors, its canonical form."""

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fraudops.data.personal import MASKED_FIELDS, PersonalData
from fraudops.data.profile_schema import example_records, transaction_schema
from fraudops.data.profiles import FDH, SPARKOV, ULB, profile_from_toml
from fraudops.data.schema import CanonicalTransaction
from profile_frames import USER_PROFILE_TOML

FDH_REQUEST: dict[str, Any] = {
    "TRANSACTION_ID": 17,
    "TX_DATETIME": "2018-04-01T00:00:31",
    "CUSTOMER_ID": 5962,
    "TERMINAL_ID": 3156,
    "TX_AMOUNT": 57.16,
    "TX_TIME_SECONDS": 31,
}
ULB_REQUEST: dict[str, Any] = {"transaction_id": "u1", "Time": 406.0, "Amount": 2.5} | {
    f"V{i}": i / 10 for i in range(1, 29)
}


def problems(error: pytest.ExceptionInfo[ValidationError]) -> dict[tuple[Any, ...], str]:
    """Each problem's location and message."""
    return {tuple(item["loc"]): item["msg"] for item in error.value.errors()}


def test_an_fdh_request_maps_onto_canonical_roles_and_back() -> None:
    """Ids as text, the customer as the card, the terminal as the merchant, extras kept."""
    schema = transaction_schema(FDH)
    transaction = schema.canonical(FDH_REQUEST)
    assert ("17", "5962", "3156", 57.16) == (
        transaction.trans_num,
        transaction.cc_num,
        transaction.merchant,
        transaction.amt,
    )
    assert datetime(2018, 4, 1, 0, 0, 31) == transaction.event_time
    assert {
        "TRANSACTION_ID": "17",
        "TX_DATETIME": datetime(2018, 4, 1, 0, 0, 31),
        "CUSTOMER_ID": "5962",
        "TERMINAL_ID": "3156",
        "TX_AMOUNT": 57.16,
        "TX_FRAUD": None,
        "TX_TIME_SECONDS": 31.0,
    } == schema.record(transaction)


def test_a_ulb_time_counts_from_the_profile_origin() -> None:
    """Time is seconds since 2013-09-01; no card, merchant or category; V columns kept."""
    transaction = transaction_schema(ULB).canonical(ULB_REQUEST)
    assert datetime(2013, 9, 1, 0, 6, 46) == transaction.event_time
    assert (None, None, None) == (transaction.cc_num, transaction.merchant, transaction.category)
    assert 0.1 == transaction_schema(ULB).record(transaction)["V1"]
    assert 406.0 == transaction_schema(ULB).record(transaction)["Time"]


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (
            {"V3": "x"},
            ("V3",),
            "Input should be a valid number, unable to parse string as a number",
        ),
        ({"V4": float("inf")}, ("V4",), "Input should be a finite number"),
        ({"Amount": -1}, ("Amount",), "Input should be greater than or equal to 0"),
        ({"Time": None}, ("Time",), "Input should be a valid number"),
        ({"card": 1}, ("card",), "Extra inputs are not permitted"),
        (
            {"transaction_id": True},
            ("transaction_id",),
            "Value error, must be text or a whole number, not a boolean",
        ),
        (
            {"transaction_id": "a\nb"},
            ("transaction_id",),
            "Value error, must not contain control characters",
        ),
    ],
)
def test_a_bad_ulb_field_is_named_with_its_problem(
    change: dict[str, Any], where: tuple[str, ...], message: str
) -> None:
    """Each invalid value is reported at its own field, in words."""
    with pytest.raises(ValidationError) as error:
        transaction_schema(ULB).canonical(ULB_REQUEST | change)
    assert message == problems(error)[where]


def test_a_missing_ulb_field_is_named() -> None:
    """A required column left out is reported as required, by name."""
    request = {k: v for k, v in ULB_REQUEST.items() if k != "V28"}
    with pytest.raises(ValidationError) as error:
        transaction_schema(ULB).canonical(request)
    assert {("V28",): "Field required"} == problems(error)


def test_sparkov_reads_the_canonical_transaction_itself() -> None:
    """The built-in Sparkov profile keeps its contract: the canonical model, as it is."""
    schema = transaction_schema(SPARKOV)
    assert schema.is_canonical
    assert CanonicalTransaction is schema.request_model


def test_a_user_profile_with_any_column_names_is_served(tmp_path: Path) -> None:
    """Columns that are not Python names, all roles mapped; personal roles end up masked."""
    path = tmp_path / "acquirer.toml"
    path.write_text(USER_PROFILE_TOML, encoding="utf-8")
    profile = profile_from_toml(path)
    schema = transaction_schema(profile)
    fields = schema.request_model.model_json_schema()
    assert {"tx id", "amount eur", "pan_token", "mid", "mcc", "ts", "holder_dob"} <= set(
        fields["required"]
    )
    assert "model_score" not in fields["required"]
    request = example_records(profile)[0] | {"channel": "web", "chargeback": 0}
    transaction = schema.canonical(request)
    assert ("canary-mcc-1", "web", "1980-05-17") == (
        transaction.category,
        transaction.extra_fields["channel"],
        str(transaction.dob),
    )
    assert request["ts"] == transaction.event_time_ms
    protected = PersonalData(b"k" * 32).protect(transaction)
    stored = protected.transaction.model_dump(mode="json", exclude_none=True)
    assert {"cc_num", "dob", "lat", "long"} <= set(stored) & set(MASKED_FIELDS)
    assert str(request["pan_token"])[-4:] == protected.card_last4
    with pytest.raises(ValidationError) as error:
        schema.canonical(request | {"home_lat": 91})
    assert "Input should be less than or equal to 90" == problems(error)[("home_lat",)]


def test_every_built_in_profile_has_valid_examples() -> None:
    """The canary and OpenAPI examples of each profile pass its own validation."""
    for profile in (FDH, ULB):
        schema = transaction_schema(profile)
        assert 2 == len([schema.canonical(raw) for raw in example_records(profile)])
