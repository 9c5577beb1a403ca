"""Bearer-token access: scoring clients and administrators, compared in constant time."""

import hmac
from dataclasses import dataclass
from enum import Enum

from fraudops.config import Settings

# Tokens that appear in examples and templates; a service holding one is not secured.
PLACEHOLDER_TOKENS = frozenset(
    {"changeme", "change-me", "change_me", "changethis", "secret", "token", "password",
     "admin", "test", "dev", "example", "fraudops", "default", "xxx"}
)  # fmt: skip
MIN_TOKEN_LENGTH = 16
TOKEN_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"  # noqa: S105


class InsecureSettingsError(ValueError):
    """The service would start without real secrets outside development mode."""


class Access(Enum):
    """What a request may do."""

    NONE = "none"
    SCORE = "score"
    ADMIN = "admin"


@dataclass(frozen=True)
class TokenChecker:
    """Knows the scoring and admin tokens; `dev` lets every request through."""

    scoring: tuple[bytes, ...]
    admin: tuple[bytes, ...]
    dev: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "TokenChecker":
        """The checker for these settings, refusing missing or placeholder tokens unless dev."""
        if not settings.dev:
            enforce_real_tokens(settings)
        return cls(
            scoring=tuple(t.encode() for t in settings.scoring_tokens),
            admin=tuple(t.encode() for t in settings.admin_token_list),
            dev=settings.dev,
        )

    def access(self, authorization: str | None) -> Access:
        """The access an Authorization header grants, comparing every token in constant time."""
        if self.dev:
            return Access.ADMIN
        token = bearer_token(authorization)
        if token is None:
            return Access.NONE
        candidate = token.encode()
        # No early exit: the time taken does not tell which list (or which token) matched.
        is_admin = _matches_any(candidate, self.admin)
        is_scoring = _matches_any(candidate, self.scoring)
        if is_admin:
            return Access.ADMIN
        return Access.SCORE if is_scoring else Access.NONE


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, None if absent or malformed."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def enforce_real_tokens(settings: Settings) -> None:
    """Refuse to run without tokens, or with placeholder or short ones."""
    if not settings.scoring_tokens and not settings.admin_token_list:
        msg = (
            "no API tokens: set FRAUDOPS_API_TOKENS (and FRAUDOPS_ADMIN_TOKENS), comma-separated, "
            f"or start with --dev on a development machine; {TOKEN_HINT}"
        )
        raise InsecureSettingsError(msg)
    for variable, tokens in (
        ("FRAUDOPS_API_TOKENS", settings.scoring_tokens),
        ("FRAUDOPS_ADMIN_TOKENS", settings.admin_token_list),
    ):
        for token in tokens:
            if token.lower() in PLACEHOLDER_TOKENS or len(token) < MIN_TOKEN_LENGTH:
                msg = (
                    f"{variable} holds a placeholder or short token (at least "
                    f"{MIN_TOKEN_LENGTH} characters are required); {TOKEN_HINT}"
                )
                raise InsecureSettingsError(msg)


def _matches_any(candidate: bytes, tokens: tuple[bytes, ...]) -> bool:
    """Whether the candidate equals one of the tokens, comparing against all of them."""
    found = False
    for token in tokens:
        found |= hmac.compare_digest(candidate, token)
    return found
