"""Dataset profiles: how a file's columns map onto the roles fraudops needs.

Built in: `sparkov` (the public Sparkov generator's files and this project's simulator),
`fdh` (the Fraud Detection Handbook's simulated data) and `ulb` (creditcard.csv). Users add
their own as TOML files, either passed by path or placed in the profiles folder.
"""

import hashlib
import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

TimestampUnit = Literal["datetime", "unix_s", "unix_ms", "offset_s"]


class ProfileError(ValueError):
    """A profile that cannot be found or does not make sense."""


class TimestampSpec(BaseModel):
    """One column that can carry the event time, and how to read it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    unit: TimestampUnit = "datetime"
    format: str | None = Field(default=None, description="strftime format for unit=datetime.")
    origin: datetime | None = Field(default=None, description="Time zero for unit=offset_s.")

    @model_validator(mode="after")
    def _offset_needs_origin(self) -> "TimestampSpec":
        if self.unit == "offset_s" and self.origin is None:
            msg = f"timestamp column {self.column!r}: unit 'offset_s' needs an origin"
            raise ValueError(msg)
        return self


class GeoColumns(BaseModel):
    """Cardholder home and merchant coordinates, where a data set has them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: str
    long: str
    merch_lat: str
    merch_long: str


class DatasetProfile(BaseModel):
    """Column roles of one data-set format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    description: str = ""
    transaction_id: str | None = Field(
        default=None, description="Unique id column; None means ids are made from row numbers."
    )
    timestamps: tuple[TimestampSpec, ...] = Field(
        min_length=1, description="Columns that can carry the time, most preferred first."
    )
    card_id: str | None = None
    merchant_id: str | None = None
    amount: str
    label: str | None = None
    category: str | None = None
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    geo: GeoColumns | None = None
    birth_date: str | None = None
    never_features: tuple[str, ...] = Field(
        default=(), description="Columns kept and stored but never used as model input."
    )
    optional: tuple[str, ...] = Field(
        default=(), description="Columns that may be absent without making the file invalid."
    )
    index_columns: str | None = Field(
        default=r"^(Unnamed: \d+(\.\d+)?|)$",
        description="Regex of index columns written by pandas, dropped on read.",
    )

    @property
    def id_column(self) -> str:
        """The transaction id column; readers add `transaction_id` from row numbers if none."""
        return self.transaction_id if self.transaction_id is not None else "transaction_id"

    @property
    def timestamp_columns(self) -> tuple[str, ...]:
        """Every column that can carry the event time."""
        return tuple(spec.column for spec in self.timestamps)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns a file must have (one timestamp column is enough)."""
        roles = [
            self.transaction_id,
            self.card_id,
            self.merchant_id,
            self.amount,
            self.label,
            self.category,
            self.birth_date,
            *self.numeric,
            *self.categorical,
        ]
        if self.geo is not None:
            roles += [self.geo.lat, self.geo.long, self.geo.merch_lat, self.geo.merch_long]
        return tuple(dict.fromkeys(c for c in roles if c is not None and c not in self.optional))

    @property
    def known_columns(self) -> frozenset[str]:
        """Every column the profile names in any role."""
        return frozenset(
            (*self.required_columns, *self.timestamp_columns, *self.never_features, *self.optional)
        )

    @property
    def digest(self) -> str:
        """A short digest of everything the profile says: two profiles read alike iff equal."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def is_index_column(self, column: str) -> bool:
        """Whether a column is a pandas index left in the file (dropped on read)."""
        return (
            self.index_columns is not None and re.fullmatch(self.index_columns, column) is not None
        )


# Who the cardholder is and the data's own bookkeeping: kept and stored, may be absent, and
# never a model feature.
_SPARKOV_DESCRIPTIVE = (
    "first",
    "last",
    "street",
    "city",
    "state",
    "zip",
    "job",
    "unix_time",
    "fraud_scenario",
)

SPARKOV = DatasetProfile(
    name="sparkov",
    description="Sparkov card transactions (Kaggle 'Credit Card Transactions Fraud Detection').",
    transaction_id="trans_num",
    timestamps=(
        TimestampSpec(column="trans_date_trans_time", unit="datetime"),
        TimestampSpec(column="current_time", unit="unix_ms"),
        TimestampSpec(column="unix_time", unit="unix_s"),
    ),
    card_id="cc_num",
    merchant_id="merchant",
    amount="amt",
    label="is_fraud",
    category="category",
    numeric=("city_pop",),
    categorical=("gender",),
    geo=GeoColumns(lat="lat", long="long", merch_lat="merch_lat", merch_long="merch_long"),
    birth_date="dob",
    never_features=_SPARKOV_DESCRIPTIVE,
    optional=_SPARKOV_DESCRIPTIVE,
)

# Time counters derived from TX_DATETIME, and the simulator's ground truth.
_FDH_BOOKKEEPING = ("TX_TIME_SECONDS", "TX_TIME_DAYS", "TX_FRAUD_SCENARIO")

FDH = DatasetProfile(
    name="fdh",
    description="Fraud Detection Handbook simulated transactions.",
    transaction_id="TRANSACTION_ID",
    timestamps=(TimestampSpec(column="TX_DATETIME", unit="datetime"),),
    card_id="CUSTOMER_ID",
    merchant_id="TERMINAL_ID",
    amount="TX_AMOUNT",
    label="TX_FRAUD",
    never_features=_FDH_BOOKKEEPING,
    optional=_FDH_BOOKKEEPING,
)

ULB = DatasetProfile(
    name="ulb",
    description="ULB creditcard.csv: PCA components V1..V28, no card or merchant id.",
    transaction_id=None,
    timestamps=(TimestampSpec(column="Time", unit="offset_s", origin=datetime(2013, 9, 1)),),
    amount="Amount",
    label="Class",
    numeric=tuple(f"V{i}" for i in range(1, 29)),
)

BUILTIN_PROFILES: dict[str, DatasetProfile] = {p.name: p for p in (SPARKOV, FDH, ULB)}


def profile_from_toml(path: Path) -> DatasetProfile:
    """Read a user profile from a TOML file (the same fields as DatasetProfile)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"cannot read profile file {path}: {exc.strerror}"
        raise ProfileError(msg) from exc
    except tomllib.TOMLDecodeError as exc:
        msg = f"profile file {path} is not valid TOML: {exc}"
        raise ProfileError(msg) from exc
    raw.setdefault("name", path.stem)
    try:
        return DatasetProfile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'profile'}: {err['msg']}"
            for err in exc.errors()
        )
        msg = f"profile file {path} is invalid: {problems}"
        raise ProfileError(msg) from exc


def load_profile(name_or_path: str, *, user_dir: Path | None = None) -> DatasetProfile:
    """Find a profile by built-in name, by user profile name, or by TOML path."""
    if name_or_path in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[name_or_path]
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml":
        return profile_from_toml(candidate)
    if user_dir is not None and (user_dir / f"{name_or_path}.toml").is_file():
        return profile_from_toml(user_dir / f"{name_or_path}.toml")
    known = sorted(BUILTIN_PROFILES) + (
        sorted(p.stem for p in user_dir.glob("*.toml")) if user_dir and user_dir.is_dir() else []
    )
    msg = f"unknown profile {name_or_path!r}; known profiles: {', '.join(known)} (or a .toml path)"
    raise ProfileError(msg)
