"""JSON API of the monthly report: list the reports, make one now."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, StringConstraints

from core.accounts.actor import Actor
from core.accounts.models import Role
from core.errors import NotPermitted, RuleViolation
from core.web import ActorDep, ContextDep, SessionDep, api_router
from sla.evaluation import parse_month
from sla.report.service import ReportFile, make_report, reports

router = api_router(prefix="/api", tags=["reports"])
READERS = (Role.SUPERVISOR, Role.ADMIN)


def check_reader(actor: Actor) -> None:
    if actor.role not in READERS:
        raise NotPermitted("the monthly reports are for supervisors", "仅督办员可以查看月度分析报告")


class ReportOut(BaseModel):
    month: str
    kind: str
    name: str
    size: int
    made_at: datetime
    url: str


def report_out(r: ReportFile) -> ReportOut:
    return ReportOut(
        month=r.month,
        kind=r.kind,
        name=r.path.name,
        size=r.size,
        made_at=r.made_at,
        url=f"/reports/{r.path.name}",
    )


class MakeIn(BaseModel):
    month: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{4}-\d{2}$")]


@router.get("/reports")
def list_reports(ctx: ContextDep, actor: ActorDep) -> list[ReportOut]:
    check_reader(actor)
    return [report_out(r) for r in reports(ctx)]


@router.post("/reports", status_code=201)
def make(body: MakeIn, ctx: ContextDep, session: SessionDep, actor: ActorDep) -> list[ReportOut]:
    """Make (or make again) a month's report: the PDF and the XLSX."""
    check_reader(actor)
    first = parse_month(body.month)
    if first > ctx.clock.now().date():
        raise RuleViolation("that month has not begun", "该月份尚未开始，不能生成报告")
    return [report_out(r) for r in make_report(session, ctx, first)]
