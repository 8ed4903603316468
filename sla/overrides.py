"""Working-calendar overrides kept in the database (the admin page), on top of the official calendar
and the config file: a local day off (e.g. a county holiday) or a local make-up working day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from sqlalchemy import CheckConstraint, Date, DateTime, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base
from sla.calendar import WorkCalendar

Kind = Literal["holiday", "workday"]
KIND_LABELS = {"holiday": "放假（非工作日）", "workday": "调休上班（工作日）"}


class CalendarOverride(Base):
    __tablename__ = "calendar_overrides"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class OverrideError(ValueError):
    def __init__(self, message: str, zh: str, status: int = 422) -> None:
        super().__init__(message)
        self.zh, self.status = zh, status


def list_overrides(session: Session) -> list[CalendarOverride]:
    return list(session.scalars(select(CalendarOverride).order_by(CalendarOverride.day.desc())))


def set_override(
    session: Session, day: date, kind: Kind, note: str | None, by: str, now: datetime
) -> CalendarOverride:
    """Declare `day` a holiday or a working day (replacing an earlier override of that day)."""
    if kind not in KIND_LABELS:
        raise OverrideError(f"kind must be holiday or workday, got {kind!r}", "类型必须是放假或调休上班")
    if day < now.date():
        raise OverrideError(f"{day} is in the past", f"{day} 已经过去，不能再修改")
    row = session.scalar(select(CalendarOverride).where(CalendarOverride.day == day))
    if row is None:
        row = CalendarOverride(day=day)
        session.add(row)
    row.kind, row.note, row.created_by, row.created_at = kind, (note or None), by, now
    session.flush()
    return row


def remove_override(session: Session, day: date) -> None:
    row = session.scalar(select(CalendarOverride).where(CalendarOverride.day == day))
    if row is None:
        raise OverrideError(f"no override for {day}", f"{day} 没有本地调整", 404)
    session.delete(row)
    session.flush()


def apply_overrides(session: Session, calendar: WorkCalendar) -> None:
    """Load the database's overrides into the calendar (at start and after every change).

    Deadlines already set keep their date; tickets dispatched from now on count with the new days."""
    rows = list_overrides(session)
    calendar.set_local_overrides(
        {r.day for r in rows if r.kind == "holiday"}, {r.day for r in rows if r.kind == "workday"}
    )
