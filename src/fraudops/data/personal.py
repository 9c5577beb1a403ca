"""Personal data: card numbers kept as keyed hashes, identifying fields left out, the rest sealed.

What a transaction becomes before anything stores it or keys state by it (`protect`):
- `cc_num` becomes `card_id(cc_num)`, `h1:` and 32 hex digits of HMAC-SHA256 under the
  card-hash key. Features only compare cards for equality, which the hash keeps; without
  the key a stored id cannot be matched to a card number (16 digits are too few to hide
  behind a plain hash).
- The last four digits are kept apart, for display.
- Names, street, zip and job are left out: no model reads them.
- A fingerprint of the whole content (an HMAC too: it covers the card number) tells a
  repeat of the same transaction from another one reusing its trans_num.
- The raw record, with every field, is kept only if a raw-record key is set, encrypted
  with it (Fernet: AES-128-CBC with HMAC-SHA256), so that only a role allowed to read
  personal data sees it again.
"""

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

from fraudops.data.schema import CanonicalTransaction

if TYPE_CHECKING:
    from fraudops.config import Settings

CARD_ID_PREFIX = "h1:"
CARD_ID_HEX = 32
# Identifying fields no model reads: never stored in clear.
DROPPED_FIELDS: tuple[str, ...] = ("first", "last", "street", "zip", "job")
# Stored because models read them (or for analysis), but personal: masked in API answers
# for roles that may not read personal data.
MASKED_FIELDS: tuple[str, ...] = ("cc_num", "dob", "gender", "lat", "long", "city", "state")
KEY_FILE = Path("secrets") / "card-hash.key"
# What the warehouse keeps to tell whether a key is the one its card ids were made with.
_KEY_CHECK_MESSAGE = b"fraudops card-hash key check v1"


class PersonalDataError(ValueError):
    """A key that cannot be used, or sealed data that cannot be opened with it."""


@dataclass(frozen=True, kw_only=True)
class ProtectedTransaction:
    """A transaction as it may be stored and keyed: card hashed, identifying fields left out."""

    transaction: CanonicalTransaction  # cc_num is the card id; DROPPED_FIELDS are None
    card_last4: str | None
    fingerprint: str  # HMAC of the whole content but the label, hex
    sealed: str | None = None  # the raw record, encrypted; None unless a raw-record key is set

    @property
    def trans_num(self) -> str:
        """The transaction's id."""
        return self.transaction.trans_num

    @cached_property
    def record_json(self) -> bytes:
        """The stored record, as JSON text: made once, for the journal and the warehouse."""
        return self.transaction.model_dump_json(exclude_none=True).encode()


class PersonalData:
    """The keys that protect personal data: the card-hash key and, optionally, the raw one.

    The card-hash key is a chain, oldest first: a rotation adds a key, and every id and
    fingerprint made with the chain so far is hashed once more with it (`rotate`), so the
    stored history keeps matching while the new key alone no longer reveals it.
    """

    def __init__(self, card_keys: Sequence[bytes] | bytes, *, raw_key: bytes | None = None):
        chain = [card_keys] if isinstance(card_keys, bytes) else list(card_keys)
        if not chain or any(len(key) < 32 for key in chain):
            msg = "each card-hash key must hold at least 32 bytes (64 hex digits)"
            raise PersonalDataError(msg)
        self._card_keys = chain
        self._raw_key = raw_key
        try:
            self._fernet = None if raw_key is None else Fernet(raw_key)
        except ValueError as error:
            msg = (
                "the raw-record key must be a Fernet key (32 url-safe base64-encoded bytes: "
                "python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            )
            raise PersonalDataError(msg) from error

    @classmethod
    def from_text(cls, card_keys: str, *, raw_key: str | None = None) -> "PersonalData":
        """Keys as configured: the card-hash keys in hex, comma-separated, oldest first;
        the raw-record key as Fernet text."""
        try:
            chain = [bytes.fromhex(key.strip()) for key in card_keys.split(",") if key.strip()]
        except ValueError as error:
            msg = "the card-hash key must be hex digits (python -c 'import secrets; "
            msg += "print(secrets.token_hex(32))')"
            raise PersonalDataError(msg) from error
        return cls(chain, raw_key=None if raw_key is None else raw_key.strip().encode())

    @classmethod
    def from_key_file(cls, path: Path, *, raw_key: str | None = None) -> "PersonalData":
        """The card-hash keys kept in `path`, one a line (made there, readable by its owner
        only, if new)."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:  # another process made it first: use theirs
                pass
            else:
                with os.fdopen(descriptor, "w", encoding="ascii") as out:
                    out.write(secrets.token_hex(32) + "\n")
        lines = path.read_text(encoding="ascii").split()
        return cls.from_text(",".join(lines), raw_key=raw_key)

    def rotated(self, new_key: bytes) -> "PersonalData":
        """These keys with one more at the end of the chain."""
        raw = None if self._raw_key is None else self._raw_key
        return PersonalData([*self._card_keys, new_key], raw_key=raw)

    def card_keys_text(self) -> str:
        """The chain as FRAUDOPS_CARD_HASH_KEY holds it (secret: never log it)."""
        return ",".join(key.hex() for key in self._card_keys)

    @property
    def key_check(self) -> str:
        """A value that identifies the card-hash key chain without revealing it."""
        return self._chained(_KEY_CHECK_MESSAGE.hex(), self._card_keys)

    @staticmethod
    def _chained(text: str, keys: Sequence[bytes]) -> str:
        """`text` hashed with each key in turn."""
        for key in keys:
            text = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
        return text

    def rekeyed(self, stored: str, *, new_key: bytes) -> str:
        """A card id or fingerprint made with this chain, as the chain plus `new_key` makes it."""
        if is_card_id(stored):
            return CARD_ID_PREFIX + self._chained(stored, [new_key])[:CARD_ID_HEX]
        return self._chained(stored, [new_key])

    @property
    def keeps_raw(self) -> bool:
        """Whether raw records are kept (encrypted)."""
        return self._fernet is not None

    def card_id(self, cc_num: int | str) -> str:
        """The stored id of a card number: `h1:` and a keyed hash (an id stays as it is)."""
        text = str(cc_num)
        if is_card_id(text):
            return text
        for key in self._card_keys:
            digest = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
            text = CARD_ID_PREFIX + digest[:CARD_ID_HEX]
        return text

    def fingerprint(self, transaction: CanonicalTransaction) -> str:
        """A keyed hash of everything the transaction says but its label."""
        return self.fingerprint_of(transaction.model_dump(mode="json", exclude_none=True))

    def fingerprint_of(self, record: Mapping[str, Any]) -> str:
        """A keyed hash of a JSON-ready record's content but its label."""
        content = {key: value for key, value in record.items() if key != "is_fraud"}
        for key in ("cc_num", "zip"):  # a number sent as digits is the same number
            if key in content:
                content[key] = str(content[key])
        first, *later = self._card_keys
        text = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
        return self._chained(hmac.new(first, text, hashlib.sha256).hexdigest(), later)

    def seal(self, record: Mapping[str, Any]) -> str | None:
        """A JSON-ready record encrypted with the raw-record key; None if none is set."""
        if self._fernet is None:
            return None
        return self._fernet.encrypt(orjson.dumps(record)).decode("ascii")

    def protect(self, transaction: CanonicalTransaction) -> ProtectedTransaction:
        """The transaction as it may be stored: card id, last four digits, fingerprint."""
        raw = None if transaction.cc_num is None else str(transaction.cc_num)
        if raw is not None and is_card_id(raw):
            msg = "the transaction is protected already: its card number is gone"
            raise PersonalDataError(msg)
        plain = transaction.model_dump(mode="json", exclude_none=True)
        changes: dict[str, Any] = dict.fromkeys(DROPPED_FIELDS)
        changes["cc_num"] = None if raw is None else self.card_id(raw)  # a profile without cards
        return ProtectedTransaction(
            transaction=transaction.model_copy(update=changes),
            card_last4=raw[-4:] if raw is not None and len(raw) >= 4 else None,
            fingerprint=self.fingerprint_of(plain),
            sealed=self.seal(plain),
        )

    def reveal(self, sealed: str) -> dict[str, Any]:
        """The raw record a sealed value holds."""
        if self._fernet is None:
            msg = "no raw-record key is set: sealed records cannot be read"
            raise PersonalDataError(msg)
        try:
            plain: dict[str, Any] = orjson.loads(self._fernet.decrypt(sealed.encode("ascii")))
        except InvalidToken as error:
            msg = "the sealed record was not made with this raw-record key"
            raise PersonalDataError(msg) from error
        return plain


def is_card_id(value: object) -> bool:
    """Whether a card field holds a stored card id rather than a card number."""
    return isinstance(value, str) and value.startswith(CARD_ID_PREFIX)


def masked_record(record: dict[str, Any], *, card_last4: str | None) -> dict[str, Any]:
    """A stored record for a role that may not read personal data: the card as its last
    four digits, personal fields left out."""
    shown = {key: value for key, value in record.items() if key not in MASKED_FIELDS}
    shown["card_last4"] = card_last4
    return shown


def personal_data(settings: "Settings") -> PersonalData:
    """The keys the settings name: FRAUDOPS_CARD_HASH_KEY, else the key file under home."""
    raw = None if settings.raw_record_key is None else settings.raw_record_key.get_secret_value()
    if settings.card_hash_key is not None:
        return PersonalData.from_text(settings.card_hash_key.get_secret_value(), raw_key=raw)
    return PersonalData.from_key_file(settings.home / KEY_FILE, raw_key=raw)
