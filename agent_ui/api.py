"""JSON endpoints the pages call besides the packages' own APIs: triage of what a caller says, the
seat console's one-step register-and-act, and the admin pages. Each only composes package services."""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.orm import Session

from agent_ui.context import UiContext
from callcenter.runtime import telephony_status
from core import audit
from core.accounts.models import Role, User
from core.accounts.service import AccountError, create_user, list_users, role_label, update_user
from core.db import ping
from core.web import (
    ContextDep,
    Flag,
    IsoDate,
    SessionDep,
    UserDep,
    WebError,
    api_router,
    client_ip,
    commit,
    require_role,
    via_of,
)
from dispatch import catalog, schemas
from dispatch.catalog import upsert_department
from dispatch.desk import DeskDep
from dispatch.routing_words import RoutingWordError, add_word, list_words, remove_word
from dispatch.states import Action
from dispatch.triage_service import TriageOut, triage_text, understanding_status
from knowledge_base import service as kb_service
from sla.overrides import OverrideError, apply_overrides, list_overrides, remove_override, set_override

router = api_router(prefix="/api", tags=["pages"])
system_router = api_router(prefix="/api", tags=["system"])  # for monitoring, no login
admin_router = api_router(prefix="/api/admin", tags=["admin"])


@system_router.get("/health")
def health(request: Request, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    """For monitoring, no login: the database answers; the telephony and speech to text say how they are."""
    ping(session)
    state = request.app.state
    telephony = telephony_status(state.callcentre, state.callcentre_error, ctx.settings.callcenter)
    speech = telephony.get("speech", {})
    understanding = understanding_status()
    return {
        "status": "degraded" if understanding["state"] == "degraded" else "ok",
        "understanding": understanding["state"],
        "understanding_reason": understanding["reason"],
        "callcenter": "on" if telephony.get("enabled") else "off",
        "callcenter_reason": telephony.get("reason"),
        "transcription": speech.get("transcription", "off"),
        "transcription_reason": speech.get("reason"),
        "live_text": speech.get("live", "off"),
        # split mode: which of the web processes answered, and whether live updates cross processes
        "mode": ctx.settings.callcenter.mode,
        "web_process": os.getpid(),
        "live_updates": _live_updates(ctx),
    }


def _live_updates(ctx: ContextDep) -> str:
    relay = ctx.events.relay
    if relay is None:
        return "in-process"
    return "relayed" if getattr(relay, "connected", False) else "relay disconnected"


# ---- Chinese messages for validation problems ---------------------------------------------------

FIELD_ZH = {
    "content": "诉求内容",
    "caller_phone": "来电号码",
    "caller_name": "来电人",
    "address": "地址",
    "answer": "答复内容",
    "result": "办理结果",
    "reason": "原因",
    "days": "天数",
    "department": "部门",
    "subcategory_id": "小类",
    "note": "备注",
    "username": "用户名",
    "password": "密码",
    "display_name": "姓名",
    "role": "角色",
    "word": "分派词",
    "day": "日期",
    "kind": "类型",
    "text": "查询内容",
    "into": "并入工单号",
    "code": "部门编码",
    "name": "名称",
}


def _reason_zh(reason: str) -> str:
    lowered = reason.lower()
    for needle, zh in (
        ("at least 1 character", "不能为空"),
        ("field required", "必填"),
        ("should match pattern", "格式不正确"),
        ("greater than or equal", "数值过小"),
        ("less than or equal", "数值过大"),
        ("valid integer", "须为整数"),
        ("valid date", "须为日期"),
        ("at most", "太长"),
        ("extra inputs", "不允许的字段"),
    ):
        if needle in lowered:
            return zh
    return reason


def problems_zh(problems: list[dict[str, str]]) -> str:
    parts = []
    for p in problems:
        field = p["field"].split(".")[-1]
        parts.append(f"{FIELD_ZH.get(field, field)}{_reason_zh(p['reason'])}")
    return "；".join(parts)


# ---- triage: what the router and the knowledge base make of a text ------------------------------


@router.get("/triage")
def triage_endpoint(
    ctx: ContextDep,
    session: SessionDep,
    user: UserDep,
    text: Annotated[str, Query(min_length=1, max_length=4000)],
) -> TriageOut:
    """Category, sub-category, department, deadline if dispatched now, and knowledge-base answers."""
    require_role(user, Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
    return triage_text(session, text, ctx.rules, ctx.clock.now())


class DeadlinePreview(BaseModel):
    subcategory_id: int
    deadline_days: int
    deadline: datetime | None
    first_reply_due: datetime | None


@router.get("/deadline")
def deadline_preview(
    ctx: ContextDep,
    session: SessionDep,
    user: UserDep,
    subcategory_id: Annotated[int, Query(ge=1, le=schemas.MAX_ID)],
) -> DeadlinePreview:
    """The deadline a ticket of this sub-category gets if dispatched now (working days and a date)."""
    require_role(user, Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
    sub = catalog.subcategory(session, subcategory_id)
    if sub is None:
        raise WebError(status.HTTP_404_NOT_FOUND, "no such sub-category", "所选小类不存在")
    deadline = first = None
    if sub.category.handling != "on_the_spot":
        deadline, first = ctx.rules.at_dispatch(
            sub.deadline_days, sub.category.handling == "emergency", ctx.clock.now()
        )
    return DeadlinePreview(
        subcategory_id=sub.id, deadline_days=sub.deadline_days, deadline=deadline, first_reply_due=first
    )


# ---- the seat console: register and answer / dispatch in one step -------------------------------


class ConsoleTicket(BaseModel):
    """A new ticket and what happens to it at once: answered on the spot, dispatched, or only registered."""

    model_config = ConfigDict(extra="forbid")
    ticket: schemas.TicketCreate
    answer_on_spot: schemas.AnswerOnSpotBody | None = None
    dispatch: schemas.DispatchBody | None = None


@router.post("/console/tickets", status_code=status.HTTP_201_CREATED)
def console_ticket(body: ConsoleTicket, desk: DeskDep) -> schemas.TicketOut:
    if body.answer_on_spot and body.dispatch:
        raise WebError(422, "answer on the spot or dispatch, not both", "直接答复与派单只能选其一")
    then: tuple[Action, BaseModel] | None = None
    if body.answer_on_spot:
        then = (Action.ANSWER_ON_SPOT, body.answer_on_spot)
    elif body.dispatch:
        then = (Action.DISPATCH, body.dispatch)
    ticket = desk.register(body.ticket, then)
    if body.answer_on_spot and body.answer_on_spot.kb_entry_id:
        _count_kb_hit(desk.session, body.answer_on_spot.kb_entry_id)
    return desk.out(ticket)


def _count_kb_hit(session: Session, entry_id: str) -> None:

    try:
        kb_service.record_hit(session, entry_id)
        commit(session)
    except kb_service.EntryNotFound:
        session.rollback()


# ---- admin: users ------------------------------------------------------------------------------------


def admin_user(user: UserDep) -> User:
    require_role(user, Role.ADMIN)
    return user


AdminUserDep = Annotated[User, Depends(admin_user)]
Username = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.-]{2,64}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S", max_length=64)]
StaffRole = Literal["operator", "liaison", "supervisor", "admin"]


class UserOut(BaseModel):
    username: str
    display_name: str
    role: str
    role_label: str
    department: str | None
    active: bool
    locked_until: datetime | None
    failed_logins: int


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Username
    display_name: Name
    role: StaffRole
    department: str | None = None
    password: Annotated[str, StringConstraints(min_length=8, max_length=256)]


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: Name | None = None
    role: StaffRole | None = None
    department: str | None = None
    active: Flag | None = None
    password: Annotated[str, StringConstraints(min_length=8, max_length=256)] | None = None
    unlock: Flag = False


def user_out(user: User) -> UserOut:
    return UserOut(
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        role_label=role_label(user.role),
        department=user.department.code if user.department else None,
        active=user.active,
        locked_until=user.locked_until,
        failed_logins=user.failed_logins or 0,
    )


def _department_id(session: Session, code: str | None) -> int | None:
    if not code:
        return None
    found = catalog.department_id(session, code)
    if found is None:
        raise WebError(404, f"department {code!r} does not exist", f"部门 {code} 不存在")
    return found


def _admin_audit(
    ctx: UiContext, session: Session, admin: User, request_via: str, action: str, detail: dict[str, Any]
) -> None:
    audit.record(
        session,
        at=ctx.clock.now(),
        action=action,
        username=admin.username,
        user_id=admin.id,
        role=admin.role,
        via=request_via,
        detail=detail,
    )


def _refused(exc: AccountError | OverrideError | RoutingWordError) -> WebError:
    return WebError(exc.status, str(exc), exc.zh)  # 404 for what does not exist, else 422


@admin_router.get("/users")
def users(session: SessionDep, _admin: AdminUserDep) -> list[UserOut]:
    return [user_out(u) for u in list_users(session)]


@admin_router.post("/users", status_code=status.HTTP_201_CREATED)
def new_user(body: UserCreate, ctx: ContextDep, session: SessionDep, admin: AdminUserDep) -> UserOut:
    try:
        user = create_user(
            session,
            body.username,
            body.password,
            Role(body.role),
            body.display_name,
            ctx.clock.now(),
            _department_id(session, body.department),
        )
    except AccountError as exc:
        raise _refused(exc) from None
    _admin_audit(ctx, session, admin, "api", "user.create", {"username": body.username, "role": body.role})
    commit(session)
    session.refresh(user, ["department"])
    return user_out(user)


@admin_router.patch("/users/{username}")
def change_user(
    username: str, body: UserChange, ctx: ContextDep, session: SessionDep, admin: AdminUserDep
) -> UserOut:
    if username == admin.username and (body.active is False or (body.role and body.role != "admin")):
        raise WebError(422, "you cannot lock yourself out", "不能停用自己或取消自己的管理员角色")
    try:
        user = update_user(
            session,
            username,
            display_name=body.display_name,
            role=Role(body.role) if body.role else None,
            department_id=_department_id(session, body.department),
            active=body.active,
            password=body.password,
            unlock=body.unlock,
        )
    except AccountError as exc:
        raise _refused(exc) from None
    changed = body.model_dump(exclude_none=True, exclude={"password"}) | {
        "password_reset": bool(body.password)
    }
    _admin_audit(ctx, session, admin, "api", "user.update", {"username": username, **changed})
    commit(session)
    return user_out(user)


# ---- admin: departments ------------------------------------------------------------------------------


class DepartmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: schemas.DepartmentCode
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=128)]
    kind: Literal["department", "supervision", "enterprise", "township"] = "department"
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None
    active: Flag = True


class DepartmentRow(DepartmentIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")


@admin_router.get("/departments")
def departments(session: SessionDep, _admin: AdminUserDep) -> list[DepartmentRow]:
    return [DepartmentRow.model_validate(d) for d in catalog.departments(session)]


@admin_router.post("/departments")
def save_department(
    body: DepartmentIn, ctx: ContextDep, session: SessionDep, admin: AdminUserDep
) -> DepartmentRow:
    department = upsert_department(session, body.code, body.name, body.kind)
    department.phone, department.active = body.phone or None, body.active
    _admin_audit(ctx, session, admin, "api", "department.change", body.model_dump())
    commit(session)
    return DepartmentRow.model_validate(department)


# ---- admin: working-calendar overrides ---------------------------------------------------------------


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: IsoDate
    kind: Literal["holiday", "workday"]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)] | None = None


class OverrideOut(OverrideIn):
    created_by: str
    created_at: datetime


@admin_router.get("/calendar")
def calendar_overrides(session: SessionDep, _admin: AdminUserDep) -> list[OverrideOut]:
    return [
        OverrideOut(day=r.day, kind=r.kind, note=r.note, created_by=r.created_by, created_at=r.created_at)  # type: ignore[arg-type]
        for r in list_overrides(session)
    ]


def _calendar_changed(ctx: UiContext, session: Session, admin: User, detail: dict[str, Any]) -> None:
    _admin_audit(ctx, session, admin, "api", "calendar.change", detail)
    commit(session)
    apply_overrides(session, ctx.calendar)


@admin_router.post("/calendar", status_code=status.HTTP_201_CREATED)
def add_override(body: OverrideIn, ctx: ContextDep, session: SessionDep, admin: AdminUserDep) -> OverrideOut:
    try:
        row = set_override(session, body.day, body.kind, body.note, admin.display_name, ctx.clock.now())
    except OverrideError as exc:
        raise _refused(exc) from None
    _calendar_changed(ctx, session, admin, body.model_dump(mode="json"))
    return OverrideOut(
        day=row.day, kind=body.kind, note=row.note, created_by=row.created_by, created_at=row.created_at
    )


@admin_router.delete("/calendar/{day}", status_code=status.HTTP_204_NO_CONTENT)
def delete_override(day: date, ctx: ContextDep, session: SessionDep, admin: AdminUserDep) -> None:
    try:
        remove_override(session, day)
    except OverrideError as exc:
        raise _refused(exc) from None
    _calendar_changed(ctx, session, admin, {"day": day.isoformat(), "removed": True})


# ---- admin: routing words ----------------------------------------------------------------------------


class WordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    word: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S", max_length=64)]
    subcategory_id: int = Field(ge=1, le=schemas.MAX_ID)
    department: schemas.DepartmentCode | None = None
    level: Literal["strong", "words", "weak"] = "words"


class WordOut(BaseModel):
    id: int
    word: str
    category: str
    subcategory: str
    department: str | None
    level: str
    created_by: str
    created_at: datetime


def _word_out(row: Any) -> WordOut:
    return WordOut(
        id=row.id,
        word=row.word,
        category=row.subcategory.category.name,
        subcategory=row.subcategory.name,
        department=row.department_code,
        level=row.level,
        created_by=row.created_by,
        created_at=row.created_at,
    )


@admin_router.get("/routing-words")
def routing_words(session: SessionDep, _admin: AdminUserDep) -> list[WordOut]:
    return [_word_out(r) for r in list_words(session)]


@admin_router.post("/routing-words", status_code=status.HTTP_201_CREATED)
def new_routing_word(body: WordIn, ctx: ContextDep, session: SessionDep, admin: AdminUserDep) -> WordOut:
    try:
        row = add_word(
            session,
            body.word,
            body.subcategory_id,
            body.department,
            body.level,
            admin.display_name,
            ctx.clock.now(),
        )
    except RoutingWordError as exc:
        raise _refused(exc) from None
    _admin_audit(ctx, session, admin, "api", "routing.change", body.model_dump())
    commit(session)
    return _word_out(row)


@admin_router.delete("/routing-words/{word_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_routing_word(
    word_id: Annotated[int, Path(ge=1, le=schemas.MAX_ID)],
    ctx: ContextDep,
    session: SessionDep,
    admin: AdminUserDep,
) -> None:
    try:
        remove_word(session, word_id)
    except RoutingWordError as exc:
        raise _refused(exc) from None
    _admin_audit(ctx, session, admin, "api", "routing.change", {"removed": word_id})
    commit(session)


__all__ = ["HTTPException", "admin_router", "client_ip", "problems_zh", "router", "via_of"]
