"""Supervision KPIs as SQL aggregates, per period and per department or category.

按时办结率 (on-time rate) = tickets replied by their deadline / tickets replied, over the tickets a
department replied to within the period. Returns and extensions count the events of the period,
charged to the department that held the ticket at the time.

派单准确率 (dispatch accuracy) = dispatches of the period that the department signed without a
return or a re-dispatch coming first / dispatches of the period that were settled (signed, returned
or re-dispatched; each dispatch and re-dispatch, charged to the department it went to): right first
time, as cities publish it for 智能派单. 建议采纳率 (suggestion agreement) = first dispatches of the
period that went to the department the router suggested for the ticket's text / first dispatches
with a suggestion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select
from sqlalchemy.orm import Session

from core.departments import Department
from core.figures import ratio
from dispatch.models import Category, Ticket, TicketEvent
from dispatch.states import AT_DEPARTMENT, Action

GroupBy = Literal["department", "category", "all"]


@dataclass
class KpiRow:
    key: str | None  # department code, category name, or None for the whole hotline
    name: str
    due: int = 0
    closed: int = 0
    closed_on_time: int = 0
    overdue_open: int = 0
    returns: int = 0
    extensions: int = 0
    avg_handling_working_days: float | None = None
    dispatched: int = 0
    dispatched_right: int = 0  # signed without a return or re-dispatch first
    suggested: int = 0  # first dispatches with a router suggestion
    suggestion_followed: int = 0  # … that went to the department the router suggested

    @property
    def on_time_rate(self) -> float | None:
        return ratio(self.closed_on_time, self.closed)

    @property
    def dispatch_accuracy(self) -> float | None:
        return ratio(self.dispatched_right, self.dispatched)

    @property
    def suggestion_agreement(self) -> float | None:
        return ratio(self.suggestion_followed, self.suggested)

    def as_dict(self) -> dict[str, Any]:
        rates = {
            "on_time_rate": self.on_time_rate,
            "dispatch_accuracy": self.dispatch_accuracy,
            "suggestion_agreement": self.suggestion_agreement,
        }
        return {**asdict(self), **rates}


def _ticket_key(group_by: GroupBy) -> ColumnElement[Any] | None:
    if group_by == "department":
        return Ticket.lead_department_id  # type: ignore[return-value]
    if group_by == "category":
        return Ticket.category_id  # type: ignore[return-value]
    return None


def _grouped(key: ColumnElement[Any] | None, *columns: Any) -> Select[Any]:
    """SELECT key, columns … GROUP BY key; with no key, one row for everything under key 0."""
    if key is None:
        return select(literal(0), *columns)
    return select(key, *columns).group_by(key)


def compute_kpis(
    session: Session,
    start: datetime,
    end: datetime,
    now: datetime,
    working_day_minutes: float,
    group_by: GroupBy = "department",
    department_id: int | None = None,
) -> list[KpiRow]:
    """KPIs for [start, end); `department_id` restricts the rows to one department (a liaison's view)."""
    key = _ticket_key(group_by)
    scope = [Ticket.lead_department_id == department_id] if department_id else []
    rows: dict[Any, KpiRow] = {}

    def row(k: Any) -> KpiRow:
        return rows.setdefault(0 if key is None else k, KpiRow(key=None, name=""))

    replied = and_(Ticket.replied_at >= start, Ticket.replied_at < end, *scope)
    on_time = func.sum(case((Ticket.replied_at <= Ticket.deadline, 1), else_=0))
    closed_q = (
        select(key, func.count(), on_time, func.avg(Ticket.handling_minutes)).where(replied).group_by(key)
    )
    for k, closed, closed_on_time, avg_minutes in session.execute(closed_q):
        r = row(k)
        r.closed, r.closed_on_time = closed, int(closed_on_time or 0)
        if avg_minutes is not None:
            r.avg_handling_working_days = round(float(avg_minutes) / working_day_minutes, 2)

    due_in_period = and_(Ticket.deadline >= start, Ticket.deadline < end, *scope)
    late_open = case(
        (and_(Ticket.state.in_([s.value for s in AT_DEPARTMENT]), Ticket.deadline < now), 1), else_=0
    )
    due_q = _grouped(key, func.count(), func.sum(late_open)).where(due_in_period)
    for k, due, overdue_open in session.execute(due_q):
        r = row(k)
        r.due, r.overdue_open = due, int(overdue_open or 0)

    _count_events(session, group_by, start, end, department_id, row)
    _count_dispatches(session, group_by, start, end, department_id, row)
    return _label(session, group_by, rows)


_SENT = (Action.DISPATCH.value, Action.REDISPATCH.value)
_SETTLED = (Action.SIGN.value, Action.RETURN.value, Action.REDISPATCH.value)


def _count_dispatches(
    session: Session, group_by: GroupBy, start: datetime, end: datetime, department_id: int | None, row: Any
) -> None:
    """Each dispatch of the period, and whether the next settling event of its ticket was a sign."""
    sent = select(
        TicketEvent.ticket_id,
        TicketEvent.seq,
        TicketEvent.department_id,
        Ticket.category_id,
        TicketEvent.action,
        TicketEvent.data,
    )
    sent = sent.join(Ticket, Ticket.id == TicketEvent.ticket_id).where(
        TicketEvent.action.in_(_SENT), TicketEvent.at >= start, TicketEvent.at < end
    )
    if department_id:
        sent = sent.where(TicketEvent.department_id == department_id)
    dispatches = session.execute(sent).all()
    if not dispatches:
        return
    later: dict[int, list[tuple[int, str]]] = {}
    ticket_ids = sorted({d.ticket_id for d in dispatches})
    for chunk in range(0, len(ticket_ids), 500):
        settling = select(TicketEvent.ticket_id, TicketEvent.seq, TicketEvent.action).where(
            TicketEvent.ticket_id.in_(ticket_ids[chunk : chunk + 500]), TicketEvent.action.in_(_SETTLED)
        )
        for ticket_id, seq, action in session.execute(settling.order_by(TicketEvent.seq)):
            later.setdefault(ticket_id, []).append((seq, action))
    for d in dispatches:
        r = row({"department": d.department_id, "category": d.category_id}.get(group_by))
        suggested = (d.data or {}).get("suggested") if d.action == Action.DISPATCH.value else None
        if suggested:
            r.suggested += 1
            r.suggestion_followed += suggested.get("department") == (d.data or {}).get("department")
        following = next((a for seq, a in later.get(d.ticket_id, ()) if seq > d.seq), None)
        if following is None:
            continue  # not settled yet: neither right nor wrong
        r.dispatched += 1
        r.dispatched_right += following == Action.SIGN.value


def _count_events(
    session: Session, group_by: GroupBy, start: datetime, end: datetime, department_id: int | None, row: Any
) -> None:
    counted = [Action.RETURN.value, Action.APPROVE_EXTENSION.value]
    in_period = [TicketEvent.action.in_(counted), TicketEvent.at >= start, TicketEvent.at < end]
    if department_id:
        in_period.append(TicketEvent.department_id == department_id)
    key = {"category": Ticket.category_id, "department": TicketEvent.department_id}.get(group_by)
    query = _grouped(key, TicketEvent.action, func.count()).group_by(TicketEvent.action)
    if group_by == "category":
        query = query.select_from(TicketEvent).join(Ticket, Ticket.id == TicketEvent.ticket_id)
    for k, action, count in session.execute(query.where(*in_period)):
        r = row(k)
        if action == Action.RETURN.value:
            r.returns = count
        else:
            r.extensions = count


def _label(session: Session, group_by: GroupBy, rows: dict[Any, KpiRow]) -> list[KpiRow]:
    if group_by == "department":
        names = {d.id: (d.code, d.name) for d in session.scalars(select(Department))}
    elif group_by == "category":
        names = {c.id: (c.name, c.name) for c in session.scalars(select(Category))}
    else:
        names = {0: (None, "全部")}
    result = []
    for k, r in rows.items():
        r.key, r.name = names.get(k, (None, "未分派"))
        result.append(r)
    return sorted(result, key=lambda r: (-r.closed, r.name))


def league_table(rows: list[KpiRow]) -> list[KpiRow]:
    """The departments ranked by on-time rate, best first; a department with nothing replied yet has
    no rate and goes last (by name), and rows without a department (未分派) are left out."""
    ranked = [r for r in rows if r.key]
    return sorted(
        ranked,
        key=lambda r: (r.on_time_rate is None, -(r.on_time_rate or 0.0), -r.closed, r.name),
    )
