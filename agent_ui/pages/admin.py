"""Admin pages: users, seats, departments, the category tree, routing words, calendar overrides, the
knowledge base, and (for supervisors too) the audit log. Changes go through the JSON API."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from agent_ui.deps import AdminDep, SupervisorDep, render
from agent_ui.presenters import audit_detail, catalogue
from callcenter.service import seat_board
from core import audit
from core.accounts.models import ROLE_LABELS, Role
from core.accounts.service import list_users
from core.web import ContextDep, SessionDep
from dispatch import catalog
from dispatch.routing_words import LEVEL_LABELS, list_words
from knowledge_base import service as kb_service
from sla.calendar import coverage_warnings
from sla.overrides import KIND_LABELS, list_overrides

router = APIRouter(include_in_schema=False)

TABS = [
    ("/admin", "用户"),
    ("/admin/seats", "坐席"),
    ("/admin/departments", "部门"),
    ("/admin/categories", "分类与时限"),
    ("/admin/routing", "分派词"),
    ("/admin/calendar", "工作日历"),
    ("/admin/kb", "知识库"),
    ("/admin/audit", "审计日志"),
]


def _page(request: Request, ctx: ContextDep, user: object, template: str, **context: object) -> Response:
    return render(request, ctx, f"admin/{template}", user, tabs=TABS, **context)  # type: ignore[arg-type]


@router.get("/admin", response_class=HTMLResponse)
def users_page(request: Request, ctx: ContextDep, session: SessionDep, user: AdminDep) -> Response:
    staff_roles = [(r.value, ROLE_LABELS[r]) for r in Role if r != Role.SYSTEM]
    return _page(
        request,
        ctx,
        user,
        "users.html",
        users=list_users(session),
        roles=staff_roles,
        cat=catalogue(session),
        now=ctx.clock.now(),
    )


@router.get("/admin/seats", response_class=HTMLResponse)
def seats_page(request: Request, ctx: ContextDep, session: SessionDep, user: AdminDep) -> Response:
    return _page(
        request,
        ctx,
        user,
        "seats.html",
        seats=seat_board(session, ctx.clock.now()),
        configured=ctx.settings.callcenter.seats,
    )


@router.get("/admin/departments", response_class=HTMLResponse)
def departments_page(request: Request, ctx: ContextDep, session: SessionDep, user: AdminDep) -> Response:
    rows = catalog.departments(session)
    return _page(request, ctx, user, "departments.html", departments=rows)


@router.get("/admin/categories", response_class=HTMLResponse)
def categories_page(request: Request, ctx: ContextDep, session: SessionDep, user: AdminDep) -> Response:
    return _page(
        request,
        ctx,
        user,
        "categories.html",
        cat=catalogue(session),
        tree_file=str(ctx.settings.dispatch.category_tree),
    )


@router.get("/admin/routing", response_class=HTMLResponse)
def routing_page(request: Request, ctx: ContextDep, session: SessionDep, user: AdminDep) -> Response:
    return _page(
        request,
        ctx,
        user,
        "routing.html",
        words=list_words(session),
        levels=LEVEL_LABELS,
        cat=catalogue(session),
    )


@router.get("/admin/calendar", response_class=HTMLResponse)
def calendar_page(request: Request, ctx: ContextDep, session: SessionDep, user: AdminDep) -> Response:
    today = ctx.clock.now().date()
    days = [(today + timedelta(days=i)) for i in range(35)]
    return _page(
        request,
        ctx,
        user,
        "calendar.html",
        overrides=list_overrides(session),
        kinds=KIND_LABELS,
        days=[(d, ctx.calendar.is_working_day(d)) for d in days],
        config_holidays=ctx.settings.sla.calendar.extra_holidays,
        config_workdays=ctx.settings.sla.calendar.extra_workdays,
        today=today,
        calendar_warnings=coverage_warnings(ctx.calendar, today),
    )


@router.get("/admin/kb", response_class=HTMLResponse)
def kb_page(
    request: Request, ctx: ContextDep, session: SessionDep, user: SupervisorDep, q: str = ""
) -> Response:
    entries = kb_service.all_entries(session, active_only=False)
    if q.strip():
        needle = q.strip()
        entries = [
            e for e in entries if needle in e.question or needle in e.answer or needle in e.external_id
        ]
    cat = catalogue(session)
    names = {d.code: d.name for d in cat.departments}
    index = kb_service.index_status(session)
    return _page(
        request, ctx, user, "kb.html", entries=entries, q=q, cat=cat, department_names=names, index=index
    )


@router.get("/admin/kb/{external_id}", response_class=HTMLResponse)
def kb_entry_page(
    external_id: str, request: Request, ctx: ContextDep, session: SessionDep, user: SupervisorDep
) -> Response:
    try:
        entry = kb_service.get_entry(session, external_id)
    except kb_service.EntryNotFound:
        from core.web import WebError

        raise WebError(404, "no such entry", f"知识库条目 {external_id} 不存在") from None
    return _page(
        request,
        ctx,
        user,
        "kb_entry.html",
        entry=entry,
        history=kb_service.history(session, external_id),
        cat=catalogue(session),
    )


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    user: SupervisorDep,
    ticket: str = "",
    username: str = "",
) -> Response:
    rows = audit.entries(
        session, ticket_number=ticket.strip() or None, username=username.strip() or None, limit=300
    )
    names = {d.code: d.name for d in catalog.departments(session)}
    return _page(
        request,
        ctx,
        user,
        "audit.html",
        rows=rows,
        ticket=ticket,
        username=username,
        label=audit.action_label,
        roles={r.value: label for r, label in ROLE_LABELS.items()},
        detail=lambda d: audit_detail(d, names),
    )
