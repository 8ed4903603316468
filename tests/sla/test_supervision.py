"""The supervision sweep: warnings raised once, overdue tickets supervised, one sweeper at a time."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select, text

from core.accounts.actor import Actor, actor_of
from core.accounts.models import Role
from core.accounts.service import create_user
from core.clock import ManualClock
from core.departments import Department
from dispatch import schemas
from dispatch.models import Ticket, TicketEvent
from dispatch.state_machine import replay
from dispatch.states import Action
from hotline.context import HotlineContext
from sla.models import SlaWarning, SweepRun
from sla.supervision import ADVISORY_LOCK_KEY, run_sweep
from tests.conftest import MONDAY_9, Staff, make_settings
from tests.helpers import dispatched


def _sweep(ctx: HotlineContext) -> dict[str, int]:
    result = run_sweep(ctx.sessions, ctx.settings.sla.warnings, ctx.calendar, ctx.clock)
    assert result is not None
    return result.raised


def _warnings(ctx: HotlineContext, number: str) -> list[str]:
    with ctx.unit_of_work() as session:
        query = select(SlaWarning.level).join(Ticket, Ticket.id == SlaWarning.ticket_id)
        return sorted(session.scalars(query.where(Ticket.number == number)))


def test_due_soon_then_overdue_each_once(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    number = dispatched(ctx, staff, "停水", "sw")  # due Tuesday 17:30
    assert _sweep(ctx) == {"due_soon": 0, "overdue": 0, "emergency_unsigned": 0}
    clock.set(MONDAY_9.replace(hour=16))  # 8 working hours left (1.5 today, 6.5 tomorrow): not yet
    assert _sweep(ctx)["due_soon"] == 0
    clock.set(MONDAY_9.replace(hour=17))  # exactly 7 working hours left
    assert _sweep(ctx)["due_soon"] == 1
    for _ in range(3):
        assert _sweep(ctx)["due_soon"] == 0
    clock.set(MONDAY_9 + timedelta(days=1, hours=9))  # Tuesday 18:00: overdue
    assert _sweep(ctx)["overdue"] == 1
    assert _sweep(ctx)["overdue"] == 0
    assert _warnings(ctx, number) == ["due_soon", "overdue"]


def test_overdue_ticket_is_supervised_by_the_system(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = dispatched(ctx, staff, "停水", "sw")
    clock.advance(timedelta(days=3))
    _sweep(ctx)
    _sweep(ctx)
    with ctx.unit_of_work() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        assert ticket.supervision_count == 1
        supervise = [e for e in ticket.events if e.action == Action.SUPERVISE.value]
        assert len(supervise) == 1
        assert supervise[0].actor_name == "系统" and supervise[0].actor_id is None
        assert supervise[0].from_state == supervise[0].to_state == "dispatched"
        assert supervise[0].note is not None and "已超期" in supervise[0].note
        assert [e.seq for e in ticket.events] == list(range(1, len(ticket.events) + 1))
        assert replay(ticket.events) == ticket.state_enum
    # The liaison can still act: the version bump did not leave a stale ticket behind.
    with ctx.unit_of_work() as session:
        ctx.tickets(session).act(number, staff.water, Action.SIGN, schemas.NoteBody())


def test_restart_and_downtime_raise_missed_warnings_once(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = dispatched(ctx, staff, "停水", "sw")
    _sweep(ctx)
    # The process is down for a week; a new process (new engine, new calendar) starts and catches up.
    ctx.close()
    clock.advance(timedelta(days=7))
    restarted = HotlineContext.from_settings(ctx.settings, clock=clock)
    raised = _sweep(restarted)
    assert raised["overdue"] == 1 and raised["due_soon"] == 0  # the deadline already passed: not "due soon"
    again = HotlineContext.from_settings(ctx.settings, clock=clock)
    assert sum(_sweep(again).values()) == 0
    assert _warnings(again, number) == ["overdue"]
    with again.unit_of_work() as session:
        run = session.get(SweepRun, "sla")
        assert run is not None and run.finished_at == clock.now()
    restarted.close()
    again.close()


def test_extension_moves_the_deadline_and_warnings_follow(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = dispatched(ctx, staff, "噪音扰民", "sthjj")  # due Monday 2026-11-23 17:30
    sthjj = _liaison_for(ctx, "sthjj")
    clock.set(MONDAY_9 + timedelta(days=7, hours=8))  # Monday 17:00: due soon
    assert _sweep(ctx)["due_soon"] == 1
    with ctx.unit_of_work() as session:
        tickets = ctx.tickets(session)
        tickets.act(number, sthjj, Action.SIGN, schemas.NoteBody())
        tickets.act(
            number, sthjj, Action.REQUEST_EXTENSION, schemas.ExtensionBody(days=3, reason="需现场监测")
        )
        tickets.act(number, staff.supervisor, Action.APPROVE_EXTENSION, schemas.NoteBody())
    clock.set(MONDAY_9 + timedelta(days=10, hours=8))  # Thursday 17:00, new deadline 11-26 17:30
    assert _sweep(ctx)["due_soon"] == 1
    assert _warnings(ctx, number) == ["due_soon", "due_soon"]
    assert _sweep(ctx)["due_soon"] == 0


def _liaison_for(ctx: HotlineContext, code: str) -> Actor:

    with ctx.unit_of_work() as session:
        dept = session.scalar(select(Department.id).where(Department.code == code))
        user = create_user(
            session, f"{code}_x", "password-123", Role.LIAISON, f"{code}联络员", ctx.clock.now(), dept
        )
        return actor_of(user)


def test_emergency_not_signed_within_15_minutes(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    emergency = dispatched(ctx, staff, "道路塌陷", "ddzx")
    ordinary = dispatched(ctx, staff, "停水", "sw")
    clock.advance(timedelta(minutes=14))
    assert _sweep(ctx)["emergency_unsigned"] == 0
    clock.advance(timedelta(minutes=2))
    assert _sweep(ctx)["emergency_unsigned"] == 1
    assert "emergency_unsigned" in _warnings(ctx, emergency)
    assert "emergency_unsigned" not in _warnings(ctx, ordinary)
    clock.advance(timedelta(hours=1))  # the first reply was due within the hour: overdue, supervised
    assert _sweep(ctx)["overdue"] == 1


def _sweep_in_process(url: str, start: str, rounds: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from datetime import datetime

    ctx = HotlineContext.from_settings(make_settings(url), clock=ManualClock(datetime.fromisoformat(start)))
    swept = skipped = 0
    for _ in range(rounds):
        result = run_sweep(ctx.sessions, ctx.settings.sla.warnings, ctx.calendar, ctx.clock)
        swept, skipped = (swept + 1, skipped) if result is not None else (swept, skipped + 1)
    ctx.close()
    queue.put((swept, skipped))


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_processes_sweep_postgres_one_at_a_time(
    pg_database: str, staff: Staff, ctx: HotlineContext
) -> None:
    numbers = [dispatched(ctx, staff, "停水", "sw") for _ in range(40)]
    later = (MONDAY_9 + timedelta(days=5)).isoformat()
    # While this connection holds the advisory lock, another process's sweep stands aside.
    holder = create_engine(ctx.settings.database_url)
    with holder.connect() as conn:
        conn.execute(text("BEGIN"))
        assert conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar()
        mp = multiprocessing.get_context("spawn")
        queue = mp.Queue()
        blocked = mp.Process(target=_sweep_in_process, args=(ctx.settings.database_url, later, 1, queue))
        blocked.start()
        blocked.join(60)
        assert queue.get(timeout=5) == (0, 1)
        conn.execute(text("ROLLBACK"))
    holder.dispose()
    # Two processes sweeping over and over at the same time: every warning and supervision once.
    workers = [
        mp.Process(target=_sweep_in_process, args=(ctx.settings.database_url, later, 15, queue))
        for _ in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    outcomes = [queue.get(timeout=5) for _ in workers]
    assert sum(swept for swept, _ in outcomes) >= 1
    with ctx.unit_of_work() as session:
        overdue = session.scalar(
            select(func.count()).select_from(SlaWarning).where(SlaWarning.level == "overdue")
        )
        supervised = session.scalar(
            select(func.count()).select_from(TicketEvent).where(TicketEvent.action == Action.SUPERVISE.value)
        )
        counts = set(session.scalars(select(Ticket.supervision_count).where(Ticket.number.in_(numbers))))
    assert overdue == 40 and supervised == 40 and counts == {1}
