"""The citizen's web survey (回访) page: opened from the link in the SMS, no login, phone-sized.

The link is single use and expires; spending it and recording the result on the ticket happen in one
transaction, so a refused or failed submission spends nothing and a second one records nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from agent_ui.context import UiContext
from agent_ui.deps import PageCsrfDep, render
from core.web import ContextDep, SessionDep, commit
from dispatch.callbacks.links import LinkRefused, open_link, spend_link
from dispatch.callbacks.models import RESULT_LABELS
from dispatch.callbacks.service import callbacks_of

router = APIRouter(include_in_schema=False)
Token = Annotated[str, "the token of the link"]


def _page(request: Request, ctx: UiContext, status: int = 200, **context: object) -> Response:
    return render(request, ctx, "survey.html", None, status, results=RESULT_LABELS, **context)


@router.get("/s/{token}", response_class=HTMLResponse)
def survey_page(token: str, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    try:
        view = open_link(session, ctx.clock, token)
    except LinkRefused as exc:
        return _page(request, ctx, exc.status, refused=exc.zh)
    return _page(request, ctx, ticket=view.callback.ticket, token=token)


@router.post("/s/{token}", response_class=HTMLResponse, dependencies=[PageCsrfDep])
def survey_submit(
    token: str,
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    result: Annotated[str, Form()] = "",
    solved: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        view = open_link(session, ctx.clock, token)
    except LinkRefused as exc:
        return _page(request, ctx, exc.status, refused=exc.zh)
    if result not in RESULT_LABELS:  # nothing spent: the citizen chooses and sends again
        return _page(
            request,
            ctx,
            422,
            ticket=view.callback.ticket,
            token=token,
            error="请选择您的评价",
            solved=solved,
            note=note,
        )
    try:
        callback = spend_link(session, ctx.clock, token)
        answer = {"yes": True, "no": False}.get(solved)
        callbacks_of(ctx, session).record_web(callback, result, answer, note.strip() or None)
        commit(session)
    except LinkRefused as exc:
        session.rollback()
        return _page(request, ctx, exc.status, refused=exc.zh)
    return _page(request, ctx, done=RESULT_LABELS[result], number=callback.ticket.number)
