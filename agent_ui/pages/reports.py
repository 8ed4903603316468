"""The monthly analysis reports: a list to browse and download, and a form to make one now."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from agent_ui.deps import SupervisorDep, render
from core import audit
from core.web import ContextDep, SessionDep, audit_fields, commit
from sla.evaluation import previous_month
from sla.report.service import report_file, reports

router = APIRouter(include_in_schema=False)
MEDIA = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, ctx: ContextDep, user: SupervisorDep) -> Response:
    last = previous_month(ctx.clock.now().date().replace(day=1))
    return render(request, ctx, "reports.html", user, files=reports(ctx), default_month=f"{last:%Y-%m}")


@router.get("/reports/{name}")
def download(
    name: str, request: Request, ctx: ContextDep, session: SessionDep, user: SupervisorDep
) -> Response:
    found = report_file(ctx, name)
    audit.record(session, action="report.download", detail={"file": name}, **audit_fields(request, user))
    commit(session)
    return FileResponse(found.path, media_type=MEDIA[found.kind], filename=found.path.name)
