"""What every intake channel does to make a ticket: register it through the ticket service as the
channel's system actor, and tell the live pages once it is committed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import audit
from core.accounts.actor import Actor
from core.accounts.models import Role
from core.events import EventBus
from dispatch import schemas
from dispatch.live import ticket_payload
from dispatch.models import Ticket
from dispatch.service import TicketService
from dispatch.states import Action

TOPIC = f"ticket.{Action.REGISTER.value}"


@dataclass
class Registered:
    ticket: Ticket
    # The live event, built while the session is open and published after the commit.
    payload: dict[str, Any]

    @property
    def number(self) -> str:
        return self.ticket.number

    def announce(self, events: EventBus) -> None:
        events.publish(TOPIC, self.payload)


def register(
    tickets: TicketService, actor_name: str, body: schemas.TicketCreate, via: str, ip: str | None
) -> Registered:
    """A new ticket from a channel (the state machine's register, by the system actor `actor_name`),
    in the audit log with the client's address."""
    ticket = tickets.register(Actor.system(actor_name), body)
    audit.record(
        tickets.session,
        at=tickets.clock.now(),
        action=f"ticket.{Action.REGISTER.value}",
        username=actor_name,
        role=Role.SYSTEM.value,
        ticket_number=ticket.number,
        via=via,
        ip=ip,
        detail={"channel": body.channel.value},
    )
    tickets.session.refresh(ticket, ["category", "subcategory", "lead_department"])
    return Registered(ticket, ticket_payload(ticket, Action.REGISTER))
