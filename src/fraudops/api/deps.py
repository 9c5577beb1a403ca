"""Dependencies of the routes, declared once: the service, the settings, and access checks.

All of them are `async def`: FastAPI runs a plain `def` dependency in its thread pool, a
thread hop per dependency per request for what takes microseconds.
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fraudops.api.auth import Access, TokenChecker
from fraudops.config import Settings
from fraudops.scoring.service import ScoringService

# Documents the scheme in OpenAPI; the check itself is ours (constant time, two token lists).
bearer = HTTPBearer(auto_error=False, description="A scoring or admin token.")


async def get_service(request: Request) -> ScoringService:
    """The scoring service the app's lifespan started."""
    service: ScoringService = request.app.state.service
    return service


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def _access(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Access:
    checker: TokenChecker = request.app.state.tokens
    header = None if credentials is None else f"Bearer {credentials.credentials}"
    return checker.access(header)


async def require_scoring(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let scoring and admin tokens through; 401 otherwise."""
    if _access(request, credentials) is Access.NONE:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let admin tokens through; 401 without a valid token, 403 with a scoring one."""
    access = _access(request, credentials)
    if access is Access.NONE:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a valid admin bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if access is not Access.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this needs an admin token")


async def require_metrics_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Open when metrics are public (the default), else as scoring."""
    if not request.app.state.settings.metrics_public:
        await require_scoring(request, credentials)


ServiceDep = Annotated[ScoringService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ScoringAccess = Depends(require_scoring)
AdminAccess = Depends(require_admin)
MetricsAccess = Depends(require_metrics_access)
