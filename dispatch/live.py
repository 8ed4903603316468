"""Live ticket events for the pages: what changed, where the ticket is now (no personal data)."""

from __future__ import annotations

from typing import Any

from core.events import EventBus
from dispatch.models import Ticket
from dispatch.states import ACTION_LABELS, STATE_LABELS, Action, TicketState


def ticket_payload(ticket: Ticket, action: Action) -> dict[str, Any]:
    departments = [ticket.lead_department_id, *(d.id for d in ticket.assisting_departments)]
    return {
        "number": ticket.number,
        "action": action.value,
        "action_label": ACTION_LABELS[action],
        "state": ticket.state,
        "state_label": STATE_LABELS[TicketState(ticket.state)],
        "department": ticket.lead_department.code if ticket.lead_department else None,
        "department_name": ticket.lead_department.name if ticket.lead_department else None,
        # Who may receive the event: a liaison only gets events of their own departments' tickets.
        "department_ids": [d for d in departments if d is not None],
        "deadline": ticket.deadline.isoformat(timespec="minutes") if ticket.deadline else None,
        "category": ticket.category.name if ticket.category else None,
    }


def publish_ticket(bus: EventBus, ticket: Ticket, action: Action) -> None:
    """Topic "ticket.<action>", e.g. ticket.dispatch: a new ticket in a liaison's inbox."""
    bus.publish(f"ticket.{action.value}", ticket_payload(ticket, action))
