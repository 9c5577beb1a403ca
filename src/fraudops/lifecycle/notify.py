"""Telling the running scoring service to reload after the champion changed.

Best effort: the outcome is returned as a word and logged, never raised. A service that
missed the call still swaps on its own when it watches the registry aliases
(FRAUDOPS_MODEL_WATCH_SECONDS).
"""

import httpx
import structlog

from fraudops.config import Settings

log = structlog.get_logger(__name__)

RELOAD_PATH = "/v1/models/reload"
# A reload loads and canary-checks models: give it time, but fail fast on a dead address.
RELOAD_TIMEOUT = httpx.Timeout(30.0, connect=3.0)


def notify_service(settings: Settings, *, timeout: httpx.Timeout = RELOAD_TIMEOUT) -> str:
    """POST the service's reload endpoint with the first admin token.

    Returns "reloaded", "not_configured" (no FRAUDOPS_SERVICE_URL) or "failed: <why>".
    """
    if not settings.service_url:
        log.info("service not notified: no service URL configured")
        return "not_configured"
    url = settings.service_url.rstrip("/") + RELOAD_PATH
    tokens = settings.admin_token_list
    headers = {"Authorization": f"Bearer {tokens[0]}"} if tokens else {}
    try:
        response = httpx.post(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as error:
        outcome = f"failed: {type(error).__name__}: {error}"
    else:
        if response.is_success:
            log.info("service reloaded", url=url, answer=response.text[:500])
            return "reloaded"
        outcome = f"failed: HTTP {response.status_code}: {response.text[:200]}"
    log.warning("service not reloaded", url=url, outcome=outcome)
    return outcome
