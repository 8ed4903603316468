"""Figures for the supervisors' dashboard beyond the KPIs: satisfaction, a daily trend, the lists of
tickets near their deadline and of requests waiting for a decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.departments import Department
from core.figures import ratio
from dispatch.models import SubCategory, Ticket, TicketEvent
from dispatch.states import AT_DEPARTMENT, Action, TicketState
from sla.models import SlaWarning

SATISFIED = ("satisfied", "basically_satisfied")


@dataclass(frozen=True)
class Satisfaction:
    surveyed: int
    satisfied: int  # satisfied + basically satisfied

    @property
    def rate(self) -> float | None:
        return ratio(self.satisfied, self.surveyed)


def satisfaction(session: Session, start: datetime, end: datetime) -> Satisfaction:
    """满意率 = (satisfied + basically satisfied) / surveyed, over the callbacks recorded in [start, end)."""
    results = session.scalars(
        select(TicketEvent.data).where(
            TicketEvent.action == Action.RECORD_CALLBACK.value, TicketEvent.at >= start, TicketEvent.at < end
        )
    )
    values = [(data or {}).get("result") for data in results]
    return Satisfaction(len(values), sum(1 for v in values if v in SATISFIED))


@dataclass
class Day:
    day: date
    registered: int = 0
    on_the_spot: int = 0
    replied: int = 0
    replied_on_time: int = 0

    @property
    def on_time_rate(self) -> float | None:
        return ratio(self.replied_on_time, self.replied)


def daily_trend(session: Session, first: date, days: int) -> list[Day]:
    """Per day from `first`: tickets registered, answered on the spot, replied and replied on time."""
    start = datetime.combine(first, time())
    end = start + timedelta(days=days)
    out = {first + timedelta(days=i): Day(first + timedelta(days=i)) for i in range(days)}

    def day_of(value: object) -> date:
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])

    created = func.date(Ticket.created_at)
    for day, count in session.execute(
        select(created, func.count())
        .where(Ticket.created_at >= start, Ticket.created_at < end)
        .group_by(created)
    ):
        out[day_of(day)].registered = count
    spot_day = func.date(TicketEvent.at)
    for day, count in session.execute(
        select(spot_day, func.count())
        .where(
            TicketEvent.action == Action.ANSWER_ON_SPOT.value, TicketEvent.at >= start, TicketEvent.at < end
        )
        .group_by(spot_day)
    ):
        out[day_of(day)].on_the_spot = count
    replied = func.date(Ticket.replied_at)
    on_time = func.sum(case((Ticket.replied_at <= Ticket.deadline, 1), else_=0))
    for day, count, in_time in session.execute(
        select(replied, func.count(), on_time)
        .where(Ticket.replied_at >= start, Ticket.replied_at < end)
        .group_by(replied)
    ):
        out[day_of(day)].replied, out[day_of(day)].replied_on_time = count, int(in_time or 0)
    return list(out.values())


def near_deadline(session: Session, now: datetime, until: datetime, limit: int = 50) -> list[Ticket]:
    """Tickets at a department whose deadline falls between now and `until`, soonest first."""
    return list(
        session.scalars(
            select(Ticket)
            .where(
                Ticket.state.in_([s.value for s in AT_DEPARTMENT]),
                Ticket.deadline >= now,
                Ticket.deadline <= until,
            )
            .order_by(Ticket.deadline)
            .limit(limit)
        ).unique()
    )


def waiting_decisions(session: Session, limit: int = 50) -> list[Ticket]:
    """Extension requests, returned tickets and replies to review: they wait for the hotline (approve,
    refuse, re-dispatch, approve or send back the reply)."""
    review = (Ticket.state == TicketState.REPLIED.value) & Ticket.reply_approved_at.is_(None)
    return list(
        session.scalars(
            select(Ticket)
            .where(
                (Ticket.extension_requested_days.is_not(None))
                | (Ticket.state == TicketState.RETURNED.value)
                | review
            )
            .order_by(Ticket.updated_at)
            .limit(limit)
        ).unique()
    )


@dataclass(frozen=True)
class Topic:
    name: str  # the sub-category (or 未分类)
    count: int


def top_topics(session: Session, start: datetime, end: datetime, limit: int = 5) -> list[Topic]:
    """What the day's (or any period's) tickets were about most: counts per sub-category."""
    name = func.coalesce(SubCategory.name, "未分类")
    rows = session.execute(
        select(name, func.count())
        .select_from(Ticket)
        .outerjoin(SubCategory, SubCategory.id == Ticket.subcategory_id)
        .where(Ticket.created_at >= start, Ticket.created_at < end)
        .group_by(name)
        .order_by(func.count().desc(), name)
        .limit(limit)
    )
    return [Topic(n, c) for n, c in rows]


@dataclass(frozen=True)
class Alert:
    number: str
    message: str
    department: str | None
    at: datetime


def recent_alerts(session: Session, since: datetime, limit: int = 8) -> list[Alert]:
    """The supervision warnings raised since `since` (即将到期, 已超期 …), newest first."""
    rows = session.execute(
        select(Ticket.number, SlaWarning.message, Department.name, SlaWarning.created_at)
        .join(Ticket, Ticket.id == SlaWarning.ticket_id)
        .outerjoin(Department, Department.id == SlaWarning.department_id)
        .where(SlaWarning.created_at >= since)
        .order_by(SlaWarning.created_at.desc(), SlaWarning.id.desc())
        .limit(limit)
    )
    return [Alert(*row) for row in rows]
