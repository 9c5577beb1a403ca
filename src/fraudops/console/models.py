"""The models page, and promotion and rollback (administrators, after a confirmation).

Both actions go through the lifecycle facade, as `fraudops models promote|rollback` does:
audited with the administrator as actor, and the service told to reload (it hot-swaps).
"""

from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from fraudops.console.auth import User
from fraudops.console.deps import (
    ConsoleState,
    console,
    current_user,
    page,
    read_form,
    require_admin,
)
from fraudops.lifecycle.facade import Lifecycle
from fraudops.lifecycle.models import ChampionChange, ModelOpsError
from fraudops.registry.base import ModelNotFoundError

router = APIRouter()

COMPARISONS = 10
TRAIL = 50
Action = Callable[[Lifecycle], ChampionChange]


@router.get("/models")
def models(request: Request) -> Response:
    """Versions with champion and challenger, the last comparisons, the audit trail."""
    current_user(request)
    state = console(request)
    warehouse = state.warehouse
    return page(
        request,
        "models.html",
        rows=_lifecycle(state, actor="console").models(),
        comparisons=warehouse.events(kind="compare", limit=COMPARISONS),
        trail=warehouse.events(limit=TRAIL),
        done=request.query_params.get("done"),
    )


@router.post("/models/promote")
async def promote(request: Request) -> Response:
    """Promote a version: the first post asks for confirmation, the second promotes."""
    user = current_user(request)
    require_admin(user)
    form = await read_form(request, csrf=user.csrf)
    text = form.get("version", "")
    if not text.isdigit() or len(text) > 9:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="version: must be a version number"
        )
    reason = _reason(form)
    change_schema = form.get("change_schema") == "yes"
    if form.get("confirm") != "yes":
        return page(
            request,
            "confirm.html",
            action="promote",
            version=int(text),
            reason=reason,
            change_schema=change_schema,
        )
    return await _change(
        request,
        user=user,
        act=lambda lc: lc.promote(int(text), reason=reason, change_schema=change_schema),
    )


@router.post("/models/rollback")
async def rollback(request: Request) -> Response:
    """Roll the champion back: the first post asks for confirmation, the second acts."""
    user = current_user(request)
    require_admin(user)
    form = await read_form(request, csrf=user.csrf)
    reason = _reason(form)
    if form.get("confirm") != "yes":
        return page(request, "confirm.html", action="rollback", version=None, reason=reason)
    return await _change(request, user=user, act=lambda lc: lc.rollback(reason=reason))


async def _change(request: Request, *, user: User, act: Action) -> Response:
    """Do the change in a worker thread (the registry and the service's reload take time)."""
    state = console(request)
    try:
        change = await run_in_threadpool(act, _lifecycle(state, actor=user.actor))
    except (ModelOpsError, ModelNotFoundError) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from error
    return RedirectResponse(f"/models?done={change.action}", status_code=status.HTTP_303_SEE_OTHER)


def _reason(form: dict[str, str]) -> str:
    reason = form.get("reason", "").strip()
    if not reason or len(reason) > 500:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="reason: say why, in 1 to 500 characters"
        )
    return reason


def _lifecycle(state: ConsoleState, *, actor: str) -> Lifecycle:
    return Lifecycle.from_settings(
        state.settings, state.warehouse, registry=state.registry, actor=actor
    )
