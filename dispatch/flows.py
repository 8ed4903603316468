"""Work that crosses domains: what the call centre asks through its interfaces in
`callcenter.context` (`CallTickets`: the screen pop's earlier tickets, a ticket for a callback request;
`Understanding`: knowledge-base suggestions and the router's reading of a transcript), and linking a
call to the ticket it became."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import CallRecord
from callcenter.service import CallRecords
from core.accounts.actor import Actor
from core.clock import Clock
from dispatch.deadlines import DeadlinePolicy
from dispatch.models import Ticket
from dispatch.routing_words import router_for
from dispatch.schemas import TicketCreate
from dispatch.service import TicketService
from dispatch.states import STATE_LABELS, TicketState
from knowledge_base.service import KnowledgeBase, cached_matcher


class CallTickets:
    """The tickets a call touches; the call centre's controller uses it through its interface."""

    def __init__(self, rules: DeadlinePolicy, clock: Clock, number_digits: int) -> None:
        self.rules, self.clock, self.number_digits = rules, clock, number_digits

    def earlier_tickets(self, session: Session, phone: str, limit: int = 5) -> list[dict[str, Any]]:
        """The caller's earlier tickets, newest first, for the screen pop."""
        rows = session.scalars(
            select(Ticket).where(Ticket.caller_phone == phone).order_by(Ticket.created_at.desc()).limit(limit)
        )
        return [
            {
                "number": t.number,
                "state": t.state,
                "state_label": STATE_LABELS[TicketState(t.state)],
                "created_at": t.created_at.isoformat(timespec="minutes"),
                "content": t.content[:80],
            }
            for t in rows
        ]

    def callback_request(self, session: Session, caller: str) -> tuple[int, str]:
        content = f"市民来电时排队已满或等候过久，留下回电请求，请回拨。来电号码：{caller}"
        try:
            data = TicketCreate(content=content, caller_phone=caller)
        except ValidationError:  # a caller id that is not a phone number (an anonymous trunk)
            data = TicketCreate(content=content)
        service = TicketService(session, self.rules, self.clock, self.number_digits)
        ticket = service.register(Actor.system("排队回电"), data)
        return ticket.id, ticket.number


def link_call(session: Session, clock: Clock, uid: str, ticket: Ticket) -> CallRecord:
    """Record which ticket a call became."""
    return CallRecords(session, clock).link_ticket(uid, ticket.id, ticket.number)


class Understanding:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def knowledge_base(self, session: Session) -> KnowledgeBase:
        return cached_matcher(session, self.clock.now().date())

    def classify(self, session: Session, text: str) -> dict[str, Any] | None:
        if not text:
            return None
        # the console's router: the trained model and the admins' routing words
        c = router_for(session).classify(text)
        return {
            "category": c.category,
            "subcategory": c.subcategory,
            "department": c.department,
            "transfer": c.transfer,
            "confidence": round(c.confidence, 4),
            "evidence": list(c.evidence),
        }
