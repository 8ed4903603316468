"""How close a ticket is to its deadline, by the configured warning levels (config `sla.warnings`):
the same rule the sweeps raise 即将到期 by, for the pages' colours and lists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from dispatch.models import Ticket
from dispatch.states import AT_DEPARTMENT, TicketState
from sla.calendar import WorkCalendar
from sla.settings import WarningLevel

Urgency = Literal["overdue", "soon", "normal", "none"]
URGENCY_LABELS = {"overdue": "已超期", "soon": "即将到期", "normal": "正常", "none": ""}


def due_soon_window(warnings: Sequence[WarningLevel], handling: str | None = None) -> timedelta | None:
    """Working time before the deadline at which a "due within" level warns, for tickets of this
    category handling (None: any ticket); None when no such level applies."""
    hours = [
        level.working_hours
        for level in warnings
        if level.kind == "due_within"
        and level.working_hours
        and (not level.handlings or handling is None or handling in level.handlings)
    ]
    return timedelta(hours=max(hours)) if hours else None


def urgency(
    ticket: Ticket, now: datetime, calendar: WorkCalendar, warnings: Sequence[WarningLevel]
) -> Urgency:
    if ticket.deadline is None or TicketState(ticket.state) not in AT_DEPARTMENT:
        return "none"
    if ticket.deadline < now:
        return "overdue"
    window = due_soon_window(warnings, ticket.category.handling if ticket.category else None)
    if window is not None and calendar.working_time_between(now, ticket.deadline) <= window:
        return "soon"
    return "normal"
