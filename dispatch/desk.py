"""The ticket desk: the ticket service as a person on the web uses it (masked numbers for liaisons,
every view and action audited, changes committed and published live), and its FastAPI dependency."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from callcenter.asr.service import transcript_for_ticket
from core import audit
from core.accounts.actor import actor_of
from core.accounts.models import Role, User
from core.errors import NotPermitted
from core.web import SessionDep, UserDep, audit_fields, commit, get_context
from dispatch import schemas
from dispatch.context import DispatchContext
from dispatch.live import publish_ticket
from dispatch.models import Ticket
from dispatch.service import TicketService, mask_numbers, ticket_out
from dispatch.states import Action

DispatchContextDep = Annotated[DispatchContext, Depends(get_context)]
# A spreadsheet export holds at most this many tickets (a month of a county, several days of a city).
EXPORT_CAP = 20_000


def get_tickets(session: SessionDep, ctx: DispatchContextDep) -> TicketService:
    return ctx.tickets(session)


TicketsDep = Annotated[TicketService, Depends(get_tickets)]


class TicketDesk:
    """TicketService for one logged-in user: liaisons see masked phone numbers, every view of a
    ticket's personal data and every action is audited, changes are committed and published live."""

    def __init__(self, ctx: DispatchContext, session: Session, user: User, request: Request) -> None:
        self.ctx, self.session, self.user = ctx, session, user
        self.actor = actor_of(user)
        self.tickets = ctx.tickets(session)
        self.request = request

    @property
    def mask(self) -> bool:
        return self.actor.role == Role.LIAISON

    def now(self) -> datetime:
        return self.ctx.clock.now()

    def audit(self, action: str, number: str | None = None, **fields: Any) -> None:
        who = audit_fields(self.request, self.user)
        audit.record(self.session, action=action, ticket_number=number, **who, **fields)

    def commit(self) -> None:
        commit(self.session)

    def out(self, ticket: Ticket) -> schemas.TicketOut:
        return ticket_out(ticket, self.now(), self.mask)

    def transcripts(self, ticket: Ticket) -> list[dict[str, Any]]:
        """What was said on the ticket's calls; for a liaison the numbers said in it are masked like
        the caller's number (a citizen often reads out a phone number)."""
        found = transcript_for_ticket(self.session, ticket.id)
        if self.mask:
            for said in found:
                said["text"] = mask_numbers(said["text"])
                said["operator_text"] = mask_numbers(said["operator_text"])
                said.pop("raw_text", None)
                said.pop("words", None)
        return found

    def get(self, number: str) -> Ticket:
        """A ticket the user may see; the view is audited, and so is a refused one."""
        try:
            ticket = self.tickets.get(number, self.actor)
        except NotPermitted:
            who = audit_fields(self.request, self.user)
            audit.record_now(self.ctx.sessions, action="ticket.view.denied", ticket_number=number, **who)
            raise
        self.audit("ticket.view", number)
        commit(self.session)
        return ticket

    def list(self, flt: schemas.TicketFilter) -> tuple[list[Ticket], int]:
        rows, total = self.tickets.list(self.actor, flt)
        if rows:
            query = flt.model_dump(mode="json", exclude_defaults=True)
            self.audit("ticket.list", count=len(rows), detail={"numbers": [t.number for t in rows], **query})
            commit(self.session)
        return rows, total

    def reveal_phone(self, number: str, reason: str) -> str | None:
        """The caller's full number for a liaison who must reach the citizen; the reason is audited."""
        ticket = self.tickets.get(number, self.actor)  # 404 / 403 as for viewing the ticket
        self.audit("ticket.phone.reveal", number, detail={"reason": reason})
        commit(self.session)
        return ticket.caller_phone

    def export(self, flt: schemas.TicketFilter, cap: int = EXPORT_CAP) -> tuple[list[Ticket], int]:
        """Every ticket the filter finds (up to `cap`), page by page, for a spreadsheet; audited as one
        export with its size and query (the numbers would fill the log)."""
        found: list[Ticket] = []
        total = 0
        page = flt.model_copy(update={"limit": 500, "offset": 0})
        while len(found) < cap:
            rows, total = self.tickets.list(self.actor, page)
            found += rows
            if len(rows) < page.limit:
                break
            page = page.model_copy(update={"offset": page.offset + page.limit})
        query = flt.model_dump(mode="json", exclude_defaults=True, exclude={"limit", "offset"})
        self.audit("ticket.export", count=len(found[:cap]), detail=query)
        commit(self.session)
        return found[:cap], total

    def register(self, body: schemas.TicketCreate, then: tuple[Action, BaseModel] | None = None) -> Ticket:
        """Register a ticket; `then` takes its first action (answer on the spot, dispatch) in the
        same transaction, so a refused action leaves no half-done ticket behind."""
        ticket = self.tickets.register(self.actor, body)
        self.audit("ticket.register", ticket.number, detail={"channel": body.channel.value})
        if then is not None:
            action, action_body = then
            ticket = self.tickets.act(ticket.number, self.actor, action, action_body)
            self.audit(f"ticket.{action.value}", ticket.number, detail=_auditable(action_body))
        commit(self.session)
        publish_ticket(self.ctx.events, ticket, then[0] if then else Action.REGISTER)
        return ticket

    def act(self, number: str, action: Action, body: BaseModel) -> Ticket:
        ticket = self.tickets.act(number, self.actor, action, body)
        self.audit(f"ticket.{action.value}", number, detail=_auditable(body))
        commit(self.session)
        publish_ticket(self.ctx.events, ticket, action)
        return ticket


def _auditable(body: BaseModel) -> dict[str, Any]:
    """What of an action's body goes into the audit log: its fields, texts shortened."""
    out: dict[str, Any] = {}
    for key, value in body.model_dump(mode="json").items():
        out[key] = value[:200] if isinstance(value, str) else value
    return out


def get_desk(ctx: DispatchContextDep, session: SessionDep, user: UserDep, request: Request) -> TicketDesk:
    return TicketDesk(ctx, session, user, request)


DeskDep = Annotated[TicketDesk, Depends(get_desk)]
