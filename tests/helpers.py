"""Small helpers the tests share: register, dispatch and act on tickets, read them back as stored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from core.accounts.actor import Actor
from dispatch import schemas
from dispatch.models import Ticket, TicketEvent, ticket_assisting_departments
from dispatch.states import Action
from hotline.context import HotlineContext
from tests.conftest import Staff, subcategory_id

TICKETS = Ticket.__table__
EVENTS = TicketEvent.__table__
Snapshot = tuple[dict[str, Any], list[dict[str, Any]], list[int]]


def register(ctx: HotlineContext, staff: Staff, content: str = "河西路18号小区停水") -> str:
    with ctx.unit_of_work() as session:
        body = schemas.TicketCreate(content=content, caller_phone="13900001111")
        return ctx.tickets(session).register(staff.operator, body).number


def act(ctx: HotlineContext, number: str, actor: Actor, action: Action, body: BaseModel) -> None:
    with ctx.unit_of_work() as session:
        ctx.tickets(session).act(number, actor, action, body)


def dispatched(ctx: HotlineContext, staff: Staff, sub: str, department: str, **extra: Any) -> str:
    """A new ticket dispatched by the operator to `department` under sub-category `sub`."""
    number = register(ctx, staff, f"{sub}的诉求")
    with ctx.unit_of_work() as session:
        body = schemas.DispatchBody(
            department=department, subcategory_id=subcategory_id(session, sub), **extra
        )
    act(ctx, number, staff.operator, Action.DISPATCH, body)
    return number


def load(ctx: HotlineContext, number: str) -> Ticket:
    """The ticket as stored, read in a new session, with its events and relations loaded."""
    with ctx.unit_of_work() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        _ = (list(ticket.events), list(ticket.assisting_departments), ticket.merged_into)
        return ticket


def snapshot(ctx: HotlineContext, number: str) -> Snapshot:
    """Every column of the ticket's row and of its events, and its assisting departments."""
    with ctx.unit_of_work() as session:
        row = session.execute(select(TICKETS).where(TICKETS.c.number == number)).mappings().one()
        events = session.execute(
            select(EVENTS).where(EVENTS.c.ticket_id == row["id"]).order_by(EVENTS.c.seq)
        ).mappings()
        assisting = session.scalars(
            select(ticket_assisting_departments.c.department_id)
            .where(ticket_assisting_departments.c.ticket_id == row["id"])
            .order_by(ticket_assisting_departments.c.department_id)
        )
        return dict(row), [dict(e) for e in events], list(assisting)
