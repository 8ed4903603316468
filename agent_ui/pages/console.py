"""Seat console (operator): seat state with a timer, screen pop, transcript and knowledge-base
suggestions, the ticket form with the router's suggestion, answer on the spot / dispatch / transfer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from agent_ui.deps import OperatorDep, render
from agent_ui.presenters import catalogue
from callcenter.models import SEAT_STATE_LABELS, Seat, SeatState
from callcenter.service import CallRecords, SeatService, mask_phone, waiting_calls
from callcenter.views import phone_of
from core.web import ContextDep, SessionDep
from sla.hotspots import alerts

router = APIRouter(include_in_schema=False)

SHORTCUTS = [
    ("F2", "就绪"),
    ("F3", "小休"),
    ("F4", "重新分析"),
    ("Alt+1/2/3", "采用第1/2/3条答复"),
    ("F6", "作为附加来电关联第1条可能重复工单"),
    ("F8", "直接答复办结"),
    ("F9", "派单"),
    ("Esc", "清空表单"),
]


def _current_call(session: Session, ctx: Any, seat: Seat | None) -> dict[str, Any] | None:
    """The call on the operator's seat, for a screen pop that survives a page reload."""
    if seat is None or not seat.current_call_uid:
        return None
    record = CallRecords(session, ctx.clock).find(seat.current_call_uid)
    if record is None:
        return None
    return {
        "call_uid": record.uid,
        "caller": record.caller,
        "caller_masked": mask_phone(record.caller),
        "earlier_tickets": ctx.call_tickets.earlier_tickets(session, record.caller),
    }


@router.get("/console", response_class=HTMLResponse)
def console(request: Request, ctx: ContextDep, session: SessionDep, user: OperatorDep) -> Response:
    seats = SeatService(session, ctx.clock).active()
    mine = next((s for s in seats if s.operator_id == user.id), None)
    now = ctx.clock.now()
    return render(
        request,
        ctx,
        "console.html",
        user,
        seat=mine,
        phone=phone_of(request.app.state.callcentre, mine.extension) if mine else None,
        seat_label=SEAT_STATE_LABELS[SeatState(mine.state)] if mine else "",
        seat_seconds=round((now - mine.state_since).total_seconds()) if mine else 0,
        free_seats=[s for s in seats if s.state == SeatState.LOGGED_OUT.value],
        has_seats=bool(seats),
        call=_current_call(session, ctx, mine),
        queue=waiting_calls(session, now),
        cat=catalogue(session),
        shortcuts=SHORTCUTS,
        department_phones={d.code: d.phone for d in catalogue(session).departments if d.phone},
        hotspots=alerts(session, limit=3),
    )
