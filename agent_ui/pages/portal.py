"""Department portal (liaison): the inbox sorted by deadline with urgency colours, warnings, own KPIs."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from agent_ui.deps import LiaisonDep, render
from agent_ui.presenters import urgency
from core.accounts.actor import actor_of
from core.web import ContextDep, SessionDep
from dispatch import schemas
from dispatch.desk import TicketDesk
from dispatch.states import TicketState
from sla.kpi import compute_kpis
from sla.urgency import URGENCY_LABELS
from sla.views import warnings as sla_warnings

router = APIRouter(include_in_schema=False)

Tab = Literal["todo", "doing", "done"]
TABS: dict[str, tuple[str, list[TicketState]]] = {
    "todo": ("待签收", [TicketState.DISPATCHED]),
    "doing": ("办理中", [TicketState.IN_PROGRESS]),
    "done": ("已答复", [TicketState.REPLIED, TicketState.ARCHIVED]),
}


def _far_future(value: datetime | None) -> datetime:
    return value or datetime.max


@router.get("/portal", response_class=HTMLResponse)
def portal(
    request: Request, ctx: ContextDep, session: SessionDep, user: LiaisonDep, tab: Tab = "todo"
) -> Response:
    desk = TicketDesk(ctx, session, user, request)
    now = desk.now()
    counts = {
        key: desk.tickets.list(desk.actor, schemas.TicketFilter(state=states, limit=1))[1]
        for key, (_label, states) in TABS.items()
    }
    rows, _total = desk.list(schemas.TicketFilter(state=TABS[tab][1], limit=200))
    if tab == "done":
        rows.sort(key=lambda t: t.replied_at or t.updated_at, reverse=True)
    else:
        rows.sort(key=lambda t: _far_future(t.deadline))
    month = datetime.combine(now.date().replace(day=1), time())
    kpi = compute_kpis(
        session,
        month,
        (month + timedelta(days=32)).replace(day=1),
        now,
        ctx.calendar.working_day_length.total_seconds() / 60,
        "all",
        user.department_id,
    )
    return render(
        request,
        ctx,
        "portal.html",
        user,
        tab=tab,
        tabs=TABS,
        counts=counts,
        rows=[(desk.out(t), urgency(t, now, ctx)) for t in rows],
        urgency_labels=URGENCY_LABELS,
        kpi=kpi[0] if kpi else None,
        warnings=sla_warnings(session, actor_of(user), 10),
        overdue=sum(1 for t in rows if urgency(t, now, ctx) == "overdue"),
    )
