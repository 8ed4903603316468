"""The ticket page (details, history, the actions the user may take) and ticket search for every role."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from agent_ui.api import problems_zh
from agent_ui.deps import PageUserDep, render
from agent_ui.presenters import allowed_forms, catalogue, urgency
from core import audit
from core.accounts.models import Role
from core.spreadsheet import Sheet, xlsx_response
from core.web import ContextDep, SessionDep, WebError, audit_fields, commit
from dispatch import schemas
from dispatch.attachments.service import attachments_of
from dispatch.attachments.views import attachment_out
from dispatch.desk import TicketDesk
from dispatch.models import CHANNEL_LABELS
from dispatch.states import ACTION_LABELS, STATE_LABELS, Action, TicketState
from sla.urgency import URGENCY_LABELS

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 30


def action_label(action: str) -> str:
    return ACTION_LABELS.get(Action(action), action)


@router.get("/tickets/{number}", response_class=HTMLResponse)
def ticket_page(
    number: str, request: Request, ctx: ContextDep, session: SessionDep, user: PageUserDep
) -> Response:
    desk = TicketDesk(ctx, session, user, request)
    ticket = desk.get(number)  # 404 / 403 for a ticket the user may not see, and audited
    now = desk.now()
    viewers = []
    if Role(user.role) in (Role.SUPERVISOR, Role.ADMIN):
        viewers = audit.entries(session, ticket_number=ticket.number, limit=50)
    return render(
        request,
        ctx,
        "ticket.html",
        user,
        t=desk.out(ticket),
        events=ticket.events,
        forms=allowed_forms(ticket, desk.actor),
        attachments=[attachment_out(ticket.number, a) for a in attachments_of(ctx, session).of(ticket)],
        attachment_limit=ctx.settings.dispatch.attachments.max_bytes // (1024 * 1024),
        cat=catalogue(session),
        urgency=urgency(ticket, now, ctx),
        urgency_labels=URGENCY_LABELS,
        action_label=action_label,
        state_labels={s.value: label for s, label in STATE_LABELS.items()},
        viewers=viewers,
        audit_label=audit.action_label,
        transcripts=desk.transcripts(ticket),
    )


CALLBACK_LABELS = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}


@router.get("/tickets/{number}/print", response_class=HTMLResponse)
def ticket_print(
    number: str, request: Request, ctx: ContextDep, session: SessionDep, user: PageUserDep
) -> Response:
    """One page with the ticket and every step of its handling, for departments that file paper."""
    desk = TicketDesk(ctx, session, user, request)
    ticket = desk.get(number)  # the same access rule as the ticket page, and audited
    audit.record(session, action="ticket.print", ticket_number=ticket.number, **audit_fields(request, user))
    commit(session)
    out = desk.out(ticket)
    return render(
        request,
        ctx,
        "ticket_print.html",
        user,
        t=out,
        events=ticket.events,
        action_label=action_label,
        channel=CHANNEL_LABELS.get(out.channel, out.channel),
        callback=CALLBACK_LABELS.get(out.callback_result or ""),
        now=desk.now(),
    )


SearchParams = dict[str, Any]


def search_params(
    text: str = "",
    phone: str = "",
    state: Annotated[list[str] | None, Query()] = None,
    created_from: str = "",
    created_to: str = "",
    department: str = "",
) -> SearchParams:
    """The search form's fields, for the page and its spreadsheet."""
    return {
        "text": text.strip(),
        "phone": phone.strip(),
        "state": state or [],
        "created_from": created_from,
        "created_to": created_to,
        "department": department,
    }


SearchDep = Annotated[SearchParams, Depends(search_params)]


def _search_filter(
    form: SearchParams, limit: int, offset: int
) -> tuple[schemas.TicketFilter | None, str | None]:
    """The ticket filter of the search form, or why it cannot be one (in Chinese)."""
    try:
        flt = schemas.TicketFilter(
            text=form["text"] or None,
            caller_phone=form["phone"] or None,
            state=[TicketState(s) for s in form["state"]],
            created_from=date.fromisoformat(form["created_from"]) if form["created_from"] else None,
            created_to=date.fromisoformat(form["created_to"]) if form["created_to"] else None,
            department=form["department"] or None,
            limit=limit,
            offset=offset,
        )
    except ValidationError as exc:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        return None, "查询条件有误：" + problems_zh(problems).replace("caller_phone", "来电号码")
    except ValueError:
        return None, "日期格式应为 年-月-日"
    return flt, None


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    user: PageUserDep,
    form: SearchDep,
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    searched = any(v for v in form.values())
    rows, total, error = [], 0, None
    if searched:
        flt, error = _search_filter(form, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        if flt is not None:
            desk = TicketDesk(ctx, session, user, request)
            found, total = desk.list(flt)
            rows = [(desk.out(t), urgency(t, desk.now(), ctx)) for t in found]
    return render(
        request,
        ctx,
        "search.html",
        user,
        form=form,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        searched=searched,
        error=error,
        cat=catalogue(session),
        states=[(s.value, label) for s, label in STATE_LABELS.items()],
        urgency_labels=URGENCY_LABELS,
        liaison=Role(user.role) == Role.LIAISON,
        qs=urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "page"]),
    )


SEARCH_HEADERS = [
    "工单号", "登记时间", "状态", "渠道", "来电号码", "来电人", "地址", "诉求内容", "大类", "小类",
    "承办部门", "派单时间", "时限", "答复时间", "答复内容", "是否超期", "重办次数", "回访结果",
]  # fmt: skip


def _search_row(t: schemas.TicketOut) -> list[Any]:
    return [
        t.number, t.created_at, t.state_label, CHANNEL_LABELS.get(t.channel, t.channel), t.caller_phone,
        t.caller_name, t.address, t.content, t.category, t.subcategory,
        t.lead_department.name if t.lead_department else None, t.dispatched_at, t.deadline, t.replied_at,
        t.reply_text, t.overdue, t.reopen_count, t.callback_result,
    ]  # fmt: skip


@router.get("/search.xlsx")
def search_export(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    user: PageUserDep,
    form: SearchDep,
) -> Response:
    """Every ticket the search finds (up to the export cap), as the search page would show them."""
    flt, error = _search_filter(form, 500, 0)
    if flt is None:
        raise WebError(422, "invalid search", error or "查询条件有误")
    desk = TicketDesk(ctx, session, user, request)
    found, _total = desk.export(flt)
    rows = [_search_row(desk.out(t)) for t in found]
    name = f"工单查询-{desk.now():%Y%m%d-%H%M}.xlsx"
    return xlsx_response([Sheet("工单", SEARCH_HEADERS, rows)], name)
