"""Electronic supervision (电子督办): the sweep that raises deadline warnings and supervises overdue tickets.

A sweep is a handful of set-based statements, one per warning level: INSERT … SELECT over the open
tickets, with ON CONFLICT DO NOTHING on (ticket, level, deadline). The tickets table holds all the
SLA state, so a sweep after downtime raises what was missed, once, and a second process (or a
restart mid-sweep) can never raise a warning twice. Only one process sweeps at a time: PostgreSQL
decides with a transaction-scoped advisory lock, SQLite with its single writer lock.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, DateTime, Select, and_, literal, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.actor import Actor
from core.clock import Clock
from dispatch.models import Category, Ticket
from dispatch.state_machine import supervise_in_bulk
from dispatch.states import AT_DEPARTMENT, TicketState
from sla.calendar import WorkCalendar
from sla.models import SlaWarning, SweepRun
from sla.settings import WarningLevel

log = logging.getLogger("sla.sweep")
SWEEP_NAME = "sla"
# Any constant works; it only has to be the same in every process of one installation.
ADVISORY_LOCK_KEY = 12345_0001


@dataclass
class SweepResult:
    started_at: datetime
    raised: dict[str, int] = field(default_factory=dict)
    supervised: int = 0

    @property
    def total(self) -> int:
        return sum(self.raised.values())


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim(session: Session, now: datetime, name: str = SWEEP_NAME, key: int = ADVISORY_LOCK_KEY) -> bool:
    """Take the sweep lock `name` for this transaction; False when another process is sweeping."""
    if session.get_bind().dialect.name == "postgresql":
        got = session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})
        if not got:
            return False
    run = session.get(SweepRun, name)
    if run is None:
        run = SweepRun(name=name, raised=0)
        session.add(run)
    run.holder, run.started_at = _holder(), now
    session.flush()  # on SQLite this write takes the database's writer lock for the whole sweep
    return True


def _candidates(level: WarningLevel, now: datetime, calendar: WorkCalendar) -> Select[tuple[object, ...]]:
    at_department = Ticket.state.in_([s.value for s in AT_DEPARTMENT])
    reference: ColumnElement[datetime]
    if level.kind == "overdue":
        reference = Ticket.deadline  # type: ignore[assignment]
        condition = and_(at_department, Ticket.deadline < now)
    elif level.kind == "due_within":
        assert level.working_hours is not None
        horizon = calendar.add_working_time(now, timedelta(hours=level.working_hours))
        reference = Ticket.deadline  # type: ignore[assignment]
        condition = and_(at_department, Ticket.deadline >= now, Ticket.deadline <= horizon)
    else:
        assert level.minutes is not None
        reference = Ticket.dispatched_at  # type: ignore[assignment]
        condition = and_(
            Ticket.state == TicketState.DISPATCHED.value,
            Ticket.dispatched_at <= now - timedelta(minutes=level.minutes),
        )
    query = select(
        Ticket.id,
        literal(level.name),
        reference,
        Ticket.lead_department_id,
        literal(now, DateTime),
        literal(level.label),
    ).where(condition)
    if level.handlings:
        query = query.join(Category, Category.id == Ticket.category_id).where(
            Category.handling.in_(level.handlings)
        )
    return query


def _raise_level(session: Session, level: WarningLevel, now: datetime, calendar: WorkCalendar) -> list[int]:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    columns = ["ticket_id", "level", "reference_at", "department_id", "created_at", "message"]
    statement = (
        insert(SlaWarning)
        .from_select(columns, _candidates(level, now, calendar))
        .on_conflict_do_nothing(index_elements=["ticket_id", "level", "reference_at"])
        .returning(SlaWarning.ticket_id)
    )
    return list(session.scalars(statement))


def sweep(
    session: Session, levels: list[WarningLevel], calendar: WorkCalendar, now: datetime
) -> SweepResult | None:
    """One sweep inside the caller's transaction; None when another process holds the sweep."""
    if not _claim(session, now):
        return None
    result = SweepResult(started_at=now)
    for level in levels:
        ticket_ids = _raise_level(session, level, now, calendar)
        result.raised[level.name] = len(ticket_ids)
        if level.supervise and ticket_ids:
            note = f"系统自动督办：{level.label}"
            result.supervised += supervise_in_bulk(session, ticket_ids, Actor.system(), now, note)
    run = session.get(SweepRun, SWEEP_NAME)
    assert run is not None
    run.finished_at, run.raised = now, result.total
    run.note = ", ".join(f"{name}={count}" for name, count in result.raised.items())
    return result


def run_sweep(
    sessions: sessionmaker[Session], levels: list[WarningLevel], calendar: WorkCalendar, clock: Clock
) -> SweepResult | None:
    """A sweep in its own transaction, as the scheduler runs it."""
    session = sessions()
    try:
        result = sweep(session, levels, calendar, clock.now())
        session.commit()
    except OperationalError as exc:
        # SQLite: another process held the writer lock past busy_timeout; it is sweeping.
        session.rollback()
        log.info("SLA sweep skipped: database busy (%s)", exc.orig)
        return None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    if result is not None and result.total:
        log.info("SLA sweep raised %s, supervised %d", result.raised, result.supervised)
    return result


claim_sweep = _claim

__all__ = ["SweepResult", "claim_sweep", "run_sweep", "sweep"]
