"""110 linkage (110联动), both ways.

In: the police platform hands over a non-police matter through an authenticated API. Each request
carries the partner's key (X-Partner-Key), a Unix timestamp (X-Timestamp) and a signature
(X-Signature: hex HMAC-SHA256 under the partner's secret of the timestamp, a newline and the raw
body). A timestamp further from our clock than the replay window is refused, and so is a signature
already accepted within the window (a replay). The same external id twice gives the same ticket.

Out: when an operator transfers a call to 110, the call centre records a "transfer" event on the
call; the operator's summary of the matter is recorded against that event, with the ticket if any.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.models import CallEvent, CallRecord
from core.errors import NotFound, RuleViolation, TooLarge, Unauthenticated
from core.web import Flag
from dispatch import schemas
from dispatch.context import DispatchContext
from dispatch.errors import TicketNotFound
from dispatch.intake import channel
from dispatch.intake.errors import IntakeError, Replayed
from dispatch.intake.models import HandoverDirection, PoliceHandover, PoliceSignature
from dispatch.intake.settings import PolicePartner
from dispatch.models import Channel, Ticket

ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
MAX_BODY = 64 * 1024


class HandoverIn(BaseModel):
    """A matter the police platform hands over (JSON body)."""

    model_config = ConfigDict(extra="forbid")
    external_id: ExternalId  # the platform's incident number (警情编号)
    content: schemas.Text
    caller_phone: schemas.Phone | None = None
    caller_name: schemas.PersonName | None = None
    address: schemas.ShortText | None = None
    # The sub-category the platform suggests (from GET /open311/v2/services.json), if any.
    subcategory_id: int | None = Field(default=None, ge=1, le=schemas.MAX_ID)
    private: Flag = False


class HandoverOut(BaseModel):
    ticket_number: str
    external_id: str
    # False: this external id was handed over before; this is the ticket made then.
    created: bool


class TransferIn(BaseModel):
    """The operator's record of a call transferred to 110."""

    model_config = ConfigDict(extra="forbid")
    summary: schemas.Text
    ticket_number: schemas.TicketNumber | None = None
    partner: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")] | None = None
    external_id: ExternalId | None = None  # the incident number 110 gave, if it gave one


class HandoverRecord(BaseModel):
    id: int
    direction: str
    partner: str | None
    external_id: str | None
    ticket_number: str | None
    call_uid: str | None
    summary: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class Signed:
    """A request whose key, timestamp and signature were checked."""

    code: str
    partner: PolicePartner
    signature: str
    at: datetime


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """What the partner puts in X-Signature."""
    return hmac.new(secret.encode(), timestamp.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def verify(
    ctx: DispatchContext, key: str | None, timestamp: str | None, signature: str | None, body: bytes
) -> Signed:
    settings = ctx.settings.intake.police110
    if not key or not timestamp or not signature:
        raise Unauthenticated(
            "X-Partner-Key, X-Timestamp and X-Signature headers are required", "缺少对接密钥、时间戳或签名"
        )
    found = [(c, p) for c, p in settings.partners.items() if hmac.compare_digest(p.key, key)]
    if not found:
        raise Unauthenticated("unknown partner key", "对接密钥无效")
    code, partner = found[0]
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise Unauthenticated("X-Timestamp must be Unix seconds", "时间戳格式错误")
    zone = ZoneInfo(ctx.settings.hotline.timezone)
    sent = datetime.fromtimestamp(int(timestamp), zone).replace(tzinfo=None)
    now = ctx.clock.now()
    window = timedelta(seconds=settings.replay_window_seconds)
    if abs(now - sent) > window:
        raise Unauthenticated(
            f"timestamp {sent:%Y-%m-%d %H:%M:%S} is more than {settings.replay_window_seconds} s "
            f"from the hotline's clock ({now:%Y-%m-%d %H:%M:%S})",
            "时间戳已过期或与服务器时间相差过大",
        )
    expected = sign(partner.secret, timestamp, body)
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise Unauthenticated("signature does not match the body and timestamp", "签名校验失败")
    return Signed(code, partner, expected, now)


def too_large() -> TooLarge:
    return TooLarge(f"body larger than {MAX_BODY} bytes", "请求内容过大")


def parse(body: bytes) -> HandoverIn:
    if len(body) > MAX_BODY:
        raise too_large()
    try:
        return HandoverIn.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise IntakeError(f"invalid hand-over: {problems}", f"移交内容有误：{problems}") from None


def _existing(session: Session, code: str, external_id: str) -> PoliceHandover | None:
    return session.scalar(
        select(PoliceHandover).where(
            PoliceHandover.partner == code, PoliceHandover.external_id == external_id
        )
    )


def _seen(session: Session, signed: Signed) -> bool:
    return session.get(PoliceSignature, (signed.code, signed.signature)) is not None


def hand_over(
    ctx: DispatchContext, signed: Signed, data: HandoverIn, body: bytes, client: str | None = None
) -> HandoverOut:
    """Make the ticket for a handed-over matter, once per external id; refuse a replayed request."""
    window = timedelta(seconds=ctx.settings.intake.police110.replay_window_seconds)
    try:
        with ctx.unit_of_work() as session:
            # A request is accepted up to one window from its timestamp either way: a replay can come
            # up to two windows after the first arrival, and is refused as too old after that.
            session.execute(delete(PoliceSignature).where(PoliceSignature.at < signed.at - 2 * window))
            if _seen(session, signed):
                raise Replayed(
                    "this signed request was received before (replay)", "重复的请求（重放），已拒绝"
                )
            session.add(PoliceSignature(partner=signed.code, signature=signed.signature, at=signed.at))
            before = _existing(session, signed.code, data.external_id)
            if before is not None and before.ticket is not None:
                return HandoverOut(
                    ticket_number=before.ticket.number, external_id=data.external_id, created=False
                )
            registered = _register(ctx, session, signed, data, body, client)
    except IntegrityError:
        # Someone handed over the same external id (or sent the same request) at the same moment.
        with ctx.sessions() as session:
            if _seen(session, signed):
                raise Replayed(
                    "this signed request was received before (replay)", "重复的请求（重放），已拒绝"
                ) from None
            before = _existing(session, signed.code, data.external_id)
            if before is None or before.ticket is None:
                raise
            return HandoverOut(
                ticket_number=before.ticket.number, external_id=data.external_id, created=False
            )
    registered.announce(ctx.events)
    return HandoverOut(ticket_number=registered.number, external_id=data.external_id, created=True)


def _register(
    ctx: DispatchContext, session: Session, signed: Signed, data: HandoverIn, body: bytes, client: str | None
) -> channel.Registered:
    create = schemas.TicketCreate(
        content=data.content,
        channel=Channel.POLICE_110,
        caller_phone=data.caller_phone,
        caller_name=data.caller_name,
        address=data.address,
        subcategory_id=data.subcategory_id,
        private=data.private,
    )
    try:
        registered = channel.register(ctx.tickets(session), signed.partner.name, create, via="api", ip=client)
    except (RuleViolation, NotFound) as exc:  # an unknown sub-category: the hand-over's body is wrong
        raise IntakeError(str(exc), exc.zh) from None
    session.add(
        PoliceHandover(
            direction=HandoverDirection.FROM_110.value,
            partner=signed.code,
            external_id=data.external_id,
            ticket_id=registered.ticket.id,
            summary=data.content,
            body_sha256=hashlib.sha256(body).hexdigest(),
            created_at=signed.at,
            created_by=signed.partner.name,
        )
    )
    session.flush()
    return registered


def record_transfer(
    ctx: DispatchContext, session: Session, call_uid: str, data: TransferIn, by: str
) -> PoliceHandover:
    """Record what was handed to 110 with the call's transfer (the call centre's "transfer" event)."""
    call = session.scalar(select(CallRecord).where(CallRecord.uid == call_uid))
    if call is None:
        raise NotFound(f"call {call_uid} does not exist", f"通话 {call_uid} 不存在")
    transfers = session.scalars(
        select(CallEvent)
        .where(CallEvent.call_id == call.id, CallEvent.kind == "transfer")
        .order_by(CallEvent.id)
    ).all()
    event = next((e for e in reversed(transfers) if e.detail.get("target") == "110"), None)
    if event is None:
        raise RuleViolation(f"call {call_uid} was not transferred to 110", "该通话未转接110，不能登记移交")
    if data.partner is not None and data.partner not in ctx.settings.intake.police110.partners:
        raise RuleViolation(f"unknown 110 partner {data.partner!r}", f"未配置的110对接单位 {data.partner}")
    ticket_id = None
    if data.ticket_number is not None:
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == data.ticket_number))
        if ticket_id is None:
            raise TicketNotFound(
                f"ticket {data.ticket_number} does not exist", f"工单 {data.ticket_number} 不存在"
            )
    record = session.scalar(select(PoliceHandover).where(PoliceHandover.call_event_id == event.id))
    if record is None:
        record = PoliceHandover(
            direction=HandoverDirection.TO_110.value,
            call_record_id=call.id,
            call_event_id=event.id,
            created_at=ctx.clock.now(),
            created_by=by,
        )
        session.add(record)
    # A second record for the same transfer corrects the first (one row per transfer).
    record.summary, record.ticket_id = data.summary, ticket_id
    record.partner, record.external_id = data.partner, data.external_id
    session.flush()
    return record


def handover_out(session: Session, record: PoliceHandover) -> HandoverRecord:
    call_uid = session.scalar(select(CallRecord.uid).where(CallRecord.id == record.call_record_id))
    return HandoverRecord(
        id=record.id,
        direction=record.direction,
        partner=record.partner,
        external_id=record.external_id,
        ticket_number=record.ticket.number if record.ticket else None,
        call_uid=call_uid,
        summary=record.summary,
        created_at=record.created_at,
        created_by=record.created_by,
    )


def list_handovers(session: Session, direction: HandoverDirection | None, limit: int) -> list[HandoverRecord]:
    query = select(PoliceHandover).order_by(PoliceHandover.id.desc()).limit(limit)
    if direction is not None:
        query = query.where(PoliceHandover.direction == direction.value)
    return [handover_out(session, r) for r in session.scalars(query).unique()]
