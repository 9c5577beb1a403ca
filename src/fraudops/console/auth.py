"""Who may use the console: tokens, roles, the signed session cookie and CSRF tokens.

Analysts log in with a token of FRAUDOPS_ANALYST_TOKENS (`name=token`, or a bare token
named analyst-N), administrators with one of FRAUDOPS_ADMIN_TOKENS (named admin-N; the API
shares that list, so it holds bare tokens only). A login is a session cookie signed with
FRAUDOPS_CONSOLE_SECRET (or a key of the process): HttpOnly, SameSite=Strict, Secure over
HTTPS, valid FRAUDOPS_CONSOLE_SESSION_HOURS. Each session carries its own CSRF token, which
every form sends back.
"""

import hmac
import secrets
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from fraudops.api.auth import (
    MIN_TOKEN_BITS,
    MIN_TOKEN_LENGTH,
    PLACEHOLDER_TOKENS,
    TOKEN_HINT,
    InsecureSettingsError,
    estimated_bits,
)
from fraudops.config import Settings

SESSION_COOKIE = "fraudops_console"
LOGIN_CSRF_COOKIE = "fraudops_console_login"
SESSION_SALT = "fraudops-console-session"


class Role(IntEnum):
    """What a console user may do; each role may do what those below it may."""

    ANALYST = 1  # work the queue, label cases, read every page
    ADMIN = 2  # and promote or roll back models


@dataclass(frozen=True)
class User:
    """A logged-in person: the name the audit trail records, the role, the session's CSRF
    token."""

    name: str
    role: Role
    csrf: str

    @property
    def actor(self) -> str:
        """The audit trail's actor for this person's actions."""
        return f"console:{self.name}"


@dataclass(frozen=True)
class ConsoleTokens:
    """The tokens that open the console, each with its person's name and role."""

    entries: tuple[tuple[bytes, str, Role], ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> "ConsoleTokens":
        """The console's tokens; refuses none at all, weak ones, or one token in two roles."""
        analysts = _analyst_entries(settings)
        admins = [
            (token, f"admin-{number}")
            for number, token in enumerate(settings.admin_token_list, start=1)
        ]
        if not analysts and not admins:
            msg = (
                "no console tokens: set FRAUDOPS_ANALYST_TOKENS (name=token, comma-separated) "
                f"or FRAUDOPS_ADMIN_TOKENS; {TOKEN_HINT}"
            )
            raise InsecureSettingsError(msg)
        for token, name in analysts:
            _refuse_weak(token, where=f"the token of {name} in FRAUDOPS_ANALYST_TOKENS")
        for token, name in admins:
            _refuse_weak(
                token, where=f"token {name.removeprefix('admin-')} of FRAUDOPS_ADMIN_TOKENS"
            )
        if {token for token, _ in analysts} & {token for token, _ in admins}:
            msg = "a token is both in FRAUDOPS_ANALYST_TOKENS and FRAUDOPS_ADMIN_TOKENS"
            raise InsecureSettingsError(msg)
        names = [name for _, name in analysts]
        if len(set(names)) != len(names):
            msg = "two FRAUDOPS_ANALYST_TOKENS entries carry the same name"
            raise InsecureSettingsError(msg)
        return cls(
            entries=(
                *((token.encode(), name, Role.ANALYST) for token, name in analysts),
                *((token.encode(), name, Role.ADMIN) for token, name in admins),
            )
        )

    def match(self, token: str) -> tuple[str, Role] | None:
        """The name and role a token opens, comparing with every token in constant time."""
        candidate = token.strip().encode()
        found: tuple[str, Role] | None = None
        for known, name, role in self.entries:
            # No early exit: the time taken does not tell which token matched.
            if hmac.compare_digest(candidate, known) and found is None:
                found = (name, role)
        return found


class Sessions:
    """Signed, expiring session documents: {name, role, csrf}."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.console_secret
        if secret is None:
            key = secrets.token_urlsafe(32)
        else:  # whoever guesses it can sign an admin's session: the token rules apply
            key = secret.get_secret_value()
            _refuse_weak(key, where="FRAUDOPS_CONSOLE_SECRET")
        self._serializer = URLSafeTimedSerializer(key, salt=SESSION_SALT)
        self.max_age = int(settings.console_session_hours * 3600)

    def issue(self, name: str, role: Role) -> tuple[str, User]:
        """A new session's cookie value and its user (with a fresh CSRF token)."""
        user = User(name=name, role=role, csrf=secrets.token_urlsafe(32))
        document = {"n": user.name, "r": int(user.role), "c": user.csrf}
        return self._serializer.dumps(document), user

    def read(self, cookie: str | None) -> User | None:
        """The user of a session cookie, None if absent, forged, expired or malformed."""
        if not cookie:
            return None
        try:
            document: Any = self._serializer.loads(cookie, max_age=self.max_age)
            return User(name=str(document["n"]), role=Role(document["r"]), csrf=str(document["c"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None


def same_token(sent: str | None, expected: str) -> bool:
    """Whether a form's CSRF token is the expected one (constant time)."""
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def _analyst_entries(settings: Settings) -> list[tuple[str, str]]:
    """(token, name) of each FRAUDOPS_ANALYST_TOKENS entry."""
    text = "" if settings.analyst_tokens is None else settings.analyst_tokens.get_secret_value()
    entries = []
    for number, item in enumerate((part.strip() for part in text.split(",")), start=1):
        if not item:
            continue
        name, separator, token = item.partition("=")
        if not separator:
            name, token = f"analyst-{number}", item
        name, token = name.strip(), token.strip()
        if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
            msg = f"entry {number} of FRAUDOPS_ANALYST_TOKENS: a name is letters, digits, - or _"
            raise InsecureSettingsError(msg)
        entries.append((token, name))
    return entries


def _refuse_weak(token: str, *, where: str) -> None:
    """The API's rules for tokens: no placeholder, 16 characters, 128 bits at least."""
    if token.lower() in PLACEHOLDER_TOKENS or len(token) < MIN_TOKEN_LENGTH:
        msg = f"{where} is a placeholder or shorter than {MIN_TOKEN_LENGTH}; {TOKEN_HINT}"
        raise InsecureSettingsError(msg)
    if estimated_bits(token) < MIN_TOKEN_BITS:
        msg = f"{where} is too easy to guess (under {MIN_TOKEN_BITS} bits); {TOKEN_HINT}"
        raise InsecureSettingsError(msg)
