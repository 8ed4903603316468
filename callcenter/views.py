"""JSON API of the call centre: seats, the queue, call records, and what a seat can do to a live call."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from callcenter.control import CallControl, RemoteCallCentre
from callcenter.models import CallEvent, CallRecord, SeatState
from callcenter.runtime import CallCentre, telephony_status
from callcenter.service import (
    CallCenterError,
    CallRecords,
    SeatService,
    mask_phone,
    seat_board,
    seat_view,
    waiting_calls,
)
from callcenter.stats import QueueFigures, queue_figures
from core.accounts.models import Role, User
from core.errors import NotPermitted
from core.web import ContextDep, LocalDateTime, SessionDep, UserDep, api_router, commit

router = api_router(prefix="/api", tags=["call centre"])

Extension = Annotated[str, Field(pattern=r"^[0-9]{2,8}$")]
CallUid = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,40}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeatStateBody(_Body):
    state: Literal["ready", "break", "logged_out"]


class TransferBody(_Body):
    target: Literal["110", "119", "120"]


class ConferenceBody(_Body):
    number: str = Field(pattern=r"^[0-9]{2,20}$", description="a department's number or an extension")


class SuperviseBody(_Body):
    mode: Literal["listen", "whisper", "barge"]
    extension: Extension | None = Field(default=None, description="the supervisor's phone; default: own seat")


def get_controller(request: Request) -> CallControl | None:
    centre = getattr(request.app.state, "callcentre", None)
    return centre.controller if centre is not None else None


ControllerDep = Annotated[CallControl | None, Depends(get_controller)]


def get_centre(request: Request) -> CallCentre | RemoteCallCentre | None:
    return getattr(request.app.state, "callcentre", None)


CentreDep = Annotated[CallCentre | RemoteCallCentre | None, Depends(get_centre)]


def phone_of(centre: CallCentre | RemoteCallCentre | None, extension: str) -> dict[str, Any]:
    """The seat phone's registration, for the seat bar: registered True/False, or None (unknown)."""
    contact = centre.phone_contact(extension) if centre is not None else None
    registered = None if contact is None else contact is not False
    label = {None: "话机状态未知", True: "话机已注册", False: "话机未注册"}[registered]
    return {
        "extension": extension,
        "registered": registered,
        "contact": contact or None,
        "label": label,
        "telephony": centre is not None,
    }


def _running(controller: CallControl | None) -> CallControl:
    if controller is None:
        raise CallCenterError("the call centre is not running on this server", "呼叫中心未启用")
    return controller


def check_staff(user: User) -> None:
    if user.role_enum not in (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN):
        raise NotPermitted("only operators and supervisors work with seats and calls", "无权使用呼叫中心功能")


def _supervisor(user: User) -> None:
    if user.role_enum not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotPermitted("only supervisors may do this", "仅督办员（班长）可以执行此操作")


@router.get("/seats")
def list_seats(user: UserDep, session: SessionDep, ctx: ContextDep) -> list[dict[str, Any]]:
    check_staff(user)
    return seat_board(session, ctx.clock.now())


@router.get("/seats/{extension}/phone")
def seat_phone(
    extension: Extension, user: UserDep, session: SessionDep, ctx: ContextDep, centre: CentreDep
) -> dict[str, Any]:
    """Whether the seat's phone is registered with Kamailio (the seat bar shows it)."""
    check_staff(user)
    SeatService(session, ctx.clock).get(extension)  # 404 for an unknown seat
    return phone_of(centre, extension)


@router.post("/seats/{extension}/state")
def change_seat_state(
    extension: Extension,
    body: SeatStateBody,
    user: UserDep,
    session: SessionDep,
    ctx: ContextDep,
    controller: ControllerDep,
    centre: CentreDep,
) -> dict[str, Any]:
    """An operator signs in, takes a break or signs out at their seat; a supervisor may do it for anyone.
    Ready needs the seat's phone registered when the telephony runs: a call offered to a seat without a
    phone would be bounced at once."""
    check_staff(user)
    seats = SeatService(session, ctx.clock)
    seat = seats.get(extension, lock=True)
    if body.state == "ready" and phone_of(centre, extension)["registered"] is False:
        raise CallCenterError(
            f"the phone of seat {extension} is not registered with the call centre",
            f"坐席 {extension} 的话机未注册，不能就绪：请打开话机或软电话，"
            f"用分机号 {extension} 注册到呼叫中心（注册成功后状态栏显示「话机已注册」），再点「就绪」",
        )
    if user.role_enum == Role.OPERATOR and seat.operator_id not in (None, user.id):
        raise NotPermitted(
            f"seat {extension} is taken by another operator", f"坐席 {extension} 已有其他话务员签入"
        )
    operator_id = user.id if user.role_enum == Role.OPERATOR else seat.operator_id
    seat = seats.change(
        extension,
        SeatState(body.state),
        operator_id=operator_id,
        reason="pause" if body.state == "break" else None,
    )
    view = {**seat_view(seat, None, ctx.clock.now()), "operator": user.display_name}
    commit(session)
    ctx.events.publish("seat", view)
    if controller is not None and body.state == "ready":
        controller.seat_changed()
    return view


@router.get("/callcenter/status")
def status(request: Request, user: UserDep, ctx: ContextDep) -> dict[str, Any]:
    """Is the telephony running, and if not, why (e.g. Kamailio is not installed); speech to text too."""
    check_staff(user)
    state = request.app.state
    return telephony_status(state.callcentre, state.callcentre_error, ctx.settings.callcenter)


@router.get("/callcenter/queue")
def queue(user: UserDep, session: SessionDep, ctx: ContextDep, controller: ControllerDep) -> dict[str, Any]:
    check_staff(user)
    if controller is None:
        return {"enabled": False, **waiting_calls(session, ctx.clock.now())}
    return {"enabled": True, **controller.queue_view()}


@router.get("/callcenter/stats")
def stats(
    user: UserDep,
    session: SessionDep,
    ctx: ContextDep,
    start: Annotated[LocalDateTime | None, Query(description="default: today 00:00")] = None,
    end: Annotated[LocalDateTime | None, Query(description="default: start + 1 day")] = None,
) -> QueueFigures:
    check_staff(user)
    # Stored times are the hotline's naive local time; a time with an offset is converted to it.
    zone = ZoneInfo(ctx.settings.hotline.timezone)
    start, end = (t.astimezone(zone).replace(tzinfo=None) if t and t.tzinfo else t for t in (start, end))
    start = start or ctx.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    end = end or start + timedelta(days=1)
    if end <= start:
        raise CallCenterError("end must be after start", "结束时间必须晚于开始时间")
    return queue_figures(session, start, end)


def record_out(record: CallRecord, masked: bool) -> dict[str, Any]:
    return {
        "uid": record.uid, "direction": record.direction,
        "caller": mask_phone(record.caller) if masked else record.caller, "callee": record.callee,
        "worker": record.worker, "offered_at": record.offered_at, "queued_at": record.queued_at,
        "answered_at": record.answered_at, "ended_at": record.ended_at, "seat_id": record.seat_id,
        "outcome": record.outcome, "hangup_cause": record.hangup_cause, "hangup_side": record.hangup_side,
        "transfer_target": record.transfer_target, "recording_seconds": record.recording_seconds,
        "recording_bytes": record.recording_bytes, "recording_sha256": record.recording_sha256,
        "dtmf": record.dtmf, "ticket_id": record.ticket_id,
    }  # fmt: skip


@router.get("/calls")
def list_calls(
    user: UserDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    outcome: Annotated[str | None, Query(pattern=r"^[a-z_]{1,24}$")] = None,
) -> list[dict[str, Any]]:
    check_staff(user)
    query = select(CallRecord).order_by(CallRecord.offered_at.desc(), CallRecord.id.desc()).limit(limit)
    if outcome:
        query = query.where(CallRecord.outcome == outcome)
    return [record_out(r, masked=False) for r in session.scalars(query)]


@router.get("/calls/{uid}")
def get_call(uid: CallUid, user: UserDep, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    check_staff(user)
    record = CallRecords(session, ctx.clock).get(uid)
    events = session.scalars(select(CallEvent).where(CallEvent.call_id == record.id).order_by(CallEvent.id))
    return {
        **record_out(record, masked=False),
        "events": [{"at": e.at, "kind": e.kind, "detail": e.detail} for e in events],
    }


@router.get("/calls/{uid}/recording", response_class=FileResponse)
def recording(uid: CallUid, user: UserDep, session: SessionDep, ctx: ContextDep) -> FileResponse:
    _supervisor(user)
    record = CallRecords(session, ctx.clock).get(uid)
    if not record.recording_path or not Path(record.recording_path).exists():
        raise CallCenterError(f"call {uid} has no recording", "该通话没有录音")
    return FileResponse(record.recording_path, media_type="audio/wav", filename=f"{uid}.wav")


def check_own_call(uid: str, user: User, session: SessionDep, ctx: ContextDep) -> None:
    """Operators act on the call at their own seat; supervisors on any."""
    if user.role_enum != Role.OPERATOR:
        return
    seat = SeatService(session, ctx.clock).of_operator(user.id)
    if seat is None or seat.current_call_uid != uid:
        raise NotPermitted(f"call {uid} is not at your seat", "该通话不在您的坐席上")


def own_live_call(
    uid: CallUid, user: UserDep, session: SessionDep, ctx: ContextDep, controller: ControllerDep
) -> CallControl | None:
    """The controller, once the user may act on this call (their own seat's, or a supervisor);
    whether it runs is checked after the body, so bad input is reported as such first."""
    check_staff(user)
    check_own_call(uid, user, session, ctx)
    return controller


OwnCallDep = Annotated[CallControl | None, Depends(own_live_call)]


@router.post("/calls/{uid}/transfer")
def transfer(uid: CallUid, body: TransferBody, controller: OwnCallDep) -> dict[str, str]:
    _running(controller).transfer(uid, body.target)
    return {"status": "ringing", "target": body.target}


@router.post("/calls/{uid}/conference")
def conference(uid: CallUid, body: ConferenceBody, controller: OwnCallDep) -> dict[str, str]:
    _running(controller).conference(uid, body.number)
    return {"status": "ringing", "number": body.number}


@router.post("/calls/{uid}/supervise")
def supervise(
    uid: CallUid,
    body: SuperviseBody,
    user: UserDep,
    session: SessionDep,
    ctx: ContextDep,
    controller: ControllerDep,
) -> dict[str, str]:
    _supervisor(user)
    extension = body.extension
    if extension is None:
        own = SeatService(session, ctx.clock).of_operator(user.id)
        if own is None:
            raise CallCenterError("give the extension of your phone", "请填写您的分机号")
        extension = own.extension
    _running(controller).supervise(uid, extension, body.mode)
    return {"status": "ringing", "extension": extension, "mode": body.mode}


@router.post("/calls/{uid}/hangup")
def hangup(uid: CallUid, user: UserDep, controller: OwnCallDep) -> dict[str, str]:
    _running(controller).hangup(uid, "operator" if user.role_enum == Role.OPERATOR else "system")
    return {"status": "hanging up"}
