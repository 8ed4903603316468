"""Real races on one ticket: several threads, each with its own database connection and session.

Each racer first reads the ticket (so both have seen it in its old state), then all meet at a
barrier and act at once; the one that gets there first keeps its transaction open for a moment, so
the other really collides with it (on PostgreSQL it waits on the row lock of SELECT … FOR UPDATE,
on SQLite on the database write lock / the version column). Exactly one may win, the loser must get
a clear HotlineError, and the stored ticket and its event log must agree with the winner.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import create_engine, func, select, text

from core.accounts.actor import Actor, actor_of
from core.accounts.models import Role
from core.accounts.service import create_user
from core.clock import ManualClock
from core.db import make_engine
from core.departments import Department
from core.errors import ConcurrentChange, HotlineError, RuleViolation
from core.migrate import upgrade
from core.web import commit
from dispatch import schemas
from dispatch.catalog import load_category_tree, sync_category_tree
from dispatch.errors import IllegalTransition
from dispatch.models import Ticket, TicketCounter
from dispatch.state_machine import replay, supervise_in_bulk
from dispatch.states import TRANSITIONS, Action, TicketState
from hotline.context import HotlineContext
from hotline.demo_data import load_departments
from hotline.schema import metadata
from tests.conftest import MONDAY_9, PASSWORD, make_settings, subcategory_id

REPEAT = 20
HOLD = 0.05  # seconds the first racer keeps its transaction (and its locks) open after acting


@dataclass
class People:
    operator: Actor
    supervisor: Actor
    water: Actor
    water2: Actor


def _empty(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


def _prepare(context: HotlineContext) -> People:
    with context.unit_of_work() as session:
        load_departments(session)
        sync_category_tree(
            session, load_category_tree(context.settings.resolve(context.settings.dispatch.category_tree))
        )
        water = session.scalar(select(Department.id).where(Department.code == "sw"))
        now = context.clock.now()
        users = [
            create_user(session, "race_op", PASSWORD, Role.OPERATOR, "race_op", now),
            create_user(session, "race_sup", PASSWORD, Role.SUPERVISOR, "race_sup", now),
            create_user(session, "race_sw1", PASSWORD, Role.LIAISON, "race_sw1", now, water),
            create_user(session, "race_sw2", PASSWORD, Role.LIAISON, "race_sw2", now, water),
        ]
        return People(*(actor_of(u) for u in users))


@pytest.fixture
def pg_ctx(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[HotlineContext]:
    """Like conftest's `ctx`, on the run's PostgreSQL database, emptied before and after."""
    monkeypatch.delenv("HOTLINE_DATABASE_URL", raising=False)
    _empty(pg_database)
    context = HotlineContext.from_settings(make_settings(pg_database), clock=ManualClock(MONDAY_9))
    try:
        yield context
    finally:
        context.close()
        _empty(pg_database)


@pytest.fixture
def sqlite_ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HotlineContext]:
    monkeypatch.delenv("HOTLINE_DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'race.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    context = HotlineContext.from_settings(make_settings(url), clock=ManualClock(MONDAY_9))
    try:
        yield context
    finally:
        context.close()


@dataclass
class Move:
    actor: Actor
    action: Action
    body: BaseModel
    outcome: BaseException | str | None = None  # "ok", the error, or None if it never finished
    acted_at: float = 0.0
    done_at: float = 0.0
    events_seen: int = field(default=0)


def run_race(ctx: HotlineContext, number: str, moves: list[Move], hold: float = HOLD) -> None:
    """Every move in its own thread and session: read the ticket, meet at the barrier, act, hold, commit."""
    barrier = threading.Barrier(len(moves))

    def racer(move: Move) -> None:
        session = ctx.sessions()
        try:
            tickets = ctx.tickets(session)
            seen = tickets.get(number, move.actor)  # the racer has seen the ticket in its old state
            move.events_seen = len(seen.events)
            barrier.wait(timeout=10)
            move.acted_at = time.monotonic()
            tickets.act(number, move.actor, move.action, move.body)
            time.sleep(hold)  # keep the transaction open while the other racer tries
            commit(session)
            move.outcome = "ok"
        except BaseException as exc:  # recorded and judged by the test, never swallowed
            session.rollback()
            move.outcome = exc
        finally:
            move.done_at = time.monotonic()
            session.close()

    threads = [threading.Thread(target=racer, args=(m,), daemon=True) for m in moves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racer hangs (deadlock?)"


def new_ticket(ctx: HotlineContext, people: People, *steps: tuple[Actor, Action, BaseModel]) -> str:
    with ctx.unit_of_work() as session:
        tickets = ctx.tickets(session)
        number = tickets.register(
            people.operator, schemas.TicketCreate(content="河西路18号停水", caller_phone="13900001111")
        ).number
        sub = subcategory_id(session, "停水")
        tickets.act(
            number,
            people.operator,
            Action.DISPATCH,
            schemas.DispatchBody(department="sw", subcategory_id=sub),
        )
        for actor, action, body in steps:
            tickets.act(number, actor, action, body)
    return number


def stored(ctx: HotlineContext, number: str) -> tuple[TicketState, list[tuple[int, str, str]]]:
    with ctx.unit_of_work() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        events = list(ticket.events)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert replay(events) == ticket.state_enum, [(e.action, e.from_state, e.to_state) for e in events]
        return ticket.state_enum, [(e.seq, e.action, e.actor_name) for e in events]


def overlapped(moves: list[Move]) -> bool:
    """The loser started acting before the winner had committed: the two really collided."""
    winner = next(m for m in moves if m.outcome == "ok")
    return all(m.acted_at < winner.done_at for m in moves if m is not winner)


def judge(
    ctx: HotlineContext, number: str, moves: list[Move], allowed: tuple[type[HotlineError], ...]
) -> Move:
    """Exactly one winner; every loser got a clear HotlineError; the database agrees with the winner."""
    unexpected = [m.outcome for m in moves if m.outcome != "ok" and not isinstance(m.outcome, allowed)]
    assert not unexpected, unexpected
    winners = [m for m in moves if m.outcome == "ok"]
    assert len(winners) == 1, [m.outcome for m in moves]
    winner = winners[0]
    for loser in (m for m in moves if m is not winner):
        assert isinstance(loser.outcome, HotlineError)
        assert number in str(loser.outcome) or isinstance(loser.outcome, ConcurrentChange)
        assert "try again" in str(loser.outcome) or "not allowed" in str(loser.outcome), loser.outcome
        assert loser.outcome.zh
    state, events = stored(ctx, number)
    expected = TRANSITIONS[winner.action].target
    assert state == expected
    assert events[-1][1:] == (winner.action.value, winner.actor.name)
    for loser in (m for m in moves if m is not winner):
        if loser.action != winner.action:
            assert loser.action.value not in [action for _, action, _ in events]
    return winner


# ---- PostgreSQL -------------------------------------------------------------------------------------


def test_two_liaisons_sign_at_once_postgres(pg_ctx: HotlineContext) -> None:
    people = _prepare(pg_ctx)
    winners: set[str] = set()
    collisions = 0
    for _ in range(REPEAT):
        number = new_ticket(pg_ctx, people)
        moves = [
            Move(people.water, Action.SIGN, schemas.NoteBody(note="我来")),
            Move(people.water2, Action.SIGN, schemas.NoteBody(note="我来")),
        ]
        run_race(pg_ctx, number, moves)
        winner = judge(pg_ctx, number, moves, (IllegalTransition, ConcurrentChange))
        winners.add(winner.actor.name)
        collisions += overlapped(moves)
        _, events = stored(pg_ctx, number)
        assert [action for _, action, _ in events].count("sign") == 1
        # Both had read the ticket before either acted.
        assert all(m.events_seen == 2 for m in moves)
    assert winners  # (who wins is up to the scheduler)
    assert collisions >= REPEAT // 2, collisions


def test_reply_races_return_postgres(pg_ctx: HotlineContext) -> None:
    people = _prepare(pg_ctx)
    seen: set[Action] = set()
    collisions = 0
    for _ in range(REPEAT):
        number = new_ticket(pg_ctx, people, (people.water, Action.SIGN, schemas.NoteBody()))
        moves = [
            Move(people.water, Action.REPLY, schemas.ReplyBody(result="已修复")),
            Move(people.water2, Action.RETURN, schemas.ReasonBody(reason="不归我们管")),
        ]
        run_race(pg_ctx, number, moves)
        winner = judge(pg_ctx, number, moves, (IllegalTransition, ConcurrentChange))
        seen.add(winner.action)
        collisions += overlapped(moves)
        state, events = stored(pg_ctx, number)
        assert state in (TicketState.REPLIED, TicketState.RETURNED)
        assert [action for _, action, _ in events][:3] == ["register", "dispatch", "sign"]
        assert len(events) == 4
    assert seen
    assert collisions >= REPEAT // 2, collisions


def test_waiting_racer_sees_the_new_state_postgres(pg_ctx: HotlineContext) -> None:
    """The one that comes second waits on the row lock, then gets IllegalTransition naming the state."""
    people = _prepare(pg_ctx)
    number = new_ticket(pg_ctx, people)
    first_acted = threading.Event()
    results: dict[str, object] = {}
    hold = 0.5

    def first() -> None:
        with pg_ctx.unit_of_work() as session:
            pg_ctx.tickets(session).act(number, people.water, Action.SIGN, schemas.NoteBody())
            first_acted.set()
            time.sleep(hold)
            results["first_commit"] = time.monotonic()

    def second() -> None:
        session = pg_ctx.sessions()
        try:
            tickets = pg_ctx.tickets(session)
            assert tickets.get(number, people.water2).state == "dispatched"  # read before the other acts
            assert first_acted.wait(10)
            started = time.monotonic()
            try:
                tickets.act(number, people.water2, Action.SIGN, schemas.NoteBody())
                commit(session)
                results["second"] = "ok"
            except HotlineError as exc:
                results["second"] = exc
            results["second_waited"] = time.monotonic() - started
            results["second_done"] = time.monotonic()
        finally:
            session.rollback()
            session.close()

    threads = [threading.Thread(target=second), threading.Thread(target=first)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    error = results["second"]
    assert isinstance(error, IllegalTransition), error
    assert str(error) == f"ticket {number} is in_progress; action 'sign' is not allowed in that state"
    assert "办理中" in error.zh
    assert results["second_waited"] >= hold * 0.8  # type: ignore[operator]
    assert results["second_done"] >= results["first_commit"]  # type: ignore[operator]
    state, events = stored(pg_ctx, number)
    assert state == TicketState.IN_PROGRESS
    assert [(a, who) for _, a, who in events][-1] == ("sign", "race_sw1")


def test_compatible_actions_at_once_both_land_postgres(pg_ctx: HotlineContext) -> None:
    """A supervision and a signature at the same moment are both legal: both land, in some order."""
    people = _prepare(pg_ctx)
    for _ in range(5):
        number = new_ticket(pg_ctx, people)
        moves = [
            Move(people.water, Action.SIGN, schemas.NoteBody()),
            Move(people.supervisor, Action.SUPERVISE, schemas.NoteBody(note="加快")),
        ]
        run_race(pg_ctx, number, moves)
        assert [m.outcome for m in moves] == ["ok", "ok"]
        state, events = stored(pg_ctx, number)
        assert state == TicketState.IN_PROGRESS
        assert sorted(a for _, a, _ in events[2:]) == ["sign", "supervise"]


def test_cross_merge_never_makes_a_cycle_postgres(pg_ctx: HotlineContext) -> None:
    """Merging A into B while someone merges B into A: one merge, no cycle, no hang."""
    people = _prepare(pg_ctx)
    for _ in range(3):
        a = new_ticket(pg_ctx, people)
        b = new_ticket(pg_ctx, people)
        moves = [
            Move(people.operator, Action.MERGE, schemas.MergeBody(into=b)),
            Move(people.operator, Action.MERGE, schemas.MergeBody(into=a)),
        ]
        barrier = threading.Barrier(2)

        def racer(move: Move, number: str, barrier: threading.Barrier = barrier) -> None:
            session = pg_ctx.sessions()
            try:
                barrier.wait(timeout=10)
                pg_ctx.tickets(session).act(number, move.actor, move.action, move.body)
                time.sleep(HOLD)
                commit(session)
                move.outcome = "ok"
            except BaseException as exc:
                session.rollback()
                move.outcome = exc
            finally:
                session.close()

        threads = [
            threading.Thread(target=racer, args=(moves[0], a)),
            threading.Thread(target=racer, args=(moves[1], b)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        outcomes = [m.outcome for m in moves]
        assert outcomes.count("ok") == 1, outcomes
        loser = next(o for o in outcomes if o != "ok")
        assert isinstance(loser, ConcurrentChange | IllegalTransition | RuleViolation), loser
        states = {stored(pg_ctx, n)[0] for n in (a, b)}
        assert states == {TicketState.MERGED, TicketState.DISPATCHED}


def test_bulk_supervision_while_a_liaison_acts_postgres(pg_ctx: HotlineContext) -> None:
    """The SLA sweep supervises a ticket at the moment its liaison signs it: both must land."""
    people = _prepare(pg_ctx)
    number = new_ticket(pg_ctx, people)
    with pg_ctx.unit_of_work() as session:
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
        assert ticket_id is not None
    signed = threading.Event()
    outcomes: dict[str, object] = {}

    def liaison() -> None:
        try:
            with pg_ctx.unit_of_work() as session:
                pg_ctx.tickets(session).act(number, people.water, Action.SIGN, schemas.NoteBody())
                signed.set()
                time.sleep(0.3)
            outcomes["liaison"] = "ok"
        except BaseException as exc:
            signed.set()
            outcomes["liaison"] = exc

    def sweep() -> None:
        assert signed.wait(10)
        try:
            with pg_ctx.unit_of_work() as session:
                supervise_in_bulk(session, [ticket_id], Actor.system(), MONDAY_9, "系统自动督办")
            outcomes["sweep"] = "ok"
        except BaseException as exc:
            outcomes["sweep"] = exc

    threads = [threading.Thread(target=liaison), threading.Thread(target=sweep)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes == {"liaison": "ok", "sweep": "ok"}
    state, events = stored(pg_ctx, number)
    assert state == TicketState.IN_PROGRESS
    assert sorted(a for _, a, _ in events[2:]) == ["sign", "supervise"]


def test_concurrent_registration_numbers_postgres(pg_ctx: HotlineContext) -> None:
    _prepare(pg_ctx)
    _register_concurrently(pg_ctx)


# ---- SQLite -----------------------------------------------------------------------------------------


def test_two_liaisons_sign_at_once_sqlite(sqlite_ctx: HotlineContext) -> None:
    people = _prepare(sqlite_ctx)
    collisions = 0
    for _ in range(REPEAT):
        number = new_ticket(sqlite_ctx, people)
        moves = [
            Move(people.water, Action.SIGN, schemas.NoteBody()),
            Move(people.water2, Action.SIGN, schemas.NoteBody()),
        ]
        run_race(sqlite_ctx, number, moves)
        judge(sqlite_ctx, number, moves, (IllegalTransition, ConcurrentChange))
        collisions += overlapped(moves)
        _, events = stored(sqlite_ctx, number)
        assert [action for _, action, _ in events].count("sign") == 1
    assert collisions >= REPEAT // 2, collisions


def test_reply_races_return_sqlite(sqlite_ctx: HotlineContext) -> None:
    people = _prepare(sqlite_ctx)
    for _ in range(5):
        number = new_ticket(sqlite_ctx, people, (people.water, Action.SIGN, schemas.NoteBody()))
        moves = [
            Move(people.water, Action.REPLY, schemas.ReplyBody(result="已修复")),
            Move(people.water2, Action.RETURN, schemas.ReasonBody(reason="不归我们管")),
        ]
        run_race(sqlite_ctx, number, moves)
        judge(sqlite_ctx, number, moves, (IllegalTransition, ConcurrentChange))


def test_concurrent_registration_numbers_sqlite(sqlite_ctx: HotlineContext) -> None:
    _prepare(sqlite_ctx)
    _register_concurrently(sqlite_ctx)


def _register_concurrently(ctx: HotlineContext, total: int = 50, threads: int = 8) -> None:
    operator = Actor(None, "race_op", Role.OPERATOR)
    work = iter(range(total))
    lock = threading.Lock()
    numbers: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def worker() -> None:
        barrier.wait(timeout=10)
        while True:
            with lock:
                item = next(work, None)
            if item is None:
                return
            try:
                with ctx.unit_of_work() as session:
                    ticket = ctx.tickets(session).register(
                        operator, schemas.TicketCreate(content=f"并发登记 {item}", caller_phone="13900009999")
                    )
                    number = ticket.number
                with lock:
                    numbers.append(number)
            except BaseException as exc:
                with lock:
                    errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert sorted(numbers) == [f"20261116-{i:04d}" for i in range(1, total + 1)]
    with ctx.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == total
        assert session.scalar(select(TicketCounter.last).where(TicketCounter.day == "20261116")) == total
