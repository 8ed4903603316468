"""What every page needs: the logged-in user (or a redirect to the login page), role checks, the
CSRF token, and rendering a template inside the common layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from agent_ui.context import UiContext
from core.accounts.models import ROLE_LABELS, Role, User
from core.accounts.sessions import SessionData
from core.web import (
    ContextDep,
    CsrfDep,
    SessionDep,
    WebError,
    check_csrf,
    get_signer,
    read_session,
    user_of_session,
)
from dispatch.service import mask_phone
from dispatch.states import STATE_LABELS, TicketState

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))

HOME = {
    Role.OPERATOR: "/console",
    Role.LIAISON: "/portal",
    Role.SUPERVISOR: "/dashboard",
    Role.ADMIN: "/admin",
}


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    roles: frozenset[Role]


_ALL = frozenset({Role.OPERATOR, Role.LIAISON, Role.SUPERVISOR, Role.ADMIN})
_STAFF = frozenset({Role.SUPERVISOR, Role.ADMIN})
NAV = [
    NavItem("/console", "坐席工作台", frozenset({Role.OPERATOR, Role.SUPERVISOR})),
    NavItem("/portal", "部门工单", frozenset({Role.LIAISON})),
    NavItem("/dashboard", "督办看板", _STAFF),
    NavItem("/search", "工单查询", _ALL),
    NavItem("/evaluation", "三率考核", frozenset({Role.LIAISON, Role.SUPERVISOR, Role.ADMIN})),
    NavItem("/reports", "月度报告", _STAFF),
    NavItem("/admin", "系统管理", frozenset({Role.ADMIN})),
    NavItem("/admin/kb", "知识库", _STAFF),
    NavItem("/admin/audit", "审计日志", _STAFF),
]


class LoginRequired(Exception):
    """Raised by page dependencies; answered with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def login_url(next_url: str) -> str:
    return "/login?next=" + quote(next_url, safe="/")


def home_of(user: User) -> str:
    return HOME.get(Role(user.role), "/search")


def page_user(request: Request, session: SessionDep) -> User:
    user = user_of_session(session, read_session(request))
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return user


PageUserDep = Annotated[User, Depends(page_user)]


def page_csrf(request: Request, csrf: CsrfDep) -> None:
    """Classic form posts of the pages (login, logout) carry the session's token."""
    check_csrf(request, read_session(request), csrf)


PageCsrfDep = Depends(page_csrf)

FORBIDDEN_ZH = "您的角色无权访问此页面"


def roles(*allowed: Role) -> Callable[[User], User]:
    """A dependency: the logged-in user, if their role is one of `allowed`."""
    wanted = frozenset(allowed)

    def check(user: PageUserDep) -> User:
        if Role(user.role) not in wanted:
            raise WebError(status.HTTP_403_FORBIDDEN, "your role may not open this page", FORBIDDEN_ZH)
        return user

    return check


OperatorDep = Annotated[User, Depends(roles(Role.OPERATOR, Role.SUPERVISOR))]
LiaisonDep = Annotated[User, Depends(roles(Role.LIAISON))]
SupervisorDep = Annotated[User, Depends(roles(Role.SUPERVISOR, Role.ADMIN))]
AdminDep = Annotated[User, Depends(roles(Role.ADMIN))]


def fmt_time(value: datetime | None, pattern: str = "%m-%d %H:%M") -> str:
    return value.strftime(pattern) if value else "—"


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def state_label(state: str) -> str:
    return STATE_LABELS[TicketState(state)]


TEMPLATES.env.filters.update(time=fmt_time, rate=fmt_rate, state_label=state_label, masked=mask_phone)


def _session_for(request: Request) -> tuple[SessionData, bool]:
    data = read_session(request)
    return (data, False) if data is not None else (SessionData.anonymous(), True)


def set_session_cookie(response: Any, request: Request, data: SessionData) -> None:
    ctx: UiContext = request.app.state.ctx
    auth = ctx.settings.auth
    response.set_cookie(
        auth.session_cookie,
        get_signer(request).dumps(data),
        max_age=int(auth.session_hours * 3600),
        httponly=True,
        secure=auth.cookie_secure,
        samesite="lax",
        path="/",
    )


def render(
    request: Request,
    ctx: UiContext,
    template: str,
    user: User | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page in the common layout; an anonymous visitor gets a session (for the login form's token)."""
    data, fresh = _session_for(request)
    role = Role(user.role) if user else None
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "hotline_name": ctx.settings.hotline.name,
            "user": user,
            "role": role.value if role else None,
            "role_label": ROLE_LABELS[role] if role else "",
            "nav": [item for item in NAV if role in item.roles],
            "csrf_token": data.csrf,
            "callcenter_enabled": ctx.settings.callcenter.enabled,
            "path": request.url.path,
            "settings": ctx.settings,
            **context,
        },
        status_code=status_code,
    )
    if fresh:
        set_session_cookie(response, request, data)
    return response


__all__ = ["ContextDep", "SessionDep"]
