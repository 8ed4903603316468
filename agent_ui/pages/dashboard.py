"""Supervisor dashboard: seat wallboard, queue, today's call figures, on-time rate, satisfaction,
overdue and near-deadline lists, requests to decide, 30-day trends, the department league table."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from agent_ui.charts import Series, community_map, line_chart
from agent_ui.context import UiContext
from agent_ui.deps import SupervisorDep, render
from callcenter.runtime import telephony_status
from callcenter.service import mask_phone, seat_board, waiting_calls
from callcenter.stats import queue_figures
from core import audit
from core.accounts.models import User
from core.spreadsheet import Sheet, rate, xlsx_response
from core.web import ContextDep, SessionDep, audit_fields, commit
from dispatch import schemas
from dispatch.callbacks.service import callbacks_of
from dispatch.callbacks.stats import callback_figures
from dispatch.desk import EXPORT_CAP, TicketDesk
from dispatch.places import counts_by_community
from dispatch.states import STATE_LABELS, TicketState
from sla.calendar import coverage_warnings
from sla.hotspots import STATE_LABELS as HOTSPOT_STATES
from sla.hotspots import alerts
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


def _tables(
    request: Request, ctx: UiContext, session: Session, user: User, export: bool = False
) -> dict[str, Any]:
    """The dashboard's figures and lists; `export` lifts the lists' screen limits."""
    desk = TicketDesk(ctx, session, user, request)
    now = desk.now()
    month_start, month_end = _month(now)
    minutes_per_day = ctx.calendar.working_day_length.total_seconds() / 60
    overdue_filter = schemas.TicketFilter(overdue=True, limit=30)
    overdue, overdue_total = desk.export(overdue_filter) if export else desk.list(overdue_filter)
    window = due_soon_window(ctx.settings.sla.warnings)
    soon_until = ctx.calendar.add_working_time(now, window) if window else now
    limit = EXPORT_CAP if export else 50
    return {
        "now": now,
        "month": f"{now:%Y年%m月}",
        "month_range": (month_start, month_end),
        "seats": seat_board(session, now),
        "overdue": overdue,
        "overdue_total": overdue_total,
        "soon": near_deadline(session, now, soon_until, limit=limit),
        "waiting": waiting_decisions(session, limit=limit),
        "league": league_table(
            compute_kpis(session, month_start, month_end, now, minutes_per_day, "department")
        ),
        "callback_rows": callback_figures(session, month_start, month_end, "department"),
        "unreachable_callbacks": callbacks_of(ctx, session).listing(["unreachable"], limit=limit),
    }


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, ctx: ContextDep, session: SessionDep, user: SupervisorDep) -> Response:
    tables = _tables(request, ctx, session, user)
    now = tables["now"]
    today = datetime.combine(now.date(), time())
    month_start, month_end = tables["month_range"]
    minutes_per_day = ctx.calendar.working_day_length.total_seconds() / 60
    month_kpi = compute_kpis(session, month_start, month_end, now, minutes_per_day, "all")
    state = request.app.state
    telephony = telephony_status(state.callcentre, state.callcentre_error, ctx.settings.callcenter)
    return render(
        request,
        ctx,
        "dashboard.html",
        user,
        **tables,
        telephony=telephony,
        queue=waiting_calls(session, now),
        calls=queue_figures(session, today, today + timedelta(days=1)),
        kpi=month_kpi[0] if month_kpi else None,
        satisfaction=satisfaction(session, month_start, month_end),
        charts=_trend_charts(ctx, session, now.date()),
        calendar_warnings=coverage_warnings(ctx.calendar, now.date()),
        export_tables=EXPORTS,
        hotspots=alerts(session),
        hotspot_states=HOTSPOT_STATES,
        hotspot_map=_map(ctx, session, now),
    )


MAP_DAYS = 7


def _map(ctx: Any, session: Session, now: datetime) -> Any:
    """The last week's tickets per community on the county's outline; None when no map is configured."""
    try:
        county = ctx.county_map
    except ValueError as exc:  # a missing or broken map file: the dashboard still opens, and says why
        return str(exc)
    counts = counts_by_community(session, now - timedelta(days=MAP_DAYS), now)
    alerting = {a.community_code for a in alerts(session) if a.community_code}
    return community_map(county, counts, alerting)


# ---- the same tables as spreadsheets -------------------------------------------------------------

EXPORTS = {
    "seats": "坐席状态",
    "overdue": "超期工单",
    "soon": "即将到期",
    "waiting": "待审批",
    "league": "部门排名",
    "callbacks": "回访统计",
    "unreachable": "联系不上的回访",
}


HEADERS = {
    "seats": ["分机", "状态", "话务员", "本状态时长（秒）"],
    "overdue": ["工单号", "承办部门", "时限", "状态", "诉求内容"],
    "soon": ["工单号", "承办部门", "时限", "诉求内容"],
    "waiting": ["工单号", "事项", "承办部门", "理由"],
    "league": [
        "名次",
        "部门",
        "到期",
        "办结",
        "按时",
        "按时办结率",
        "超期未办",
        "退单",
        "延期",
        "平均用时",
        "派单准确率",
        "建议采纳率",
    ],
    "callbacks": [
        "部门",
        "应回访",
        "已回访",
        "回访率",
        "评价",
        "满意+基本满意",
        "不满意",
        "满意率",
        "联系不上",
        "重办",
    ],
    "unreachable": ["工单号", "承办部门", "电话", "尝试次数"],
}


def _dept(t: Any) -> str:
    return t.lead_department.name if t.lead_department else ""


def _waiting_row(t: Any) -> list[Any]:
    if t.extension_requested_days:
        return [t.number, f"延期 {t.extension_requested_days} 个工作日", _dept(t), t.extension_reason]
    if t.state == "replied":
        return [t.number, "答复待审核", _dept(t), t.reply_text]
    return [t.number, "退单", _dept(t), t.return_reason]


def _late(r: Any) -> list[Any]:
    return [
        r.returns,
        r.extensions,
        r.avg_handling_working_days,
        rate(r.dispatch_accuracy),
        rate(r.suggestion_agreement),
    ]


def _survey(r: Any) -> list[Any]:
    return [r.satisfied, r.dissatisfied, rate(r.satisfaction_rate), r.unreachable, r.reopens]


def _rows(tables: dict[str, Any]) -> dict[str, list[list[Any]]]:
    return {
        "seats": [
            [s["extension"], s["state_label"], s.get("operator") or "", s.get("seconds_in_state")]
            for s in tables["seats"]
        ],
        "overdue": [
            [t.number, _dept(t), t.deadline, STATE_LABELS[TicketState(t.state)], t.content]
            for t in tables["overdue"]
        ],
        "soon": [[t.number, _dept(t), t.deadline, t.content] for t in tables["soon"]],
        "waiting": [_waiting_row(t) for t in tables["waiting"]],
        "league": [
            [i, r.name, r.due, r.closed, r.closed_on_time, rate(r.on_time_rate), r.overdue_open, *_late(r)]
            for i, r in enumerate(tables["league"], start=1)
        ],
        "callbacks": [
            [r.name, r.due, r.called_back, rate(r.callback_rate), r.surveyed, *_survey(r)]
            for r in tables["callback_rows"]
        ],
        "unreachable": [
            [c.ticket.number, _dept(c.ticket), mask_phone(c.phone), c.attempts]
            for c in tables["unreachable_callbacks"]
        ],
    }


def _sheets(tables: dict[str, Any]) -> dict[str, Sheet]:
    rows = _rows(tables)
    month = tables.get("month", "")
    titles = {**EXPORTS, "league": f"{month}部门排名", "callbacks": f"{month}回访统计"}
    return {key: Sheet(titles[key], HEADERS[key], rows[key]) for key in EXPORTS}


ExportTable = Literal["all", "seats", "overdue", "soon", "waiting", "league", "callbacks", "unreachable"]


@router.get("/dashboard/export.xlsx")
def dashboard_export(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    user: SupervisorDep,
    table: Annotated[
        Literal["all", "seats", "overdue", "soon", "waiting", "league", "callbacks", "unreachable"], Query()
    ] = "all",
) -> Response:
    """One table of the dashboard, or all of them as sheets of one workbook."""
    tables = _tables(request, ctx, session, user, export=True)
    sheets = _sheets(tables)
    chosen = list(sheets.values()) if table == "all" else [sheets[table]]
    audit.record(session, action="dashboard.export", detail={"table": table}, **audit_fields(request, user))
    commit(session)
    name = "督办看板" if table == "all" else EXPORTS[table]
    return xlsx_response(chosen, f"{name}-{tables['now']:%Y%m%d-%H%M}.xlsx")
