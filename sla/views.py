"""JSON API of the SLA package: KPIs, warnings, the sweep's status."""

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import select

from core.accounts.models import Role
from core.departments import Department
from core.errors import NotPermitted, RuleViolation
from core.web import ActorDep, ContextDep, IsoDate, SessionDep, api_router, commit
from dispatch.models import Ticket
from sla.calendar import coverage_warnings
from sla.kpi import GroupBy, compute_kpis
from sla.models import SlaWarning, SweepRun
from sla.supervision import sweep

router = api_router(prefix="/api", tags=["sla"])


class KpiOut(BaseModel):
    key: str | None
    name: str
    due: int
    closed: int
    closed_on_time: int
    on_time_rate: float | None
    overdue_open: int
    returns: int
    extensions: int
    avg_handling_working_days: float | None
    dispatched: int = 0
    dispatched_right: int = 0
    # 派单准确率: dispatches signed without a return or re-dispatch first / dispatches settled
    dispatch_accuracy: float | None = None
    suggested: int = 0
    suggestion_followed: int = 0
    # 建议采纳率: first dispatches to the department the router suggested / those with a suggestion
    suggestion_agreement: float | None = None


class KpiReport(BaseModel):
    start: date
    end: date
    group_by: str
    rows: list[KpiOut]


class WarningOut(BaseModel):
    id: int
    ticket: str
    level: str
    message: str
    department: str | None
    reference_at: datetime
    created_at: datetime


class SweepStatus(BaseModel):
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_raised: int
    note: str | None
    holder: str | None
    uncovered_years: list[int]
    # This year or the next without official holiday data, and what to do (Chinese, for screens).
    calendar_warnings: list[str]


def _month_start(day: date) -> date:
    return day.replace(day=1)


@router.get("/kpis")
def kpis(
    ctx: ContextDep,
    session: SessionDep,
    actor: ActorDep,
    start: Annotated[
        IsoDate | None, Query(description="first day (default: first day of this month)")
    ] = None,
    end: Annotated[
        IsoDate | None, Query(description="day after the last (default: first day of next month)")
    ] = None,
    group_by: GroupBy = "department",
) -> KpiReport:
    today = ctx.clock.now().date()
    first = start or _month_start(today)
    last = end or _month_start(_month_start(first) + timedelta(days=32))
    if last <= first:
        raise RuleViolation("end must be after start", "结束时间须晚于开始时间")
    if (last - first).days > 3 * 366:
        raise RuleViolation("a KPI period is at most three years", "统计期间最长三年")
    department_id = actor.department_id if actor.role == Role.LIAISON else None
    rows = compute_kpis(
        session,
        datetime.combine(first, time()),
        datetime.combine(last, time()),
        ctx.clock.now(),
        ctx.calendar.working_day_length.total_seconds() / 60,
        group_by,
        department_id,
    )
    return KpiReport(start=first, end=last, group_by=group_by, rows=[KpiOut(**r.as_dict()) for r in rows])


@router.get("/sla/warnings")
def warnings(
    session: SessionDep, actor: ActorDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[WarningOut]:
    query = (
        select(SlaWarning, Ticket.number, Department.code)
        .join(Ticket, Ticket.id == SlaWarning.ticket_id)
        .outerjoin(Department, Department.id == SlaWarning.department_id)
        .order_by(SlaWarning.created_at.desc(), SlaWarning.id.desc())
        .limit(limit)
    )
    if actor.role == Role.LIAISON:
        query = query.where(SlaWarning.department_id == actor.department_id)
    return [
        WarningOut(
            id=w.id,
            ticket=number,
            level=w.level,
            message=w.message,
            department=code,
            reference_at=w.reference_at,
            created_at=w.created_at,
        )
        for w, number, code in session.execute(query)
    ]


@router.get("/sla/status")
def sweep_status(ctx: ContextDep, session: SessionDep, _actor: ActorDep) -> SweepStatus:
    run = session.get(SweepRun, "sla")
    return SweepStatus(
        last_started_at=run.started_at if run else None,
        last_finished_at=run.finished_at if run else None,
        last_raised=run.raised if run else 0,
        note=run.note if run else None,
        holder=run.holder if run else None,
        uncovered_years=sorted(ctx.calendar.uncovered_years()),
        calendar_warnings=coverage_warnings(ctx.calendar, ctx.clock.now().date()),
    )


@router.post("/sla/sweep")
def sweep_now(ctx: ContextDep, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """Run a sweep now (supervisors), e.g. after correcting the calendar."""
    if actor.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotPermitted("only supervisors may start a sweep", "仅督办员可以立即执行督办扫描")
    result = sweep(session, ctx.settings.sla.warnings, ctx.calendar, ctx.clock.now())
    commit(session)
    if result is None:
        return {"swept": False, "reason": "another process is sweeping"}
    return {"swept": True, "raised": result.raised, "supervised": result.supervised}
