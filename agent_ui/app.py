"""The web application: composes each package's views; holds no business rules of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from callcenter.views import router as callcenter_router
from dispatch.errors import TicketError
from dispatch.views import router as dispatch_router
from hotline.context import HotlineContext
from knowledge_base.views import router as kb_router
from sla.views import router as sla_router


def _ticket_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TicketError)
    return JSONResponse(
        status_code=exc.status,
        content={"error": type(exc).__name__, "detail": str(exc), "detail_zh": exc.zh},
    )


HTTP_ZH = {401: "请先登录", 403: "无权访问", 404: "未找到", 405: "不支持的请求方法", 422: "请求内容有误"}


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    """Every error has the same shape: {"error", "detail", "detail_zh"}."""
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse(
        status_code=exc.status_code,
        content={
            "error": type(exc).__name__,
            "detail": detail,
            "detail_zh": HTTP_ZH.get(exc.status_code, detail),
        },
        headers=getattr(exc, "headers", None),
    )


def _problem(err: dict[str, Any]) -> dict[str, str]:
    if err["type"] == "json_invalid":
        return {
            "field": "body",
            "reason": f"not valid JSON ({err.get('ctx', {}).get('error', 'decode error')})",
        }
    return {"field": ".".join(str(p) for p in err["loc"] if p != "body") or "body", "reason": err["msg"]}


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(err) for err in exc.errors()]
    summary = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
    return JSONResponse(
        status_code=422,
        content={
            "error": "ValidationError",
            "detail": f"invalid request: {summary}",
            "detail_zh": f"请求内容有误：{summary}",
            "problems": problems,
        },
    )


def create_app(ctx: HotlineContext, background: bool = False) -> FastAPI:
    """The app; `background` starts the SLA sweeps with it (`hotline serve`), tests leave it off."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        scheduler = None
        if background and ctx.settings.sla.sweeps_enabled:
            from sla.scheduler import start_sweeps

            scheduler = start_sweeps(ctx)
        if background and ctx.settings.callcenter.enabled:
            from callcenter.runtime import CallCentre

            _app.state.callcentre = CallCentre(ctx)
            await _app.state.callcentre.start()
        yield
        if _app.state.callcentre is not None:
            await _app.state.callcentre.stop()
        if scheduler is not None:
            scheduler.shutdown(wait=True)

    app = FastAPI(
        lifespan=lifespan,
        title="12345 政务服务便民热线",
        description="Tickets, dispatch, deadlines and callbacks of a 12345 citizen-service hotline.",
        version="0.1.0",
    )
    app.state.ctx = ctx
    app.state.callcentre = None  # callcenter.runtime.CallCentre when `hotline serve` runs the call centre
    app.add_exception_handler(TicketError, _ticket_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(dispatch_router)
    app.include_router(sla_router)
    app.include_router(kb_router)
    app.include_router(callcenter_router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        name = ctx.settings.hotline.name
        return (
            f"<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>{name}</title>"
            f"<h1>{name}</h1><ul><li><a href='/docs'>接口文档 (OpenAPI)</a></li>"
            "<li><a href='/api/health'>系统状态</a></li></ul></html>"
        )

    return app
