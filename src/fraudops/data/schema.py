"""The canonical card transaction (the public Sparkov fields) and its column orders."""

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

# Column order of the public Sparkov files, less their index columns.
SPARKOV_COLUMNS: tuple[str, ...] = (
    "trans_date_trans_time",
    "cc_num",
    "merchant",
    "category",
    "amt",
    "first",
    "last",
    "gender",
    "street",
    "city",
    "state",
    "zip",
    "lat",
    "long",
    "city_pop",
    "job",
    "dob",
    "trans_num",
    "unix_time",
    "merch_lat",
    "merch_long",
    "is_fraud",
)

# Column order of one live-feed record (the public real-time payments API): the Sparkov
# fields less their two timestamps, then current_time in epoch milliseconds.
FEED_COLUMNS: tuple[str, ...] = (
    *(c for c in SPARKOV_COLUMNS if c not in ("trans_date_trans_time", "unix_time")),
    "current_time",
)

# Merchant categories of the Sparkov generator; the simulator uses exactly these.
SPARKOV_CATEGORIES: tuple[str, ...] = (
    "entertainment",
    "food_dining",
    "gas_transport",
    "grocery_net",
    "grocery_pos",
    "health_fitness",
    "home",
    "kids_pets",
    "misc_net",
    "misc_pos",
    "personal_care",
    "shopping_net",
    "shopping_pos",
    "travel",
)

# Fields that identify a person or card; stored, never used as model features.
IDENTIFYING_FIELDS: frozenset[str] = frozenset(
    {"trans_num", "cc_num", "first", "last", "street", "zip", "merchant", "job"}
)

_EPOCH = datetime(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)
# Epoch bounds of representable date-times (years 1 to 9999 are datetime's own limits).
MAX_UNIX_SECONDS = 253_402_300_799
MAX_AMOUNT = 1e9
MAX_CARD_NUMBER = 10**19 - 1
MAX_CARD_DIGITS = 19
# A card id as the warehouse stores it (data.personal): the card number's keyed hash.
_CARD_ID = re.compile(r"h1:[0-9a-f]{32}")
_EARLIEST = datetime(1970, 1, 1)

Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]


def refuse_nul(value: object) -> object:
    """A text field's value, refused if it holds NUL (PostgreSQL text and JSONB cannot)."""
    if isinstance(value, str) and "\x00" in value:
        msg = "must not contain NUL characters"
        raise ValueError(msg)
    return value


def _epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of a date-time (naive read as UTC), refused before 1970."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    ms = (aware - datetime(1970, 1, 1, tzinfo=UTC)) // _ONE_MS
    if ms < 0:
        msg = "must be on or after 1970-01-01"
        raise ValueError(msg)
    return ms


def _joined_date_parts(data: dict[str, Any]) -> dict[str, Any]:
    """A record whose time came as `trans_date` + `trans_time`, as one trans_date_trans_time."""
    if "trans_date" not in data and "trans_time" not in data:
        return data
    record = dict(data)
    day, clock = record.pop("trans_date", None), record.pop("trans_time", None)
    if day is None or clock is None:
        msg = "trans_date and trans_time go together (a date YYYY-MM-DD, a time HH:MM:SS)"
        raise ValueError(msg)
    try:
        joined = datetime.combine(date.fromisoformat(str(day)), time.fromisoformat(str(clock)))
    except ValueError:
        msg = f"trans_date {day!r} and trans_time {clock!r} must be YYYY-MM-DD and HH:MM:SS"
        raise ValueError(msg) from None
    if record.get("trans_date_trans_time") is not None:
        msg = "give trans_date_trans_time or trans_date + trans_time, not both"
        raise ValueError(msg)
    record["trans_date_trans_time"] = joined.isoformat(sep=" ")
    return record


def _documents_date_parts(schema: dict[str, Any]) -> None:
    """Document the accepted trans_date + trans_time pair (folded into trans_date_trans_time)."""
    schema.setdefault("properties", {}).update(
        {
            "trans_date": {
                "type": "string",
                "format": "date",
                "description": "With trans_time: the transaction's date, in place of "
                "trans_date_trans_time.",
            },
            "trans_time": {
                "type": "string",
                "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$",
                "description": "With trans_date: the time of day, HH:MM:SS.",
            },
        }
    )


class CanonicalTransaction(BaseModel):
    """One card transaction in Sparkov form; the timestamp may come in any of four ways.

    `trans_date_trans_time` (naive local date-time), `trans_date` + `trans_time` (its date and
    time of day apart, joined into it), `unix_time` (epoch seconds) or `current_time` (epoch
    milliseconds, as the live feed sends it, or an ISO 8601 date-time, as pandas writes the
    feed's frame back). At least one is required; `event_time` resolves them in the order
    trans_date_trans_time, current_time, unix_time.
    """

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        frozen=True,
        json_schema_extra=_documents_date_parts,
    )

    trans_num: str = Field(min_length=1, max_length=128)
    cc_num: Annotated[int, Field(ge=0, le=MAX_CARD_NUMBER)] | Annotated[str, Field(max_length=64)]
    merchant: str = Field(min_length=1, max_length=256)
    category: str = Field(min_length=1, max_length=64)
    amt: float = Field(
        ge=0.0, le=MAX_AMOUNT, allow_inf_nan=False, description="Amount; finite, not negative."
    )
    first: str | None = Field(default=None, max_length=256)
    last: str | None = Field(default=None, max_length=256)
    gender: str | None = Field(default=None, max_length=16)
    street: str | None = Field(default=None, max_length=256)
    city: str | None = Field(default=None, max_length=256)
    state: str | None = Field(default=None, max_length=16)
    zip: (
        Annotated[int, Field(ge=0, le=MAX_CARD_NUMBER)]
        | Annotated[str, Field(max_length=16)]
        | None
    ) = None
    lat: Latitude | None = None
    long: Longitude | None = None
    city_pop: int | None = Field(default=None, ge=0, le=100_000_000)
    job: str | None = Field(default=None, max_length=256)
    dob: date | None = None
    merch_lat: Latitude | None = None
    merch_long: Longitude | None = None
    trans_date_trans_time: datetime | None = None
    unix_time: int | None = Field(default=None, ge=0, le=MAX_UNIX_SECONDS)
    current_time: int | None = Field(
        default=None,
        ge=0,
        le=MAX_UNIX_SECONDS * 1000,
        description="Epoch milliseconds, or an ISO 8601 date-time (without an offset: UTC), "
        "kept as epoch milliseconds.",
    )
    is_fraud: int | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _date_parts(cls, data: Any) -> Any:
        return _joined_date_parts(data) if isinstance(data, dict) else data

    @field_validator("current_time", mode="before", json_schema_input_type=int | datetime | None)
    @classmethod
    def _current_time_as_epoch_ms(cls, value: object) -> object:
        # pandas writes a frame's datetime column back as ISO text (its future default) or
        # epoch ms: both mean the same instant.
        if isinstance(value, str) and not value.strip().isdigit():
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                msg = "must be epoch milliseconds or an ISO 8601 date-time"
                raise ValueError(msg) from None
        if isinstance(value, datetime):
            return _epoch_ms(value)
        return value

    @field_validator("cc_num", "zip", "city_pop", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        # JSON true is not a number: pydantic would read it as 1.
        if isinstance(value, bool):
            msg = "must be a number or digits, not a boolean"
            raise ValueError(msg)
        return value

    @field_validator("cc_num")
    @classmethod
    def _card_number(cls, value: int | str) -> int | str:
        if isinstance(value, int) or _CARD_ID.fullmatch(value):
            return value
        digits = value.replace(" ", "").replace("-", "")
        if not digits.isascii() or not digits.isdigit() or len(digits) > MAX_CARD_DIGITS:
            msg = f"must be the card number's digits (at most {MAX_CARD_DIGITS})"
            raise ValueError(msg)
        return digits

    @field_validator("zip")
    @classmethod
    def _digits_as_text(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, str) and not value:
            msg = "must not be empty"
            raise ValueError(msg)
        return value

    @field_validator("trans_num")
    @classmethod
    def _printable_id(cls, value: str) -> str:
        if not value.isprintable():
            msg = "must not contain control characters"
            raise ValueError(msg)
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: object) -> object:
        return refuse_nul(value)

    @field_validator("trans_date_trans_time", mode="after")
    @classmethod
    def _after_epoch(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.replace(tzinfo=None) < _EARLIEST:
            msg = "must be on or after 1970-01-01"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _has_timestamp(self) -> Self:
        if (
            self.trans_date_trans_time is None
            and self.unix_time is None
            and self.current_time is None
        ):
            msg = "one of trans_date_trans_time, unix_time or current_time is required"
            raise ValueError(msg)
        if self.dob is not None and self.dob > self.event_time.date():
            msg = f"dob {self.dob} is after the transaction ({self.event_time:%Y-%m-%d})"
            raise ValueError(msg)
        return self

    def field_name(self, field: str) -> str:
        """The name the sender gave a canonical field (a profile's own column; here itself)."""
        return field

    @property
    def time_field(self) -> str:
        """The field the event time was read from (the first of them the order prefers)."""
        if self.trans_date_trans_time is not None:
            return "trans_date_trans_time"
        return "current_time" if self.current_time is not None else "unix_time"

    @property
    def event_time_ms(self) -> int:
        """Epoch milliseconds of the transaction (naive times read as UTC), as profiles read it.

        Preference: trans_date_trans_time, then current_time, then unix_time (the order of
        the sparkov profile's timestamps, so the service and the batch engine agree).
        """
        if self.trans_date_trans_time is not None:
            # A wall-clock time: an offset, if any, is dropped as the file readers drop it.
            return (self.trans_date_trans_time.replace(tzinfo=None) - _EPOCH) // _ONE_MS
        if self.current_time is not None:
            return self.current_time
        assert self.unix_time is not None  # noqa: S101 - guaranteed by _has_timestamp
        return self.unix_time * 1000

    @property
    def event_time(self) -> datetime:
        """The transaction time as a naive UTC date-time, whichever field carried it."""
        return _EPOCH + timedelta(milliseconds=self.event_time_ms)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "CanonicalTransaction":
        """Build from a loose record, turning NaN (pandas' missing value) into None."""
        cleaned = {
            key: (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in record.items()
        }
        return cls.model_validate(cleaned)


class ProfileTransaction(CanonicalTransaction):
    """A transaction of any profile in canonical names: what the service stores and keys.

    The roles a profile has go to their canonical fields (its card id to `cc_num`, its
    merchant id to `merchant`, ...); a role it lacks stays None, and its columns without a
    canonical role (ULB's V1..V28, a TOML profile's extras) are kept in `extra_fields` under
    their own names. A Sparkov transaction is one with every role and no extras.
    """

    # A profile without cards, merchants or categories (ulb) has none of them.
    cc_num: str | int | None = Field(default=None, max_length=64)  # type: ignore[assignment]
    merchant: str | None = Field(default=None, min_length=1, max_length=256)  # type: ignore[assignment]
    category: str | None = Field(default=None, min_length=1, max_length=64)  # type: ignore[assignment]
    extra_fields: dict[str, float | str | None] = Field(
        default_factory=dict, description="The profile's columns without a canonical role."
    )
    # Canonical field -> the profile's column it came from, for problems the sender reads.
    _columns: dict[str, str] = PrivateAttr(default_factory=dict)

    def field_name(self, field: str) -> str:
        """The profile's column of a canonical field (the field itself if none is known)."""
        return self._columns.get(field, field)

    def named_after(self, columns: dict[str, str]) -> Self:
        """This transaction, its problems naming the profile's columns (canonical -> column)."""
        self._columns = dict(columns)
        return self

    @field_validator("cc_num")
    @classmethod
    def _card_number(cls, value: int | str | None) -> int | str | None:  # type: ignore[override]
        # Any profile's card id: digits, a stored card id, or an opaque customer id.
        if isinstance(value, str) and (not value or not value.isprintable()):
            msg = "must be printable, non-empty text"
            raise ValueError(msg)
        return value


def stored_transaction(record: dict[str, Any]) -> CanonicalTransaction:
    """A loose record in canonical names, of any profile (NaN as missing): Sparkov's as a
    CanonicalTransaction, another profile's (a role missing, or extra fields) as a
    ProfileTransaction."""
    cleaned = {
        key: (None if isinstance(value, float) and math.isnan(value) else value)
        for key, value in record.items()
    }
    sparkov = all(cleaned.get(role) is not None for role in ("cc_num", "merchant", "category"))
    if sparkov and "extra_fields" not in cleaned:
        return CanonicalTransaction.model_validate(cleaned)
    return ProfileTransaction.model_validate(cleaned)
