"""The citizens' own channel: the mayor's mailbox (网上信箱, web letters) and the status look-up.

Both are public (no login), so both are rate-limited in the database: letters per client address and
per phone number, look-ups per client address and failed look-ups per ticket number (so the last four
digits of a phone cannot be guessed, not even from many addresses).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import select

from core.errors import NotFound, RuleViolation
from dispatch import schemas
from dispatch.attachments.service import attachments_of, check_file
from dispatch.context import DispatchContext
from dispatch.intake import channel
from dispatch.intake.ratelimit import RateLimiter
from dispatch.models import Channel, Ticket
from dispatch.states import STATE_LABELS, TicketState

Mobile = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^1[3-9][0-9]{9}$")]
LastFour = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{4}$")]
LetterText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=2000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]
Place = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]

MAILBOX = "网上信箱"
# What the public look-up calls a state: the inside states in words a citizen understands.
PUBLIC_STATE = {
    TicketState.REGISTERED: "已受理，待转办",
    TicketState.DISPATCHED: "已转交承办单位",
    TicketState.IN_PROGRESS: "承办单位办理中",
    TicketState.RETURNED: "重新转办中",
    TicketState.REPLIED: "已答复，待回访",
    TicketState.ARCHIVED: "已办结",
    TicketState.CLOSED: "已办结（直接答复）",
    TicketState.MERGED: "已与同一事项合并办理",
}


class Letter(BaseModel):
    """A letter to the mayor's mailbox, as the public form sends it."""

    model_config = ConfigDict(extra="forbid")
    content: LetterText
    phone: Mobile
    name: Name = ""
    address: Place = ""
    # 不公开: the letter never appears on the public disclosure page.
    private: bool = False


class LookUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: schemas.TicketNumber
    phone_last4: LastFour


class PublicStatus(BaseModel):
    """All a citizen's look-up shows: nothing else about the ticket."""

    number: str
    state: str
    state_label: str
    deadline: datetime | None
    reply: str | None
    replied_at: datetime | None


def check_files(ctx: DispatchContext, files: list[tuple[str | None, bytes]]) -> None:
    """Raise unless the letter's photos and documents may be attached (count, size, type)."""
    settings = ctx.settings.dispatch.attachments
    if len(files) > settings.max_per_letter:
        raise RuleViolation(
            f"a letter takes at most {settings.max_per_letter} files",
            f"每封来信最多附 {settings.max_per_letter} 个文件",
        )
    for name, data in files:
        check_file(settings, name, data)


def submit_letter(
    ctx: DispatchContext, letter: Letter, client: str, files: list[tuple[str | None, bytes]] | None = None
) -> str:
    """Register the letter as a ticket (channel web), with its photos and documents, and return its
    number; the files are checked and the rate limits counted before anything is stored."""
    files = files or []
    check_files(ctx, files)
    limits = ctx.settings.intake
    limiter = RateLimiter(ctx.sessions, ctx.clock)
    # Both limits are checked before either counts: a refused letter uses up neither.
    counted = [
        ("letter_address", client, limits.letters_per_address, "提交"),
        ("letter_phone", letter.phone, limits.letters_per_phone, "同一手机号提交"),
    ]
    for scope, key, rule, what in counted:
        limiter.check(scope, key, rule, what)
    for scope, key, rule, what in counted:
        limiter.hit(scope, key, rule, what)
    body = schemas.TicketCreate(
        content=letter.content,
        channel=Channel.WEB,
        caller_phone=letter.phone,
        caller_name=letter.name or None,
        address=letter.address or None,
        private=letter.private,
        disclosure_consent=not letter.private,  # the form asks: 不同意公开 unticked is consent
    )
    with ctx.unit_of_work() as session:
        registered = channel.register(ctx.tickets(session), MAILBOX, body, via="page", ip=client)
        store = attachments_of(ctx, session)
        for name, data in files:
            store.add(registered.ticket, name, data, "mailbox", MAILBOX)
    registered.announce(ctx.events)
    return registered.number


def look_up(ctx: DispatchContext, query: LookUp, client: str) -> PublicStatus:
    """The state, deadline and public reply of a ticket, for whoever knows its phone's last digits."""
    limits = ctx.settings.intake
    limiter = RateLimiter(ctx.sessions, ctx.clock)
    limiter.hit("lookup_address", client, limits.lookups_per_address, "查询")
    limiter.check("lookup_failure", query.number, limits.lookup_failures_per_ticket, "该工单查询失败次数")
    with ctx.sessions() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == query.number))
        digits = "".join(c for c in (ticket.caller_phone or "") if c.isdigit()) if ticket else ""
        if ticket is None or len(digits) < 4 or digits[-4:] != query.phone_last4:
            limiter.hit(
                "lookup_failure", query.number, limits.lookup_failures_per_ticket, "该工单查询失败次数"
            )
            # The same answer whether the number exists or not: a look-up tells nothing else.
            raise NotFound(
                f"no ticket {query.number} with a phone ending in {query.phone_last4}",
                "工单号或手机号后四位不正确，请核对后重试",
            )
        state = TicketState(ticket.state)
        if ticket.reply_approved_at is None:  # a reply the hotline has not reviewed yet stays inside
            label = (
                "办理中（答复审核中）"
                if state == TicketState.REPLIED
                else PUBLIC_STATE.get(state, STATE_LABELS[state])
            )
            return PublicStatus(
                number=ticket.number,
                state=state.value,
                state_label=label,
                deadline=ticket.deadline,
                reply=None,
                replied_at=None,
            )
        return PublicStatus(
            number=ticket.number,
            state=state.value,
            state_label=PUBLIC_STATE.get(state, STATE_LABELS[state]),
            deadline=ticket.deadline,
            reply=ticket.reply_text,
            replied_at=ticket.replied_at or (ticket.closed_at if state == TicketState.CLOSED else None),
        )
