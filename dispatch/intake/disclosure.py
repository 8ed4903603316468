"""Public disclosure (政务公开, Chengdu's practice): closed tickets with the department, the dates, the
on-time flag and the reply, personal data scrubbed. Tickets marked private never appear, nor do
merged duplicates; the ticket number is not shown either (it is the key of the status look-up)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatch.intake.scrubber import scrub_text
from dispatch.models import Category, Ticket
from dispatch.states import TicketState

DISCLOSED_STATES = (TicketState.ARCHIVED.value, TicketState.CLOSED.value)
ON_THE_SPOT = "12345热线（直接答复）"


class DisclosedTicket(BaseModel):
    category: str | None
    subcategory: str | None
    department: str
    created_at: datetime
    finished_at: datetime | None
    deadline: datetime | None
    # True: replied by the deadline; False: late; None: answered on the call (no deadline).
    on_time: bool | None
    content: str
    reply: str


class DisclosurePage(BaseModel):
    total: int
    page: int
    pages: int
    items: list[DisclosedTicket]


def _disclosed(ticket: Ticket) -> DisclosedTicket:
    names, phones = [ticket.caller_name], [ticket.caller_phone]
    finished = ticket.replied_at or ticket.closed_at
    on_time = None
    if ticket.deadline is not None and ticket.replied_at is not None:
        on_time = ticket.replied_at <= ticket.deadline
    return DisclosedTicket(
        category=ticket.category.name if ticket.category else None,
        subcategory=ticket.subcategory.name if ticket.subcategory else None,
        department=ticket.lead_department.name if ticket.lead_department else ON_THE_SPOT,
        created_at=ticket.created_at,
        finished_at=finished,
        deadline=ticket.deadline,
        on_time=on_time,
        content=scrub_text(ticket.content, names, phones),
        reply=scrub_text(ticket.reply_text, names, phones),
    )


def disclosure_page(
    session: Session, page: int, size: int, category_code: str | None = None
) -> DisclosurePage:
    conditions = [
        Ticket.state.in_(DISCLOSED_STATES),
        Ticket.private.is_(False),
        Ticket.disclosure_consent.is_(True),  # the citizen agreed (asked on every channel)
        Ticket.reply_approved_at.is_not(None),  # the hotline reviewed the reply
    ]
    if category_code:
        conditions.append(Ticket.category.has(Category.code == category_code))
    total = session.scalar(select(func.count()).select_from(Ticket).where(*conditions)) or 0
    pages = max(1, -(-total // size))
    rows = session.scalars(
        select(Ticket)
        .where(*conditions)
        .order_by(Ticket.closed_at.desc(), Ticket.id.desc())
        .limit(size)
        .offset((min(page, pages) - 1) * size)
    ).unique()
    return DisclosurePage(
        total=total, page=min(page, pages), pages=pages, items=[_disclosed(t) for t in rows]
    )
