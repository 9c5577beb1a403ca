"""The review queue, a case with its context, and the analyst's label."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

import httpx
import structlog
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from fraudops.console import plots
from fraudops.console.deps import ConsoleState, console, current_user, page, read_form, svg
from fraudops.console.queries import PAGE_SIZE, QueueQuery, is_trans_num
from fraudops.features.formulas import age_years
from fraudops.features.online import datetime_ms
from fraudops.storage import LabelRecord, ScoreRecord, StoredTransaction
from fraudops.storage.console import QueueItem
from fraudops.times import utc_naive, utc_now

log = structlog.get_logger(__name__)
router = APIRouter()

# How far around a case the card's and the merchant's history is read.
HISTORY = timedelta(days=30)
LABEL_SOURCE = "analyst"
LABEL_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
TransNum = Annotated[str, Query(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]


@router.get("/queue")
def queue(request: Request) -> Response:
    """Unlabelled reviews and declines, filtered and paged; the rows refresh every second."""
    current_user(request)
    query = QueueQuery.parse(dict(request.query_params))
    items, more = _queue_page(console(request), query)
    return page(request, "queue.html", query=query, items=items, more=more)


@router.get("/queue/rows")
def queue_rows(request: Request) -> Response:
    """The queue's rows alone, which the page swaps in every second (HTMX)."""
    current_user(request)
    query = QueueQuery.parse(dict(request.query_params))
    items, more = _queue_page(console(request), query)
    return page(request, "_queue_rows.html", query=query, items=items, more=more)


@router.get("/cases/{trans_num:path}")
def case(request: Request, trans_num: str) -> Response:
    """A transaction with its scores, reasons, card history and merchant's rates."""
    current_user(request)
    state = console(request)
    stored = state.warehouse.get_transaction(trans_num) if is_trans_num(trans_num) else None
    if stored is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no stored transaction {trans_num[:128]!r}"
        )
    merchant = stored.record.get("merchant")
    rates = None
    if isinstance(merchant, str):
        rates = state.warehouse.merchant_rates(
            merchant,
            start=stored.event_time - HISTORY,
            end=stored.event_time + timedelta(seconds=1),
        )
    return page(request, "case.html", case=case_view(stored), rates=rates)


@router.get("/plots/card-timeline.svg")
def card_timeline(request: Request, trans_num: TransNum) -> Response:
    """The case's card: amounts and scores over the month before (and the day after)."""
    current_user(request)
    state = console(request)
    stored = state.warehouse.get_transaction(trans_num)
    card = state.warehouse.card_of(trans_num)
    if stored is None or card is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such stored transaction")
    points = state.warehouse.card_history(
        card, start=stored.event_time - HISTORY, end=stored.event_time + timedelta(days=1)
    )
    return svg(plots.card_timeline(points, current=trans_num))


@router.post("/labels")
async def label(request: Request) -> Response:
    """Store the analyst's label (source `analyst`), audit it, and open the next case."""
    user = current_user(request)
    form = await read_form(request, csrf=user.csrf)
    state = console(request)
    trans_num = form.get("trans_num", "")
    verdict = form.get("verdict")
    if verdict not in ("fraud", "legitimate"):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="verdict: must be fraud or legitimate"
        )
    comment = form.get("comment", "").strip()
    if len(comment) > 2000:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="comment: at most 2000 characters"
        )
    if not is_trans_num(trans_num) or state.warehouse.get_transaction(trans_num) is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no stored transaction {trans_num[:128]!r}"
        )
    label_time = utc_naive(utc_now())
    delivered = await run_in_threadpool(
        record_analyst_label,
        state,
        LabelRecord(trans_num=trans_num, is_fraud=verdict == "fraud",
                    label_time=label_time, source=LABEL_SOURCE, analyst=user.name),
    )  # fmt: skip
    state.audit(
        user, kind="label", verdict=verdict, trans_num=trans_num, comment=comment or None,
        label_time=label_time.isoformat(), via=delivered,
    )  # fmt: skip
    following = state.warehouse.alert_queue(QueueQuery().to_filter(), order="newest", limit=1)
    target = f"/cases/{following[0].trans_num}" if following else "/queue"
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


def record_analyst_label(state: ConsoleState, label: LabelRecord) -> str:
    """Store a label as `POST /v1/labels` does: through the running service when
    FRAUDOPS_SERVICE_URL names one (its merchant state learns the label too), else straight
    into the warehouse with the same storage call. Returns "service" or "warehouse"."""
    settings = state.settings
    tokens = (*settings.scoring_tokens, *settings.admin_token_list)
    if settings.service_url and tokens:
        body = [
            {
                "trans_num": label.trans_num,
                "is_fraud": label.is_fraud,
                "label_time": label.label_time.isoformat(),
                "source": label.source,
                "analyst": label.analyst,
            }
        ]
        try:
            response = httpx.post(
                settings.service_url.rstrip("/") + "/v1/labels",
                json=body,
                headers={"Authorization": f"Bearer {tokens[0]}"},
                timeout=LABEL_TIMEOUT,
            )
            response.raise_for_status()
        except httpx.HTTPError as error:
            # The label must not be lost: the warehouse keeps it, the service's merchant
            # state takes it in at its next rebuild.
            log.warning("label not sent to the service; stored directly", error=str(error))
        else:
            return "service"
    state.warehouse.record_labels([label])
    return "warehouse"


@dataclass(frozen=True, kw_only=True)
class CaseView:
    """What the case page shows: nothing personal beyond the card's last four and an age."""

    trans_num: str
    event_time: datetime
    amount: float | None
    merchant: str | None
    category: str | None
    card_last4: str | None
    age: int | None
    champion: ScoreRecord | None
    shadow: ScoreRecord | None  # the latest challenger's
    label: LabelRecord | None


def case_view(stored: StoredTransaction) -> CaseView:
    """The case's displayable fields (the birth date only as an age at the transaction)."""
    record = stored.record
    age = None
    birth = datetime_ms(record["dob"]) if record.get("dob") else None
    moment = datetime_ms(stored.event_time)
    if birth is not None and moment is not None:
        age = int(age_years(moment, birth))
    amount = record.get("amt")
    return CaseView(
        trans_num=stored.trans_num,
        event_time=stored.event_time,
        amount=None if amount is None else float(amount),
        merchant=record.get("merchant"),
        category=record.get("category"),
        card_last4=stored.card_last4,
        age=age,
        champion=stored.champion,
        shadow=stored.challengers[-1] if stored.challengers else None,
        label=stored.label,
    )


def _queue_page(state: ConsoleState, query: QueueQuery) -> tuple[list[QueueItem], bool]:
    """One page of the queue, and whether another follows (one row more is read)."""
    items = state.warehouse.alert_queue(
        query.to_filter(),
        order=query.order,
        limit=PAGE_SIZE + 1,
        offset=(query.page - 1) * PAGE_SIZE,
    )
    return items[:PAGE_SIZE], len(items) > PAGE_SIZE
