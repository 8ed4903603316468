"""The numbers of the monthly analysis report (月度分析报告), read from the tickets: volumes by
channel, category, department and town; the 三率 league; twelve months of on-time and satisfaction
rates; the month's topics, rising topics and 每月一题 candidates; the hotspot alerts; counts per
community for the map."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.departments import Department
from dispatch.gazetteer import Gazetteer
from dispatch.models import CHANNEL_LABELS, Category, Channel, Ticket
from sla.calendar import WorkCalendar
from sla.evaluation import League, league_tables, month_range, previous_month
from sla.kpi import compute_kpis
from sla.models import HotspotAlert
from sla.report.topics import Doc, Topic, month_topics, one_problem_a_month, rising
from sla.reports import Day, daily_trend, satisfaction
from sla.settings import SlaSection

TREND_MONTHS = 12


@dataclass
class MonthPoint:
    month: date
    registered: int
    on_time_rate: float | None
    satisfaction_rate: float | None


@dataclass
class MonthlyFigures:
    month: date
    generated_at: datetime
    county: str
    total: int
    previous_total: int
    on_the_spot: int
    by_channel: list[tuple[str, int]]
    by_category: list[tuple[str, int]]
    by_department: list[tuple[str, int]]
    by_town: list[tuple[str, int]]
    by_community: dict[str, int]
    daily: list[Day]
    trend: list[MonthPoint]
    leagues: list[League]
    town_leagues: list[League]
    topics: list[Topic]
    rising: list[Topic]
    proposals: list[Topic]
    alerts: list[HotspotAlert] = field(default_factory=list)

    @property
    def change(self) -> float | None:
        """This month's volume against last month's (+0.12 = 12 % more)."""
        if not self.previous_total:
            return None
        return round(self.total / self.previous_total - 1, 4)

    @property
    def label(self) -> str:
        return f"{self.month:%Y年%m月}"


def _counts(session: Session, column: Any, start: datetime, end: datetime) -> list[tuple[Any, int]]:
    query = (
        select(column, func.count())
        .select_from(Ticket)
        .where(Ticket.created_at >= start, Ticket.created_at < end)
        .group_by(column)
        .order_by(func.count().desc())
    )
    return [(k, n) for k, n in session.execute(query)]


def _named(rows: list[tuple[Any, int]], names: dict[Any, str], missing: str) -> list[tuple[str, int]]:
    return [(names.get(k, missing) if k is not None else missing, n) for k, n in rows]


def _docs(session: Session, start: datetime, end: datetime) -> list[Doc]:
    query = (
        select(Ticket.number, Ticket.content, Department.name)
        .outerjoin(Department, Department.id == Ticket.lead_department_id)
        .where(Ticket.created_at >= start, Ticket.created_at < end)
        .order_by(Ticket.id)
    )
    return [Doc(n, c, d) for n, c, d in session.execute(query)]


def _trend(session: Session, first: date, now: datetime, working_day_minutes: float) -> list[MonthPoint]:
    months = [first]
    for _ in range(TREND_MONTHS - 1):
        months.insert(0, previous_month(months[0]))
    points = []
    for m in months:
        start, end = month_range(m)
        registered = session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.created_at >= start, Ticket.created_at < end)
        )
        kpi = compute_kpis(session, start, end, now, working_day_minutes, "all")
        points.append(
            MonthPoint(
                m,
                registered or 0,
                kpi[0].on_time_rate if kpi else None,
                satisfaction(session, start, end).rate,
            )
        )
    return points


def monthly_figures(
    session: Session,
    settings: SlaSection,
    calendar: WorkCalendar,
    places: Gazetteer,
    first: date,
    now: datetime,
) -> MonthlyFigures:
    start, end = month_range(first)
    before_start, before_end = month_range(previous_month(first))
    departments = {d.id: d.name for d in session.scalars(select(Department))}
    categories = {c.id: c.name for c in session.scalars(select(Category))}
    towns = {t.code: t.name for t in places.towns}
    channels = {c.value: label for c, label in CHANNEL_LABELS.items()}
    total = sum(n for _, n in _counts(session, Ticket.channel, start, end))
    docs = _docs(session, start, end)
    topics = month_topics(docs, _docs(session, before_start, before_end), top=0)
    minutes = calendar.working_day_length.total_seconds() / 60
    evaluation = settings.evaluation
    return MonthlyFigures(
        month=first,
        generated_at=now,
        county=places.spec.county,
        total=total,
        previous_total=sum(n for _, n in _counts(session, Ticket.channel, before_start, before_end)),
        on_the_spot=session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.created_at >= start, Ticket.created_at < end, Ticket.kb_entry_id.is_not(None))
        )
        or 0,
        by_channel=_named(_counts(session, Ticket.channel, start, end), channels, Channel.PHONE.value),
        by_category=_named(_counts(session, Ticket.category_id, start, end), categories, "未分类"),
        by_department=_named(_counts(session, Ticket.lead_department_id, start, end), departments, "未派单"),
        by_town=_named(_counts(session, Ticket.town_code, start, end), towns, "未定位"),
        by_community={k: n for k, n in _counts(session, Ticket.community_code, start, end) if k},
        daily=daily_trend(session, first, (end - start).days),
        trend=_trend(session, first, now, minutes),
        leagues=league_tables(session, evaluation, calendar, first, now, "unit", towns),
        town_leagues=league_tables(session, evaluation, calendar, first, now, "town", towns),
        topics=topics[:10],
        rising=rising(topics)[:5],
        proposals=one_problem_a_month(topics),
        alerts=list(
            session.scalars(
                select(HotspotAlert)
                .where(HotspotAlert.created_at >= start, HotspotAlert.created_at < end)
                .order_by(HotspotAlert.created_at)
            )
        ),
    )
