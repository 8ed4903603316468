"""The citizens' pages, no login: the mayor's mailbox (/xinxiang), the status look-up (/chaxun) and
the public disclosure of closed tickets (/gongkai). Simplified Chinese, laid out for a phone first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from agent_ui.deps import PageCsrfDep, render
from core.errors import HotlineError
from core.web import ContextDep, SessionDep, client_ip
from dispatch import catalog
from dispatch.intake import citizen, disclosure

router = APIRouter(include_in_schema=False)

LETTER_FIELDS_ZH = {
    "content": "反映内容（5至2000字）",
    "phone": "手机号码（11位）",
    "name": "姓名（32字以内）",
    "address": "地址（200字以内）",
}
LOOKUP_FIELDS_ZH = {"number": "工单号（如 20261116-0001）", "phone_last4": "手机号后四位（4位数字）"}


def _problems(exc: ValidationError, labels: dict[str, str]) -> list[str]:
    fields = dict.fromkeys(str(e["loc"][0]) for e in exc.errors() if e["loc"])
    return [f"请填写正确的{labels.get(f, f)}" for f in fields]


def _page(request: Request, ctx: Any, template: str, status_code: int = 200, **context: Any) -> Response:
    limits = ctx.settings.dispatch.attachments
    context = {"max_files": limits.max_per_letter, "max_mb": limits.max_bytes // (1024 * 1024), **context}
    response = render(request, ctx, template, None, status_code, **context)
    response.headers["Cache-Control"] = "no-store"
    return response


# ---- the mayor's mailbox --------------------------------------------------------------------------


@router.get("/xinxiang", response_class=HTMLResponse)
def mailbox(request: Request, ctx: ContextDep) -> Response:
    return _page(request, ctx, "public/mailbox.html", form={}, errors=[])


@router.post("/xinxiang", response_class=HTMLResponse, dependencies=[PageCsrfDep])
async def send_letter(
    request: Request,
    ctx: ContextDep,
    content: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    private: Annotated[str, Form()] = "",
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    form = {"content": content, "phone": phone, "name": name, "address": address, "private": bool(private)}
    read = ctx.settings.dispatch.attachments.max_bytes + 1  # one byte past the limit is enough to refuse
    files = [(f.filename, await f.read(read)) for f in photos or [] if f.filename]
    try:
        letter = citizen.Letter.model_validate(form)
    except ValidationError as exc:
        return _page(
            request, ctx, "public/mailbox.html", 422, form=form, errors=_problems(exc, LETTER_FIELDS_ZH)
        )
    try:
        client = client_ip(request) or "-"  # the database work off the event loop
        number = await run_in_threadpool(citizen.submit_letter, ctx, letter, client, files)
    except HotlineError as exc:  # too many letters, or a file that is too large or not accepted
        return _page(request, ctx, "public/mailbox.html", exc.status, form=form, errors=[exc.zh])
    return _page(request, ctx, "public/mailbox_done.html", number=number, private=letter.private)


# ---- the status look-up --------------------------------------------------------------------------


@router.get("/chaxun", response_class=HTMLResponse)
def lookup_form(request: Request, ctx: ContextDep) -> Response:
    return _page(request, ctx, "public/lookup.html", form={}, errors=[], result=None)


@router.post("/chaxun", response_class=HTMLResponse, dependencies=[PageCsrfDep])
def lookup(
    request: Request,
    ctx: ContextDep,
    number: Annotated[str, Form()] = "",
    phone_last4: Annotated[str, Form()] = "",
) -> Response:
    form = {"number": number.strip(), "phone_last4": phone_last4.strip()}
    try:
        query = citizen.LookUp.model_validate(form)
        result = citizen.look_up(ctx, query, client_ip(request) or "-")
    except ValidationError as exc:
        return _page(
            request,
            ctx,
            "public/lookup.html",
            422,
            form=form,
            errors=_problems(exc, LOOKUP_FIELDS_ZH),
            result=None,
        )
    except HotlineError as exc:
        return _page(request, ctx, "public/lookup.html", exc.status, form=form, errors=[exc.zh], result=None)
    return _page(request, ctx, "public/lookup.html", form=form, errors=[], result=result)


# ---- public disclosure ---------------------------------------------------------------------------


@router.get("/gongkai", response_class=HTMLResponse)
def disclosure_list(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    category: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{0,32}$")] = None,
) -> Response:
    size = ctx.settings.intake.disclosure_page_size
    result = disclosure.disclosure_page(session, page, size, category or None)
    categories = catalog.categories(session)
    return _page(
        request,
        ctx,
        "public/disclosure.html",
        result=result,
        category=category or "",
        categories=[(c.code, c.name) for c in categories if c.handling != "on_the_spot"],
    )
