"""Bearer-token access: scoring clients, readers of personal data and administrators."""

import hmac
import math
from collections import Counter
from dataclasses import dataclass
from enum import IntEnum

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from fraudops.config import Settings

# Tokens that appear in examples and templates; a service holding one is not secured.
PLACEHOLDER_TOKENS = frozenset(
    {"changeme", "change-me", "change_me", "changethis", "secret", "token", "password",
     "admin", "test", "dev", "example", "fraudops", "default", "xxx"}
)  # fmt: skip
MIN_TOKEN_LENGTH = 16
MIN_TOKEN_BITS = 128
TOKEN_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"  # noqa: S105


class InsecureSettingsError(ValueError):
    """The service would start without real secrets outside development mode."""


class Access(IntEnum):
    """What a request may do; each level may do what those below it may."""

    NONE = 0
    SCORE = 1  # score, label, read stored transactions with personal data masked
    PII = 2  # and read personal data
    ADMIN = 3  # and reload models, retrain


@dataclass(frozen=True)
class TokenChecker:
    """Knows the scoring, personal-data and admin tokens; `dev` lets every request through."""

    scoring: tuple[bytes, ...]
    admin: tuple[bytes, ...]
    pii: tuple[bytes, ...] = ()
    dev: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, *, dev: bool = False) -> "TokenChecker":
        """The checker for these settings, refusing weak or shared tokens unless `dev`.

        Development mode comes only from a command's --dev flag, never from the settings
        (an environment variable or a stray .env file must not switch authentication off).
        """
        if not dev:
            enforce_real_tokens(settings)
        return cls(
            scoring=tuple(t.encode() for t in settings.scoring_tokens),
            admin=tuple(t.encode() for t in settings.admin_token_list),
            pii=tuple(t.encode() for t in settings.pii_token_list),
            dev=dev,
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
        is_pii = _matches_any(candidate, self.pii)
        is_scoring = _matches_any(candidate, self.scoring)
        if is_admin:
            return Access.ADMIN
        if is_pii:
            return Access.PII
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
    """Refuse to run without tokens, with weak ones, or with one token in two lists."""
    lists = (
        ("FRAUDOPS_API_TOKENS", settings.scoring_tokens),
        ("FRAUDOPS_PII_TOKENS", settings.pii_token_list),
        ("FRAUDOPS_ADMIN_TOKENS", settings.admin_token_list),
    )
    if not any(tokens for _, tokens in lists):
        msg = (
            "no API tokens: set FRAUDOPS_API_TOKENS (and FRAUDOPS_ADMIN_TOKENS), comma-separated, "
            f"or start with --dev on a development machine; {TOKEN_HINT}"
        )
        raise InsecureSettingsError(msg)
    owners: dict[str, str] = {}
    for variable, tokens in lists:
        for number, token in enumerate(tokens, start=1):
            where = f"token {number} of {variable}"
            if token.lower() in PLACEHOLDER_TOKENS or len(token) < MIN_TOKEN_LENGTH:
                msg = (
                    f"{where} is a placeholder or short token (at least "
                    f"{MIN_TOKEN_LENGTH} characters are required); {TOKEN_HINT}"
                )
                raise InsecureSettingsError(msg)
            bits = estimated_bits(token)
            if bits < MIN_TOKEN_BITS:
                msg = (
                    f"{where} is too easy to guess: about {bits:.0f} bits of entropy, at "
                    f"least {MIN_TOKEN_BITS} are required; {TOKEN_HINT}"
                )
                raise InsecureSettingsError(msg)
            other = owners.setdefault(token, variable)
            if other != variable:
                msg = (
                    f"{where} is also in {other}: one token would carry both roles; give "
                    f"each role its own tokens; {TOKEN_HINT}"
                )
                raise InsecureSettingsError(msg)


def estimated_bits(token: str) -> float:
    """Entropy of a token as its own characters tell it: length x Shannon entropy per char.

    A random token from secrets.token_urlsafe(32) scores about 210 bits; repetitions and
    small alphabets ("aaaa...", "passwordpassword", "0000...") score far below 128. Password
    strength estimators judge words a person picks, and rate random machine tokens by
    digits only, so they are not used here.
    """
    counts = Counter(token)
    size = len(token)
    per_char = -sum(n / size * math.log2(n / size) for n in counts.values())
    return size * per_char


def _matches_any(candidate: bytes, tokens: tuple[bytes, ...]) -> bool:
    """Whether the candidate equals one of the tokens, comparing against all of them."""
    found = False
    for token in tokens:
        found |= hmac.compare_digest(candidate, token)
    return found


DEV_BANNER = (
    "DEVELOPMENT MODE (--dev): requests are NOT authenticated, admin routes included; "
    "never expose this server beyond this machine"
)
# Routes only administrators may call (prefixes of the path).
ADMIN_PATHS = ("/v1/models/reload", "/v1/retrain", "/v1/jobs/")


class TokenGate:
    """Refuses /v1/ requests without a valid token (401), or without an admin one on admin
    routes (403), before anything reads their body; notes the access for the routes."""

    def __init__(self, app: ASGIApp, *, tokens: TokenChecker) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token of an API request, then pass it on."""
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        access = self.tokens.access(header)
        scope.setdefault("state", {})["access"] = access
        if access is Access.NONE:
            await _refuse(send, 401, "a valid bearer token is required")
            return
        if access < Access.ADMIN and scope["path"].startswith(ADMIN_PATHS):
            await _refuse(send, 403, "this needs an admin token")
            return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, detail: str) -> None:
    """Answer a JSON problem without reading the request."""
    body = orjson.dumps({"detail": detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
