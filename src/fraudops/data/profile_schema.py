"""The live transaction of a profile: its request fields, validation, and canonical form.

One `TransactionSchema` per profile, derived from the profile alone, is what every adapter
uses to read a transaction of that profile (the HTTP routes, a fast parser, the ingester),
what the OpenAPI document shows, and how a stored transaction turns back into the
profile's columns (for the online features, the state rebuild and retraining).

Sparkov's transaction is the `CanonicalTransaction` itself. Any other profile gets a model
named after it, with one field per column it names: its id, its timestamp columns (at
least one), card and merchant ids, amount, category, extra numeric and categorical
columns, coordinates and birth date where it has them, an optional label and its
never-feature columns. Its roles then map onto the canonical fields (`ProfileTransaction`).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    create_model,
    model_validator,
)

from fraudops.data.profiles import SPARKOV, DatasetProfile, TimestampSpec
from fraudops.data.schema import (
    MAX_AMOUNT,
    MAX_UNIX_SECONDS,
    CanonicalTransaction,
    Latitude,
    Longitude,
    ProfileTransaction,
)

_EPOCH = datetime(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)
# Canonical fields of the timestamp units (offset_s becomes a date-time from its origin).
_CANONICAL_TIME = {
    "datetime": "trans_date_trans_time",
    "offset_s": "trans_date_trans_time",
    "unix_s": "unix_time",
    "unix_ms": "current_time",
}


def _as_text(value: object) -> object:
    """An id sent as a number is the same id as its digits (JSON true is not an id)."""
    if isinstance(value, bool):
        msg = "must be text or a whole number, not a boolean"
        raise ValueError(msg)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


def _printable(value: str) -> str:
    if not value.isprintable():
        msg = "must not contain control characters"
        raise ValueError(msg)
    return value


Identifier = Annotated[
    str,
    BeforeValidator(_as_text),
    Field(min_length=1, max_length=128, strict=True),
    AfterValidator(_printable),
]
Name = Annotated[
    str,
    BeforeValidator(_as_text),
    Field(min_length=1, max_length=256, strict=True),
    AfterValidator(_printable),
]
Amount = Annotated[float, Field(ge=0.0, le=MAX_AMOUNT, allow_inf_nan=False)]
Number = Annotated[float, Field(allow_inf_nan=False)]
Scalar = Annotated[str | float | None, Field(union_mode="left_to_right")]
_TIME_TYPES: dict[str, Any] = {
    "datetime": datetime,
    "unix_s": Annotated[int, Field(ge=0, le=MAX_UNIX_SECONDS, strict=True)],
    "unix_ms": Annotated[int, Field(ge=0, le=MAX_UNIX_SECONDS * 1000, strict=True)],
    "offset_s": Annotated[float, Field(ge=0.0, le=MAX_UNIX_SECONDS, allow_inf_nan=False)],
}


@dataclass(frozen=True, eq=False)
class TransactionSchema:
    """How a profile's live transactions are read, documented and mapped (see module doc)."""

    profile: DatasetProfile
    request_model: type[BaseModel]
    one: TypeAdapter[CanonicalTransaction]
    many: TypeAdapter[list[CanonicalTransaction]]

    @property
    def is_canonical(self) -> bool:
        """Whether requests are canonical (Sparkov) transactions as they are."""
        return self.request_model is CanonicalTransaction

    def canonical(self, record: Mapping[str, Any]) -> CanonicalTransaction:
        """A loose record of the profile's columns (NaN as missing), validated and mapped."""
        cleaned = {
            str(key): (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in record.items()
        }
        return self.one.validate_python(cleaned)

    def stored(self, record: Mapping[str, Any]) -> CanonicalTransaction:
        """A transaction as the warehouse stored it (canonical names)."""
        model = CanonicalTransaction if self.is_canonical else ProfileTransaction
        return model.model_validate(record)

    def record(self, transaction: CanonicalTransaction) -> dict[str, Any]:
        """The transaction in the profile's own column names, its time as the first timestamp
        column (Sparkov: the canonical fields as they are)."""
        if self.is_canonical:
            return dict(transaction.__dict__)
        return profile_record(transaction, self.profile)


def profile_record(transaction: CanonicalTransaction, profile: DatasetProfile) -> dict[str, Any]:
    """A canonical transaction in `profile`'s columns (roles the profile lacks are left out)."""
    record: dict[str, Any] = dict(getattr(transaction, "extra_fields", {}))
    for canonical, column in _canonical_columns(profile).items():
        record[column] = getattr(transaction, canonical)
    first = profile.timestamps[0]
    record[first.column] = _time_value(transaction.event_time, first)
    return record


def _time_value(moment: datetime, spec: TimestampSpec) -> object:
    """An event time as the timestamp column `spec` holds it."""
    if spec.unit == "datetime":
        return moment
    if spec.unit == "offset_s":
        assert spec.origin is not None  # noqa: S101 - TimestampSpec requires it for offset_s
        return (moment - spec.origin.replace(tzinfo=None)).total_seconds()
    ms = (moment - _EPOCH) // _ONE_MS
    return ms if spec.unit == "unix_ms" else ms // 1000


@cache
def transaction_schema(profile: DatasetProfile) -> TransactionSchema:
    """The live transaction of a profile (built once per profile)."""
    if profile == SPARKOV:
        one: TypeAdapter[CanonicalTransaction] = TypeAdapter(CanonicalTransaction)
        many: TypeAdapter[list[CanonicalTransaction]] = TypeAdapter(
            Annotated[list[CanonicalTransaction], Field(min_length=1)]
        )
        return TransactionSchema(profile, CanonicalTransaction, one, many)
    model = request_model(profile)

    def mapped(request: BaseModel) -> CanonicalTransaction:
        return _canonical(request, profile)

    item = Annotated[model, AfterValidator(mapped)]  # type: ignore[valid-type]
    return TransactionSchema(
        profile,
        model,
        TypeAdapter(item),
        TypeAdapter(Annotated[list[item], Field(min_length=1)]),
    )


def request_model(profile: DatasetProfile) -> type[BaseModel]:
    """The request body of one transaction of `profile`: a field per column it names."""
    optional = set(profile.optional)
    fields: dict[str, Any] = {}

    def add(column: str | None, kind: Any, *, required: bool, about: str) -> None:
        if column is None or column in fields:
            return
        needed = required and column not in optional
        annotation = kind if needed else kind | None
        default = ... if needed else None
        fields[column] = (annotation, Field(default=default, description=about))

    add(profile.id_column, Identifier, required=True, about="The transaction's unique id.")
    one_time = len(profile.timestamps) == 1  # then required by name, else one of them
    for spec in profile.timestamps:
        add(spec.column, _TIME_TYPES[spec.unit], required=one_time, about=_time_about(spec))
    add(profile.card_id, Identifier, required=True, about="The card (or customer) id.")
    add(profile.merchant_id, Name, required=True, about="The merchant (or terminal) id.")
    add(profile.amount, Amount, required=True, about="Amount; finite, not negative.")
    add(profile.category, Name, required=True, about="Merchant category.")
    if profile.geo is not None:
        geo = profile.geo
        add(geo.lat, Latitude, required=True, about="Cardholder latitude.")
        add(geo.long, Longitude, required=True, about="Cardholder longitude.")
        add(geo.merch_lat, Latitude, required=True, about="Merchant latitude.")
        add(geo.merch_long, Longitude, required=True, about="Merchant longitude.")
    add(profile.birth_date, date, required=True, about="Cardholder's birth date.")
    for column in profile.numeric:
        add(column, Number, required=True, about="Numeric model input.")
    for column in profile.categorical:
        add(column, Name, required=True, about="Categorical model input.")
    label = Annotated[int, Field(ge=0, le=1, strict=True)]
    add(profile.label, label, required=False, about="1 if fraud, when known (never an input).")
    for column in profile.never_features:
        add(column, Scalar, required=False, about="Kept and stored, never a model input.")
    # Columns need not be Python names: each field is its column by alias.
    aliased = {
        f"f{number}": (annotation, _aliased(info, column))
        for number, (column, (annotation, info)) in enumerate(fields.items())
    }
    times = tuple(spec.column for spec in profile.timestamps)
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{_title(profile.name)}Transaction",
        __config__=ConfigDict(
            extra="forbid", str_strip_whitespace=True, frozen=True, populate_by_name=False
        ),
        __doc__=f"One transaction of the {profile.name!r} profile. {profile.description}",
        __validators__={"_has_time": model_validator(mode="after")(_needs_one_of(times))},
        **aliased,
    )


def _aliased(info: Any, column: str) -> Any:
    """A field's info with its column as the alias."""
    return Field(default=info.default, description=info.description, alias=column)


def _needs_one_of(columns: tuple[str, ...]) -> Any:
    """A check that at least one timestamp column has a value."""

    def check(model: BaseModel) -> BaseModel:
        values = model.model_dump(by_alias=True)
        if all(values.get(column) is None for column in columns):
            msg = f"one of {', '.join(columns)} is required"
            raise ValueError(msg)
        return model

    return check


def _time_about(spec: TimestampSpec) -> str:
    if spec.unit == "datetime":
        return "Event time, an ISO 8601 date-time (without an offset: UTC)."
    if spec.unit == "offset_s":
        return f"Event time in seconds since {spec.origin:%Y-%m-%d %H:%M:%S}."
    return f"Event time in epoch {'seconds' if spec.unit == 'unix_s' else 'milliseconds'}."


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def _canonical(request: BaseModel, profile: DatasetProfile) -> ProfileTransaction:
    """A validated request of `profile` in canonical names (ValueError: not a transaction)."""
    values = request.model_dump(by_alias=True)
    columns = _canonical_columns(profile)
    fields: dict[str, Any] = {
        canonical: values.get(column)
        for canonical, column in columns.items()
        if canonical not in _CANONICAL_TIME.values()
    }
    spec, value = next(
        (spec, values[spec.column])
        for spec in profile.timestamps
        if values.get(spec.column) is not None
    )
    if spec.unit == "offset_s":
        assert spec.origin is not None  # noqa: S101 - TimestampSpec requires it for offset_s
        value = spec.origin.replace(tzinfo=None) + timedelta(seconds=value)
    fields[_CANONICAL_TIME[spec.unit]] = value
    roles = {*columns.values(), *profile.timestamp_columns}
    fields["extra_fields"] = {
        column: value
        for column, value in values.items()
        if column not in roles and value is not None
    }
    named = columns | {_CANONICAL_TIME[spec.unit]: spec.column}
    return ProfileTransaction.model_validate(fields).named_after(named)


def _canonical_columns(profile: DatasetProfile) -> dict[str, str]:
    """Canonical field -> the profile's column, for every role the profile has."""
    roles: dict[str, str | None] = {
        "trans_num": profile.id_column,
        "amt": profile.amount,
        "cc_num": profile.card_id,
        "merchant": profile.merchant_id,
        "category": profile.category,
        "is_fraud": profile.label,
        "dob": profile.birth_date,
    }
    if profile.geo is not None:
        geo = profile.geo
        roles |= {
            "lat": geo.lat,
            "long": geo.long,
            "merch_lat": geo.merch_lat,
            "merch_long": geo.merch_long,
        }
    return {canonical: column for canonical, column in roles.items() if column is not None}


def example_records(profile: DatasetProfile) -> list[dict[str, Any]]:
    """Two plausible requests of `profile` (a quiet daytime purchase, a large night one):
    the service's canary and the OpenAPI example."""
    moments = (datetime(2024, 3, 5, 14, 21), datetime(2024, 3, 5, 2, 10))
    amounts = (42.10, 1_249.99)
    records = []
    for number, (moment, amount) in enumerate(zip(moments, amounts, strict=True), start=1):
        record: dict[str, Any] = {
            profile.id_column: f"canary-{number}",
            profile.amount: amount,
        }
        spec = profile.timestamps[0]
        value = _time_value(moment, spec)
        record[spec.column] = value.isoformat() if isinstance(value, datetime) else value
        if profile.card_id is not None:  # digits: what a card number column holds
            record[profile.card_id] = f"{4_000_000_000_000_000 + number}"
        for column in (profile.merchant_id, profile.category):
            if column is not None:
                record[column] = f"canary-{column.lower()}-{number}"
        if profile.geo is not None:
            geo = profile.geo
            record |= {geo.lat: 40.71, geo.long: -74.0, geo.merch_lat: 40.75, geo.merch_long: -73.9}
        if profile.birth_date is not None:
            record[profile.birth_date] = "1980-05-17"
        record |= dict.fromkeys(profile.numeric, 0.0)
        record |= dict.fromkeys(profile.categorical, "canary")
        records.append({k: v for k, v in record.items() if k not in profile.optional})
    return records
