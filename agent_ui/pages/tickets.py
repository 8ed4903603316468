"""The ticket page (details, history, the actions the user may take) and ticket search for every role."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from agent_ui.api import problems_zh
from agent_ui.deps import PageUserDep, render
from agent_ui.presenters import allowed_forms, catalogue, urgency
from core import audit
from core.accounts.models import Role
from core.web import ContextDep, SessionDep
from dispatch import schemas
from dispatch.desk import TicketDesk
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
        cat=catalogue(session),
        urgency=urgency(ticket, now, ctx),
        urgency_labels=URGENCY_LABELS,
        action_label=action_label,
        state_labels={s.value: label for s, label in STATE_LABELS.items()},
        viewers=viewers,
        audit_label=audit.action_label,
    )


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    user: PageUserDep,
    text: str = "",
    phone: str = "",
    state: Annotated[list[str] | None, Query()] = None,
    created_from: str = "",
    created_to: str = "",
    department: str = "",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    form = {
        "text": text.strip(),
        "phone": phone.strip(),
        "state": state or [],
        "created_from": created_from,
        "created_to": created_to,
        "department": department,
    }
    searched = any(v for v in form.values())
    rows, total, error = [], 0, None
    if searched:
        try:
            flt = schemas.TicketFilter(
                text=form["text"] or None,
                caller_phone=form["phone"] or None,
                state=[TicketState(s) for s in form["state"]],
                created_from=date.fromisoformat(created_from) if created_from else None,
                created_to=date.fromisoformat(created_to) if created_to else None,
                department=department or None,
                limit=PAGE_SIZE,
                offset=(page - 1) * PAGE_SIZE,
            )
        except ValidationError as exc:
            problems = [
                {"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()
            ]
            error = "查询条件有误：" + problems_zh(problems).replace("caller_phone", "来电号码")
        except ValueError:
            error = "日期格式应为 年-月-日"
        else:
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
