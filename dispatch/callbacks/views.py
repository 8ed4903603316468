"""JSON API of the callbacks: the queue for the seat console and the supervisors, an operator's
callback (place the call, enter the result), survey links by SMS, opt-outs, the missed-call list and
the figures (满意率, 回访率, reopens)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from callcenter.dialer import Dialer
from callcenter.models import CallEvent, CallRecord, Seat
from callcenter.service import CallCenterError, mask_phone
from core import audit
from core.accounts.actor import actor_of
from core.accounts.models import Role, User
from core.errors import NotPermitted
from core.web import ContextDep, Flag, LocalDateTime, SessionDep, UserDep, api_router, audit_fields, commit
from dispatch import schemas
from dispatch.callbacks.links import send_survey_link
from dispatch.callbacks.missed import (
    MISSED_OUTCOME_LABELS,
    MissedOutcome,
    missed_call,
    missed_calls,
    record_missed_outcome,
)
from dispatch.callbacks.models import (
    CALLBACK_STATE_LABELS,
    RESULT_LABELS,
    AttemptOutcome,
    Callback,
    CallbackAttempt,
    CallbackState,
)
from dispatch.callbacks.service import (
    BadCallbackInput,
    CallbackError,
    CallbackService,
    Claim,
    callbacks_of,
    require_calling_hours,
)
from dispatch.callbacks.sms import backend_for
from dispatch.callbacks.stats import GroupBy, callback_figures

# Ids beyond the database integer are refused as bad input (422), not looked up.
CallbackId = Annotated[int, Path(ge=1, le=schemas.MAX_ID)]

router = api_router(prefix="/api", tags=["callbacks"])
T = TypeVar("T")
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None
StateName = Literal["pending", "calling", "done", "unreachable", "opted_out", "cancelled"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResultBody(_Body):
    """What the operator's call came to: a result (the citizen answered), or why nobody answered."""

    result: Literal["satisfied", "basically_satisfied", "dissatisfied"] | None = None
    solved: Flag | None = None
    outcome: Literal["answered", "no_answer", "busy", "hung_up"] = "answered"
    note: Note = None


class OptOutBody(_Body):
    phone: str = Field(pattern=r"^\+?[0-9][0-9-]{2,19}$")
    reason: Note = None


class MissedOutcomeBody(_Body):
    outcome: MissedOutcome
    note: Note = None


def _staff(user: User) -> None:
    if user.role_enum not in (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN):
        raise NotPermitted("only operators and supervisors make callbacks", "无权进行回访")


def _supervisor(user: User) -> None:
    if user.role_enum not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotPermitted("only supervisors may see the callback figures", "仅督办员（班长）可以查看")


def callback_out(callback: Callback, now: datetime) -> dict[str, Any]:
    ticket = callback.ticket
    return {
        "id": callback.id,
        "ticket_number": ticket.number,
        "ticket_state": ticket.state,
        "content": ticket.content[:80],
        "reply": (ticket.reply_text or "")[:200],
        "department": ticket.lead_department.name if ticket.lead_department else None,
        "phone": callback.phone,
        "phone_masked": mask_phone(callback.phone),
        "round": callback.round,
        "mode": callback.mode,
        "state": callback.state,
        "state_label": CALLBACK_STATE_LABELS[CallbackState(callback.state)],
        "attempts": callback.attempts,
        "next_attempt_at": callback.next_attempt_at.isoformat(),
        "due": callback.state == CallbackState.PENDING.value and callback.next_attempt_at <= now,
        "claimed_by": callback.claimed_by,
        "result": callback.result,
        "result_label": RESULT_LABELS.get(callback.result or ""),
        "solved": callback.solved,
        "channel": callback.channel,
    }


def missed_out(record: CallRecord) -> dict[str, Any]:
    return {
        "uid": record.uid,
        "caller": record.caller,
        "caller_masked": mask_phone(record.caller),
        "offered_at": record.offered_at.isoformat(),
        "outcome": record.outcome,
        "outcome_label": "排队放弃" if record.outcome == "abandoned" else "留言回电",
        "callback_outcome": record.callback_outcome,
        "callback_outcome_label": MISSED_OUTCOME_LABELS.get(MissedOutcome(record.callback_outcome))
        if record.callback_outcome
        else None,
        "called_back_at": record.called_back_at.isoformat() if record.called_back_at else None,
    }


def _controller(request: Request) -> Dialer | None:
    centre = getattr(request.app.state, "callcentre", None)
    return centre.controller if centre is not None else None


async def _on_controller(controller: Dialer, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on the controller's own loop (the controller is not thread-safe)."""
    loop = controller.loop
    if loop is None or loop is asyncio.get_running_loop():
        return await coroutine
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))


def _own_extension(session: Any, user: User) -> str:
    seat = session.scalar(select(Seat).where(Seat.operator_id == user.id))
    if seat is None:
        raise CallbackError(
            "sign in at a seat first: its phone takes the call", "请先签入坐席，回拨电话将接到您的坐席话机"
        )
    return str(seat.extension)


async def _place(
    request: Request, session: Any, user: User, number: str, ticket_id: int | None
) -> str | None:
    """Ring the citizen and then the operator's seat phone; None when the call centre is off (the
    operator then dials from the seat phone by hand and enters the result)."""
    controller = _controller(request)
    if controller is None:
        return None
    extension = _own_extension(session, user)
    call = await _on_controller(controller, controller.call_for_seat(number, extension, ticket_id))
    return call.uid


def _audit(
    session: Any, request: Request, user: User, action: str, number: str | None = None, **detail: Any
) -> None:
    """Every view of citizens' numbers and every action goes to the audit log, in the same transaction."""
    count = detail.pop("count", None)
    who = audit_fields(request, user)
    audit.record(session, action=action, ticket_number=number, count=count, detail=detail, **who)


def _claimer(user: User) -> str:
    return f"console:{user.username}"[:64]


# ---- the callback queue -------------------------------------------------------------------------


@router.get("/callbacks")
def list_callbacks(
    request: Request,
    user: UserDep,
    session: SessionDep,
    ctx: ContextDep,
    state: Annotated[list[StateName] | None, Query()] = None,
    mode: Literal["auto", "person"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """Callbacks in the given states (default: pending and unreachable), the due ones first."""
    _staff(user)
    states = list(state or ["pending", "unreachable"])
    rows = callbacks_of(ctx, session).listing(states, mode, limit)
    if rows:
        _audit(
            session, request, user, "callback.list", count=len(rows), numbers=[c.ticket.number for c in rows]
        )
        commit(session)
    return [callback_out(c, ctx.clock.now()) for c in rows]


@router.get("/callbacks/stats")
def stats(
    user: UserDep,
    session: SessionDep,
    start: LocalDateTime,
    end: LocalDateTime,
    group_by: GroupBy = "department",
) -> dict[str, Any]:
    """满意率, 回访率 and reopen counts for [start, end) per department, category or in all."""
    _supervisor(user)
    if end <= start:
        raise BadCallbackInput("end must be after start", "结束时间须晚于开始时间")
    rows = callback_figures(session, start, end, group_by)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "group_by": group_by,
        "rows": [r.as_dict() for r in rows],
    }


@router.get("/callbacks/{callback_id}")
def get_callback(
    callback_id: CallbackId, request: Request, user: UserDep, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    _staff(user)
    service = callbacks_of(ctx, session)
    out = callback_out(service.get(callback_id), ctx.clock.now())
    _audit(session, request, user, "callback.view", out["ticket_number"], callback=callback_id)
    commit(session)
    out["attempts_made"] = [_attempt_out(a) for a in service.attempts(callback_id)]
    return out


def _attempt_out(attempt: CallbackAttempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "channel": attempt.channel,
        "outcome": attempt.outcome,
        "started_at": attempt.started_at.isoformat(),
        "ended_at": attempt.ended_at.isoformat() if attempt.ended_at else None,
        "call_uid": attempt.call_uid,
        "digits": attempt.digits,
    }


@router.post("/callbacks/{callback_id}/dial")
async def dial_callback(
    callback_id: CallbackId, request: Request, user: UserDep, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    """An operator takes the callback: the attempt is claimed (committed) first, then the call placed."""
    _staff(user)
    service = callbacks_of(ctx, session)
    callback = service.get(callback_id)
    if not callback.phone:
        raise CallbackError(f"callback {callback_id} has no phone number", "该工单没有联系电话")
    if _controller(request) is not None:
        _own_extension(session, user)  # refuse before claiming when there is no seat to ring
    claim = service.claim(callback_id, _claimer(user), user.id)
    _audit(
        session,
        request,
        user,
        "callback.dial",
        claim.ticket_number,
        callback=callback_id,
        attempt=claim.attempt,
    )
    commit(session)
    try:
        uid = await _place(request, session, user, claim.phone or "", claim.ticket_id)
    except CallCenterError as exc:
        service.finish(claim, AttemptOutcome.FAILED, actor=actor_of(user))
        commit(session)
        raise exc
    if uid:
        _set_call_uid(session, claim, uid)
        commit(session)
    return {"callback_id": callback_id, "attempt": claim.attempt, "phone": claim.phone, "call_uid": uid}


def _set_call_uid(session: Any, claim: Claim, uid: str) -> None:
    attempt = session.get(CallbackAttempt, claim.attempt_id)
    if attempt is not None:
        attempt.call_uid = uid


@router.post("/callbacks/{callback_id}/result")
def callback_result(
    callback_id: CallbackId,
    body: ResultBody,
    request: Request,
    user: UserDep,
    session: SessionDep,
    ctx: ContextDep,
) -> dict[str, Any]:
    """The operator enters what their call came to. Without a call in progress, one is claimed now
    (the operator called from their own phone)."""
    _staff(user)
    if body.outcome == "answered" and body.result is None:
        raise BadCallbackInput(
            "an answered callback needs a result", "请选择回访结果（满意/基本满意/不满意）"
        )
    if body.outcome != "answered" and body.result is not None:
        raise BadCallbackInput("a result needs outcome 'answered'", "未接通时不能填写回访结果")
    service = callbacks_of(ctx, session)
    claim = _claim_of_user(service, callback_id, user)
    callback = service.finish(
        claim,
        AttemptOutcome(body.outcome),
        body.result,
        solved=body.solved,
        note=body.note,
        actor=actor_of(user),
    )
    _audit(session, request, user, "callback.result", claim.ticket_number, **body.model_dump(mode="json"))
    commit(session)
    return callback_out(callback, ctx.clock.now())


def _claim_of_user(service: CallbackService, callback_id: int, user: User) -> Claim:
    callback = service.get(callback_id)
    if callback.state == CallbackState.CALLING.value:
        if callback.claimed_by != _claimer(user):
            raise CallbackError(
                f"callback {callback_id} is being called by {callback.claimed_by}", "该回访正由他人拨打"
            )
        attempt = service.attempts(callback_id)[-1]
        ticket = callback.ticket
        return Claim(
            callback.id,
            attempt.id,
            attempt.number,
            ticket.id,
            ticket.number,
            callback.phone,
            ticket.reply_text,
        )
    return service.claim(callback_id, _claimer(user), user.id)


@router.post("/callbacks/{callback_id}/link")
def send_link(
    callback_id: CallbackId, request: Request, user: UserDep, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    """Text the citizen a web survey link (single use, expiring)."""
    _staff(user)
    settings = ctx.settings.callbacks
    callback = callbacks_of(ctx, session).get(callback_id)
    if callback.state not in (CallbackState.PENDING.value, CallbackState.UNREACHABLE.value):
        raise CallbackError(
            f"callback {callback_id} is {callback.state}", "该回访已完成或正在拨打，无需发送链接"
        )
    backend = backend_for(settings.sms, ctx.settings.base_dir)
    message = send_survey_link(
        session, ctx.clock, backend, callback, settings.public_base_url, settings.link_valid_hours
    )
    _audit(
        session, request, user, "callback.link", callback.ticket.number, sms=message.id, status=message.status
    )
    commit(session)
    return {
        "callback_id": callback_id,
        "sms_id": message.id,
        "status": message.status,
        "error": message.error,
    }


@router.post("/callbacks/opt-outs", status_code=201)
def opt_out(
    body: OptOutBody, request: Request, user: UserDep, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    """The citizen asked not to be called back: never dialled again, open callbacks closed."""
    _staff(user)
    closed = callbacks_of(ctx, session).opt_out(body.phone, body.reason)
    _audit(session, request, user, "callback.opt_out", phone=body.phone, closed=closed)
    commit(session)
    return {"phone": body.phone, "closed_callbacks": closed}


# ---- missed calls ---------------------------------------------------------------------------------


@router.get("/missed-calls")
def list_missed(
    request: Request, user: UserDep, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[dict[str, Any]]:
    """Abandoned calls and callback requests not called back yet, oldest first."""
    _staff(user)
    rows = missed_calls(session, limit)
    if rows:
        _audit(session, request, user, "missed_call.list", count=len(rows), calls=[r.uid for r in rows])
        commit(session)
    return [missed_out(r) for r in rows]


@router.post("/missed-calls/{uid}/dial")
async def dial_missed(
    uid: str, request: Request, user: UserDep, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    """Call the citizen back from the console (within the calling hours)."""
    _staff(user)
    record = missed_call(session, uid)
    require_calling_hours(ctx.settings.callbacks, ctx.clock.now())
    if record.callback_outcome:
        raise CallbackError(f"missed call {uid} was already called back", "该未接来电已回拨处理")
    call_uid = await _place(request, session, user, record.caller, record.ticket_id)
    session.add(
        CallEvent(
            call_id=record.id,
            at=ctx.clock.now(),
            kind="callback_dialled",
            detail={"call_uid": call_uid, "user_id": user.id},
        )
    )
    _audit(session, request, user, "missed_call.dial", call=uid, call_uid=call_uid)
    commit(session)
    return {"uid": uid, "caller": record.caller, "call_uid": call_uid}


@router.post("/missed-calls/{uid}/outcome")
def missed_outcome(
    uid: str, body: MissedOutcomeBody, request: Request, user: UserDep, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    """How the callback of a missed call went, written on its call record."""
    _staff(user)
    record = record_missed_outcome(session, ctx.clock, uid, body.outcome, user.id, body.note)
    _audit(session, request, user, "missed_call.outcome", call=uid, outcome=body.outcome.value)
    commit(session)
    return missed_out(record)
