"""JSON API of the 三率 evaluation: league tables, the tickets behind a figure, appeals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, Field, StringConstraints

from core.accounts.actor import Actor
from core.accounts.models import Role
from core.departments import Department
from core.errors import NotPermitted
from core.web import ActorDep, ContextDep, SessionDep, api_router, commit
from sla.appeals import APPEAL_STATE_LABELS, AppealState, appeals, decide_appeal, file_appeal
from sla.evaluation import Fact, View, league_tables, parse_month, unit_facts
from sla.settings import FIGURE_LABELS, Figure

router = api_router(prefix="/api", tags=["evaluation"])

Month = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{4}-\d{2}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
VIEWERS = (Role.SUPERVISOR, Role.ADMIN, Role.LIAISON)


def town_names(ctx: Any) -> dict[str, str]:
    """The gazetteer's towns by code (the town view of the league)."""
    return {t.code: t.name for t in ctx.gazetteer.towns}


def month_or_this(ctx: Any, month: str | None) -> date:
    return parse_month(month) if month else ctx.clock.now().date().replace(day=1)


def check_viewer(actor: Actor) -> None:
    if actor.role not in VIEWERS:
        raise NotPermitted("the evaluation is for supervisors and units", "仅督办员和承办单位可以查看考核")


def check_unit(actor: Actor, session: Any, key: str, view: View) -> None:
    """A liaison looks at the tickets behind their own unit's figures only."""
    check_viewer(actor)
    if actor.role == Role.LIAISON:
        own = session.get(Department, actor.department_id)
        if view != "unit" or own is None or own.code != key:
            raise NotPermitted(
                "a liaison sees the tickets of their own unit only", "只能查看本单位的考核明细"
            )


@router.get("/evaluation")
def evaluation(
    ctx: ContextDep,
    session: SessionDep,
    actor: ActorDep,
    month: Annotated[Month | None, Query(description="YYYY-MM (default: this month)")] = None,
    view: Annotated[Literal["unit", "town"], Query(description="unit: 承办单位; town: 按事发地")] = "unit",
) -> dict[str, Any]:
    """三率 league tables of a month: per group, rank, score, tier and change against last month."""
    check_viewer(actor)
    first = month_or_this(ctx, month)
    leagues = league_tables(
        session, ctx.settings.sla.evaluation, ctx.calendar, first, ctx.clock.now(), view, town_names(ctx)
    )
    return {
        "month": f"{first:%Y-%m}",
        "view": view,
        "figures": FIGURE_LABELS,
        "weights": ctx.settings.sla.evaluation.weights,
        "groups": [{"name": lg.group, "rows": [s.as_dict() for s in lg.rows]} for lg in leagues],
    }


class FactOut(BaseModel):
    ticket: str
    figure: Figure
    figure_label: str
    passed: bool
    at: datetime
    detail: str
    appeal: str | None


def fact_out(f: Fact) -> FactOut:
    return FactOut(
        ticket=f.number,
        figure=f.figure,  # type: ignore[arg-type]
        figure_label=FIGURE_LABELS[f.figure],
        passed=f.passed,
        at=f.at,
        detail=f.detail,
        appeal=f.appeal,
    )


@router.get("/evaluation/{key}")
def evaluation_tickets(
    key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")],
    ctx: ContextDep,
    session: SessionDep,
    actor: ActorDep,
    month: Annotated[Month | None, Query()] = None,
    view: Annotated[Literal["unit", "town"], Query()] = "unit",
    figure: Annotated[Figure | None, Query()] = None,
) -> list[FactOut]:
    """The tickets behind one unit's (or town's) figures: each rating, failed ones first."""
    check_unit(actor, session, key, view)
    first = month_or_this(ctx, month)
    facts = unit_facts(
        session, ctx.settings.sla.evaluation, ctx.calendar, first, ctx.clock.now(), key, view, figure
    )
    return [fact_out(f) for f in facts]


class AppealIn(BaseModel):
    ticket: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{8}-\d{3,8}$")]
    figure: Figure
    month: Month
    reason: Text
    evidence: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class DecisionIn(BaseModel):
    accept: bool
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class AppealOut(BaseModel):
    id: int
    ticket: str
    figure: Figure
    figure_label: str
    month: str
    reason: str
    evidence: str | None
    state: AppealState
    state_label: str
    created_at: datetime
    created_by: str
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None
    department_id: int = Field(exclude=True)


def appeal_out(appeal: Any, number: str) -> AppealOut:
    return AppealOut(
        id=appeal.id,
        ticket=number,
        figure=appeal.figure,
        figure_label=FIGURE_LABELS[appeal.figure],
        month=appeal.month,
        reason=appeal.reason,
        evidence=appeal.evidence,
        state=appeal.state,
        state_label=APPEAL_STATE_LABELS[appeal.state],
        created_at=appeal.created_at,
        created_by=appeal.created_by,
        decided_at=appeal.decided_at,
        decided_by=appeal.decided_by,
        decision_note=appeal.decision_note,
        department_id=appeal.department_id,
    )


@router.post("/appeals", status_code=201)
def create_appeal(body: AppealIn, ctx: ContextDep, session: SessionDep, actor: ActorDep) -> AppealOut:
    """A liaison appeals a failed rating of their unit (申诉), with a reason and evidence."""
    appeal = file_appeal(
        session,
        ctx.settings.sla.evaluation,
        ctx.calendar,
        actor,
        body.ticket,
        body.figure,
        parse_month(body.month),
        body.reason,
        body.evidence,
        ctx.clock.now(),
    )
    commit(session)
    return appeal_out(appeal, body.ticket)


@router.get("/appeals")
def list_appeals(
    session: SessionDep, actor: ActorDep, state: Annotated[AppealState | None, Query()] = None
) -> list[AppealOut]:
    check_viewer(actor)
    department = actor.department_id if actor.role == Role.LIAISON else None
    return [appeal_out(a, n) for a, n in appeals(session, state, department)]


@router.post("/appeals/{appeal_id}/decision")
def decide(
    appeal_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: DecisionIn,
    ctx: ContextDep,
    session: SessionDep,
    actor: ActorDep,
) -> AppealOut:
    """A supervisor accepts (the rating leaves the score) or rejects (with a reason) an appeal."""
    appeal, number = decide_appeal(session, actor, appeal_id, body.accept, body.note, ctx.clock.now())
    commit(session)
    return appeal_out(appeal, number)
