"""三率 pages: the league tables of a month (units and towns), the tickets behind a unit's figures
with the liaison's appeal form, and the appeals to decide. The figures come from sla.evaluation."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from agent_ui.deps import PageUserDep, render
from core import audit
from core.accounts.actor import actor_of
from core.accounts.models import Role
from core.spreadsheet import Sheet, rate, xlsx_response
from core.web import ContextDep, SessionDep, audit_fields, commit
from sla.appeals import APPEAL_STATE_LABELS, AppealState, appeal_deadline, appeals
from sla.evaluation import FIGURES, League, league_tables, previous_month, unit_facts, units_of
from sla.evaluation_views import check_unit, check_viewer, month_or_this, town_names
from sla.settings import FIGURE_LABELS, Figure

router = APIRouter(include_in_schema=False)
ViewQuery = Annotated[Literal["unit", "town"], Query()]
MonthQuery = Annotated[str | None, Query(max_length=7)]
VIEW_LABELS = {"unit": "承办单位", "town": "属地（按事发地）"}


def _leagues(ctx: Any, session: Any, month: str | None, view: str) -> tuple[Any, list[League]]:
    first = month_or_this(ctx, month)
    leagues = league_tables(
        session,
        ctx.settings.sla.evaluation,
        ctx.calendar,
        first,
        ctx.clock.now(),
        view,
        town_names(ctx),  # type: ignore[arg-type]
    )
    return first, leagues


@router.get("/evaluation", response_class=HTMLResponse)
def evaluation_page(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    user: PageUserDep,
    month: MonthQuery = None,
    view: ViewQuery = "unit",
) -> Response:
    actor = actor_of(user)
    check_viewer(actor)
    first, leagues = _leagues(ctx, session, month, view)
    settings = ctx.settings.sla.evaluation
    return render(
        request,
        ctx,
        "evaluation.html",
        user,
        month=f"{first:%Y-%m}",
        previous=f"{previous_month(first):%Y-%m}",
        view=view,
        views=VIEW_LABELS,
        leagues=leagues,
        figures=FIGURE_LABELS,
        weights={f: w for f, w in settings.weights.items() if w > 0},
        settings=settings,
        own_code=user.department.code if user.department else None,
    )


HEADERS = [
    "组别",
    "名次",
    "单位",
    "综合得分",
    "等次",
    *FIGURE_LABELS.values(),
    "考核工单",
    "申诉核减",
    "上月得分",
    "上月名次",
    "名次变化",
]


def _tier(s: Any) -> str:
    if s.score is None:
        return "—"
    return s.tier or "样本不足"


def league_rows(leagues: list[League]) -> list[list[Any]]:
    rows = []
    for league in leagues:
        for s in league.rows:
            rates = [rate(s.rate(f)) for f in FIGURES]
            history = [s.previous_score, s.previous_rank, s.rank_change]
            rows.append(
                [
                    league.group,
                    s.rank or "—",
                    s.name,
                    s.score,
                    _tier(s),
                    *rates,
                    s.rated,
                    s.appealed,
                    *history,
                ]
            )
    return rows


@router.get("/evaluation/export.xlsx")
def evaluation_export(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    user: PageUserDep,
    month: MonthQuery = None,
    view: ViewQuery = "unit",
) -> Response:
    check_viewer(actor_of(user))
    first, leagues = _leagues(ctx, session, month, view)
    title = f"{first:%Y年%m月}三率考核（{VIEW_LABELS[view]}）"
    audit.record(
        session,
        action="evaluation.export",
        detail={"month": f"{first:%Y-%m}", "view": view},
        **audit_fields(request, user),
    )
    commit(session)
    return xlsx_response([Sheet(title[:31], HEADERS, league_rows(leagues))], f"{title}.xlsx")


@router.get("/evaluation/{key}", response_class=HTMLResponse)
def evaluation_unit(
    key: str,
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    user: PageUserDep,
    month: MonthQuery = None,
    view: ViewQuery = "unit",
    figure: Annotated[Figure | None, Query()] = None,
) -> Response:
    actor = actor_of(user)
    check_unit(actor, session, key, view)
    first = month_or_this(ctx, month)
    settings = ctx.settings.sla.evaluation
    facts = unit_facts(session, settings, ctx.calendar, first, ctx.clock.now(), key, view, figure)
    units = units_of(session, view, town_names(ctx))
    unit_name = next((u.name for u in units.values() if u.key == key), key)
    can_appeal = actor.role == Role.LIAISON and ctx.clock.now() <= appeal_deadline(first, settings)
    return render(
        request,
        ctx,
        "evaluation_unit.html",
        user,
        key=key,
        unit_name=unit_name,
        month=f"{first:%Y-%m}",
        view=view,
        figure=figure,
        figures=FIGURE_LABELS,
        facts=facts,
        can_appeal=can_appeal,
        appeal_until=appeal_deadline(first, settings),
    )


@router.get("/appeals", response_class=HTMLResponse)
def appeals_page(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    user: PageUserDep,
    state: Annotated[AppealState | None, Query()] = "pending",
) -> Response:
    actor = actor_of(user)
    check_viewer(actor)
    department = actor.department_id if actor.role == Role.LIAISON else None
    return render(
        request,
        ctx,
        "appeals.html",
        user,
        rows=appeals(session, state, department),
        state=state,
        states=APPEAL_STATE_LABELS,
        figures=FIGURE_LABELS,
        can_decide=actor.role in (Role.SUPERVISOR, Role.ADMIN),
    )
