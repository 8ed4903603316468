"""The web application: composes each package's views; holds no business rules of its own."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent_ui import api as ui_api
from agent_ui import live
from agent_ui.background import start_jobs
from agent_ui.context import UiContext
from agent_ui.deps import LoginRequired, login_url, page_user, render
from agent_ui.openapi import document_errors
from agent_ui.pages import (
    admin,
    auth,
    console,
    dashboard,
    evaluation,
    portal,
    public,
    reports,
    survey,
    tickets,
    wall,
)
from callcenter.control import control_token, remote_call_centre
from callcenter.runtime import CallCentre
from callcenter.views import router as callcenter_router
from core import semantics
from core.accounts.sessions import SessionSigner, load_secret
from core.db import database_fault
from core.errors import HotlineError
from core.scheduler import Jobs
from core.web import RefuseNul, get_user, set_api_zone
from dispatch.attachments.views import router as attachments_router
from dispatch.callbacks.views import router as callbacks_router
from dispatch.intake import views as intake_views
from dispatch.views import router as dispatch_router
from knowledge_base.views import router as kb_router
from sla.evaluation_views import router as evaluation_router
from sla.hotspot_views import router as hotspot_router
from sla.overrides import apply_overrides
from sla.report.views import router as report_router
from sla.views import router as sla_router

logger = logging.getLogger("agent_ui")
STATIC = Path(__file__).with_name("static")


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get("accept", "")


def _error_page(request: Request, status: int, zh: str) -> Response:
    return render(request, request.app.state.ctx, "error.html", None, status, status=status, message=zh)


def _hotline_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HotlineError)
    if _wants_html(request):
        return _error_page(request, exc.status, exc.zh)
    return JSONResponse(
        status_code=exc.status,
        content={"error": type(exc).__name__, "detail": str(exc), "detail_zh": exc.zh},
        headers=exc.headers,
    )


def _database_error(request: Request, exc: Exception) -> Response:
    fault = database_fault(exc)
    logger.error("%s %s: %s (%s)", request.method, request.url.path, fault, type(exc).__name__)
    return _hotline_error(request, fault)


HTTP_ZH = {401: "请先登录", 403: "无权访问", 404: "未找到", 405: "不支持的请求方法", 422: "请求内容有误"}


def _http_error(request: Request, exc: Exception) -> Response:
    """Every error has the same shape: {"error", "detail", "detail_zh"}; pages get an error page."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and request.url.path.startswith("/open311/"):
        return intake_views.open311_not_found(request.url.path)  # the specification's error shape
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    zh = getattr(exc, "zh", None) or HTTP_ZH.get(exc.status_code, detail)
    if _wants_html(request):
        if exc.status_code == 401:
            return RedirectResponse(login_url(request.url.path), status_code=303)
        return _error_page(request, exc.status_code, zh)
    return JSONResponse(
        status_code=exc.status_code,
        content={"error": type(exc).__name__, "detail": detail, "detail_zh": zh},
        headers=getattr(exc, "headers", None),
    )


def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(login_url(exc.next_url), status_code=303)


def _problem(err: dict[str, Any]) -> dict[str, str]:
    if err["type"] == "json_invalid":
        return {
            "field": "body",
            "reason": f"not valid JSON ({err.get('ctx', {}).get('error', 'decode error')})",
        }
    return {"field": ".".join(str(p) for p in err["loc"] if p != "body") or "body", "reason": err["msg"]}


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(err) for err in exc.errors()]
    summary = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
    zh = f"请求内容有误：{ui_api.problems_zh(problems)}"
    if _wants_html(request):  # a page, never a raw JSON body
        return _error_page(request, 422, zh)
    return JSONResponse(
        status_code=422,
        content={
            "error": "ValidationError",
            "detail": f"invalid request: {summary}",
            "detail_zh": zh,
            "problems": problems,
        },
    )


def _load_calendar_overrides(ctx: UiContext) -> None:
    try:
        with ctx.unit_of_work() as session:
            apply_overrides(session, ctx.calendar)
    except SQLAlchemyError:
        logger.warning("calendar overrides not loaded (run `hotline init-db` to create the tables)")


def create_app(ctx: UiContext, background: bool = False) -> FastAPI:
    """The app; `background` starts the SLA sweeps with it (`hotline serve`), tests leave it off."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        jobs: Jobs | None = None
        if background and ctx.settings.callcenter.mode == "split":
            # Stateless: calls are the active controller's, and so is the scheduled work.
            _app.state.callcentre = remote_call_centre(ctx, _app.state.control_token)
        elif background:
            if ctx.settings.callcenter.enabled:
                from callcenter.runtime import start_call_centre

                _app.state.callcentre, _app.state.callcentre_error = await start_call_centre(ctx)
            jobs, _app.state.survey_runner = start_jobs(ctx, _app.state.callcentre)
        if background:
            # What was loaded at start (models, dictionaries: some 450 000 objects) lives as long as the
            # process: kept out of the collector's way, a full collection no longer holds a request
            # for 100 ms and more (the duplicate suggestions' p99, hotline.benches.duplicates).
            gc.freeze()
        yield
        if jobs is not None:
            jobs.shutdown()
        if isinstance(_app.state.callcentre, CallCentre):
            await _app.state.callcentre.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="12345 政务服务便民热线",
        description="Tickets, dispatch, deadlines and callbacks of a 12345 citizen-service hotline.",
        version="0.1.0",
    )
    app.state.ctx = ctx
    set_api_zone(ctx.settings.hotline.timezone)
    # the embedding model is loaded (or found missing, and said so) at start, not on the first call
    understanding = ctx.settings.understanding
    semantics.configure(understanding.encoder, understanding.threads or None)
    document_errors(app)
    app.add_middleware(RefuseNul, shape=intake_views.open311_nul_refused)
    app.state.callcentre = None  # callcenter.runtime.CallCentre when `hotline serve` runs the telephony
    app.state.callcentre_error = None  # why it could not start (e.g. Kamailio not installed)
    app.state.survey_runner = None  # dispatch.callbacks.runner.SurveyRunner under `hotline serve`
    auth_settings = ctx.settings.auth
    secret = load_secret(
        auth_settings.session_secret, ctx.settings.resolve(auth_settings.session_secret_file)
    )
    app.state.signer = SessionSigner(secret, auth_settings.session_hours * 3600)
    app.state.control_token = control_token(secret)  # split mode: what the controller listens to
    _load_calendar_overrides(ctx)

    app.add_exception_handler(HotlineError, _hotline_error)
    # A database error anywhere in a request (a query, not only the commit): the same clear answer,
    # a lost race as 409 and a database that is down, full or out of connections as 503, in Chinese.
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(LoginRequired, _login_required)
    # Who may reach what, in one place: every staff router requires a login at router level (the
    # API answers 401, a page redirects to the login page); each view then checks the role it needs.
    staff_api = (
        dispatch_router,
        sla_router,
        evaluation_router,
        hotspot_router,
        report_router,
        kb_router,
        callcenter_router,
        callbacks_router,
        ui_api.router,
        ui_api.admin_router,
        intake_views.police_staff_router,
        attachments_router,
    )
    for router in staff_api:
        app.include_router(router, dependencies=[Depends(get_user)])
    for page in (console, portal, tickets, dashboard, evaluation, reports, admin, wall):
        app.include_router(page.router, dependencies=[Depends(page_user)])
    # Open to citizens and partner systems, each with its own check (an app's api_key, a signed
    # hand-over, a rate limit, a single-use survey link); the live stream checks its viewer itself.
    public_api = (
        ui_api.system_router,
        intake_views.open311_router,
        intake_views.police_router,
        intake_views.public_router,
    )
    for router in public_api:
        app.include_router(router)
    for page in (auth, public, survey):
        app.include_router(page.router)
    app.include_router(live.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:  # browsers ask for it on every page
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    return app
