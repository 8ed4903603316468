"""Callback figures as SQL aggregates, per period and per department, category or the whole hotline.

- 回访率 (callback rate) = callbacks done / callbacks due, over the callbacks created in the period
  (one per replied ticket and round; cancelled ones are not due);
- 满意率 (satisfaction) = (satisfied + basically satisfied) / surveyed, over results recorded in the period;
- reopens (重办) = reopen events in the period, charged to the department that held the ticket.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from core.departments import Department
from core.figures import ratio
from dispatch.callbacks.models import Callback, CallbackState
from dispatch.models import Category, Ticket, TicketEvent
from dispatch.states import Action

GroupBy = Literal["department", "category", "all"]
SATISFIED = ("satisfied", "basically_satisfied")


@dataclass
class CallbackRow:
    key: str | None
    name: str
    due: int = 0
    called_back: int = 0
    surveyed: int = 0
    satisfied: int = 0
    dissatisfied: int = 0
    unreachable: int = 0
    reopens: int = 0

    @property
    def callback_rate(self) -> float | None:
        return ratio(self.called_back, self.due)

    @property
    def satisfaction_rate(self) -> float | None:
        return ratio(self.satisfied, self.surveyed)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "callback_rate": self.callback_rate,
            "satisfaction_rate": self.satisfaction_rate,
        }


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def callback_figures(
    session: Session, start: datetime, end: datetime, group_by: GroupBy = "all"
) -> list[CallbackRow]:
    key: Any = {"department": Ticket.lead_department_id, "category": Ticket.category_id}.get(
        group_by, literal(0)
    )
    created = and_(Callback.created_at >= start, Callback.created_at < end)
    finished = and_(Callback.finished_at >= start, Callback.finished_at < end)
    due = and_(created, Callback.state != CallbackState.CANCELLED.value)
    rows: dict[Any, CallbackRow] = {}
    query = (
        select(
            key,
            _count(due),
            _count(and_(due, Callback.state == CallbackState.DONE.value)),
            _count(and_(finished, Callback.result.is_not(None))),
            _count(and_(finished, Callback.result.in_(SATISFIED))),
            _count(and_(finished, Callback.result == "dissatisfied")),
            _count(and_(finished, Callback.state == CallbackState.UNREACHABLE.value)),
        )
        .select_from(Callback)
        .join(Ticket, Ticket.id == Callback.ticket_id)
        .where(or_(created, finished))
        .group_by(key)
    )
    for k, *values in session.execute(query):
        rows[k] = CallbackRow(None, "", *(int(v) for v in values))
    event_key: Any = {"department": TicketEvent.department_id, "category": Ticket.category_id}.get(
        group_by, literal(0)
    )
    reopens = (
        select(event_key, func.count())
        .select_from(TicketEvent)
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(TicketEvent.action == Action.REOPEN.value, TicketEvent.at >= start, TicketEvent.at < end)
        .group_by(event_key)
    )
    for k, count in session.execute(reopens):
        rows.setdefault(k, CallbackRow(None, "")).reopens = count
    names = _names(session, group_by)
    for k, row in rows.items():
        row.key, row.name = names.get(k, (None, "未分派"))
    return sorted(rows.values(), key=lambda r: (-r.due, r.name))


def _names(session: Session, group_by: GroupBy) -> dict[Any, tuple[str | None, str]]:
    if group_by == "department":
        return {d.id: (d.code, d.name) for d in session.scalars(select(Department))}
    if group_by == "category":
        return {c.id: (c.name, c.name) for c in session.scalars(select(Category))}
    return {0: (None, "全部")}
