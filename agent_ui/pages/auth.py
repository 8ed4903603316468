"""Login, logout and the landing redirect."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agent_ui.deps import PageCsrfDep, home_of, render, set_session_cookie
from core import audit
from core.accounts.service import password_fingerprint
from core.accounts.sessions import SessionData
from core.web import (
    ContextDep,
    SessionDep,
    audit_fields,
    checked_login,
    read_session,
    user_of_session,
)

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str | None:
    """Only a path of this site (no "//host", no scheme): the login form cannot send people elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    user = user_of_session(session, read_session(request))
    return RedirectResponse(home_of(user) if user else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, ctx: ContextDep, session: SessionDep, next: str | None = None) -> Response:
    user = user_of_session(session, read_session(request))
    if user is not None:
        return RedirectResponse(_safe_next(next) or home_of(user), status_code=303)
    return render(request, ctx, "login.html", None, next=_safe_next(next) or "", username="", error=None)


@router.post("/login", response_class=HTMLResponse, dependencies=[PageCsrfDep])
def login(
    request: Request,
    ctx: ContextDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    username, next = username.strip(), next[:512]
    if not username or not password:
        return render(
            request, ctx, "login.html", None, 422, next=next, username=username, error="请输入用户名和密码"
        )
    if len(username) > 64 or len(password) > 256:  # no account has such a name or password
        return render(
            request, ctx, "login.html", None, 401, next=next, username=username[:64], error="用户名或密码错误"
        )
    result = checked_login(ctx, request, username, password)
    if result.user is None:
        return render(
            request, ctx, "login.html", None, 401, next=next, username=username, error=result.message_zh
        )
    user = result.user
    with ctx.unit_of_work() as session:
        audit.record(session, action="login", **audit_fields(request, user))
    response = RedirectResponse(_safe_next(next) or home_of(user), status_code=303)
    set_session_cookie(response, request, SessionData.logged_in(user.id, password_fingerprint(user)))
    return response


@router.post("/logout", dependencies=[PageCsrfDep])
def logout(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    user = user_of_session(session, read_session(request))
    if user is not None:
        audit.record(session, action="logout", **audit_fields(request, user))
        session.commit()
    response = RedirectResponse("/login", status_code=303)
    set_session_cookie(response, request, SessionData.anonymous())
    return response
