"""Supervisor dashboard: seat wallboard, queue, today's call figures, on-time rate, satisfaction,
overdue and near-deadline lists, requests to decide, 30-day trends, the department league table."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from agent_ui.charts import Series, line_chart
from agent_ui.context import UiContext
from agent_ui.deps import SupervisorDep, render
from callcenter.runtime import telephony_status
from callcenter.service import seat_board, waiting_calls
from callcenter.stats import queue_figures
from core.web import ContextDep, SessionDep
from dispatch import schemas
from dispatch.callbacks.service import callbacks_of
from dispatch.callbacks.stats import callback_figures
from dispatch.desk import TicketDesk
from sla.calendar import coverage_warnings
from sla.kpi import compute_kpis, league_table
from sla.reports import daily_trend, near_deadline, satisfaction, waiting_decisions
from sla.urgency import due_soon_window

router = APIRouter(include_in_schema=False)

TREND_DAYS = 30


def _month(now: datetime) -> tuple[datetime, datetime]:
    start = datetime.combine(now.date().replace(day=1), time())
    return start, (start + timedelta(days=32)).replace(day=1)


def _trend_charts(ctx: UiContext, session: Session, today: date) -> dict[str, Any]:
    first = today - timedelta(days=TREND_DAYS - 1)
    days = daily_trend(session, first, TREND_DAYS)
    labels = [f"{d.day:%m-%d}" for d in days]
    answer_rates = []
    for d in days:
        start = datetime.combine(d.day, time())
        answer_rates.append(queue_figures(session, start, start + timedelta(days=1)).answer_rate)
    volume = line_chart(
        [Series("登记工单", [d.registered for d in days]), Series("直接答复", [d.on_the_spot for d in days])],
        labels,
        title="近30天工单量",
    )
    rates = line_chart(
        [Series("按时办结率", [d.on_time_rate for d in days]), Series("接通率", answer_rates)],
        labels,
        percent=True,
        title="近30天按时办结率与接通率",
    )
    return {"volume": volume, "rates": rates}


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, ctx: ContextDep, session: SessionDep, user: SupervisorDep) -> Response:
    desk = TicketDesk(ctx, session, user, request)
    now = desk.now()
    today = datetime.combine(now.date(), time())
    month_start, month_end = _month(now)
    minutes_per_day = ctx.calendar.working_day_length.total_seconds() / 60
    month_kpi = compute_kpis(session, month_start, month_end, now, minutes_per_day, "all")
    overdue, overdue_total = desk.list(schemas.TicketFilter(overdue=True, limit=30))
    window = due_soon_window(ctx.settings.sla.warnings)
    soon_until = ctx.calendar.add_working_time(now, window) if window else now
    state = request.app.state
    telephony = telephony_status(state.callcentre, state.callcentre_error, ctx.settings.callcenter)
    return render(
        request,
        ctx,
        "dashboard.html",
        user,
        telephony=telephony,
        seats=seat_board(session, now),
        queue=waiting_calls(session, now),
        calls=queue_figures(session, today, today + timedelta(days=1)),
        kpi=month_kpi[0] if month_kpi else None,
        satisfaction=satisfaction(session, month_start, month_end),
        overdue=overdue,
        overdue_total=overdue_total,
        soon=near_deadline(session, now, soon_until),
        waiting=waiting_decisions(session),
        league=league_table(
            compute_kpis(session, month_start, month_end, now, minutes_per_day, "department")
        ),
        charts=_trend_charts(ctx, session, now.date()),
        now=now,
        calendar_warnings=coverage_warnings(ctx.calendar, now.date()),
        month=f"{now:%Y年%m月}",
        callback_rows=callback_figures(session, month_start, month_end, "department"),
        unreachable_callbacks=callbacks_of(ctx, session).listing(["unreachable"], limit=50),
    )
