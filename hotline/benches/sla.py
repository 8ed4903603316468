"""Benchmark of the SLA engine: `python -m hotline.benches.sla [--tickets N]`.

Fills the configured database (point HOTLINE_DATABASE_URL at a scratch database: the benchmark
refuses one that already holds tickets) with N synthetic tickets spread over the past year, about
the mix a county hotline sees: many answered on the spot, most of the rest replied and archived, a
few thousand open, some of them overdue. The rows are bulk-loaded (COPY on PostgreSQL) rather than
driven through the state machine: this measures the sweep and the KPI queries, not the loader.

Prints progress, then as its last line one JSON object: tickets, insert_rows_per_s, sweep_s (the
first sweep over all open tickets, which raises the warnings), sweep_repeat_s (a steady-state
sweep), kpi_month_s (median of 3 runs of last month's KPIs per department), database.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text

from core.departments import Department
from core.migrate import upgrade
from dispatch.catalog import load_category_tree, sync_category_tree
from dispatch.models import SubCategory, Ticket
from hotline.config import load_settings
from hotline.context import HotlineContext
from hotline.demo_data import load_departments
from sla.calendar import WorkCalendar
from sla.kpi import compute_kpis
from sla.supervision import run_sweep

COLUMNS = [
    "number", "channel", "caller_phone", "content", "category_id", "subcategory_id", "lead_department_id",
    "state", "deadline", "created_at", "updated_at", "dispatched_at", "signed_at", "replied_at", "closed_at",
    "handling_minutes", "reopen_count", "supervision_count", "extension_days_granted", "private", "version",
]  # fmt: skip


class Generator:
    """Synthetic tickets: deterministic for a seed, deadlines from the real working-day calendar."""

    def __init__(self, subcategories: list[tuple[int, int, int, int | None, str]], departments: list[int],
                 calendar: WorkCalendar, now: datetime, seed: int) -> None:  # fmt: skip
        self.subs, self.departments, self.calendar, self.now = subcategories, departments, calendar, now
        self.random = random.Random(seed)
        self.serials: dict[str, int] = {}
        self._deadlines: dict[tuple[date, int], datetime] = {}

    def deadline(self, at: datetime, days: int) -> datetime:
        key = (at.date(), days)
        if key not in self._deadlines:
            self._deadlines[key] = self.calendar.add_working_days(at.replace(hour=9), max(days, 1))
        return self._deadlines[key]

    def rows(self, count: int) -> Iterator[tuple[Any, ...]]:
        rnd, span = self.random, 365 * 24 * 3600
        for _ in range(count):
            created = self.now - timedelta(seconds=int(span * rnd.random() ** 1.3))
            day = created.strftime("%Y%m%d")
            self.serials[day] = serial = self.serials.get(day, 0) + 1
            yield self._row(f"{day}-{serial:05d}", created)

    def _row(self, number: str, created: datetime) -> tuple[Any, ...]:
        rnd = self.random
        phone = f"139{rnd.randrange(10**8):08d}"
        if rnd.random() < 0.40:  # answered on the spot
            return (number, "phone", phone, "咨询", None, None, None, "closed", None, created, created,
                    None, None, None, created + timedelta(minutes=4), None, 0, 0, 0, False, 1)  # fmt: skip
        sub_id, cat_id, days, dept, handling = rnd.choice(self.subs)
        dept = dept or rnd.choice(self.departments)
        dispatched = created + timedelta(minutes=rnd.randrange(3, 30))
        deadline = (
            dispatched + timedelta(hours=1) if handling == "emergency" else self.deadline(dispatched, days)
        )
        age = self.now - dispatched
        state, signed, replied, closed, minutes = self._progress(dispatched, deadline, age)
        channel = rnd.choice(("phone", "phone", "phone", "web", "app"))
        return (number, channel, phone, "诉求内容", cat_id, sub_id,
                dept, state, deadline, created, closed or replied or signed or dispatched, dispatched, signed,
                replied, closed, minutes, 0, 0, 0, False, 1)  # fmt: skip

    def _progress(self, dispatched: datetime, deadline: datetime, age: timedelta) -> tuple[Any, ...]:
        rnd = self.random
        signed = dispatched + timedelta(minutes=rnd.randrange(5, 240))
        if age < timedelta(days=12) and rnd.random() < 0.5:
            state = rnd.choice(("dispatched", "in_progress", "in_progress", "returned", "replied"))
            if state == "dispatched" or signed > self.now:
                return "dispatched", None, None, None, None
            if state != "replied":
                return state, signed, None, None, None
        # Replied: 97 % by the deadline.
        late = rnd.random() < 0.03
        replied = (
            deadline + timedelta(hours=rnd.randrange(1, 72))
            if late
            else signed + (deadline - signed) * rnd.random()
        )
        replied = min(max(replied, signed), self.now)
        minutes = int(self.calendar.working_day_length.total_seconds() / 60 * rnd.uniform(0.2, 6))
        if age < timedelta(days=5):
            return "replied", signed, replied, None, minutes
        return "archived", signed, replied, replied + timedelta(days=rnd.randrange(1, 4)), minutes


def _prepare(ctx: HotlineContext) -> Generator:
    upgrade(ctx.engine)
    with ctx.unit_of_work() as session:
        if session.scalar(select(func.count()).select_from(Ticket)):
            raise SystemExit(
                "error: the database already holds tickets; point HOTLINE_DATABASE_URL at a scratch one"
            )
        load_departments(session)
        sync_category_tree(
            session, load_category_tree(ctx.settings.resolve(ctx.settings.dispatch.category_tree))
        )
        subs = [
            (s.id, s.category_id, s.deadline_days, s.default_department_id, s.category.handling)
            for s in session.scalars(select(SubCategory)).unique()
            if s.category.handling != "on_the_spot"
        ]
        departments = list(session.scalars(select(Department.id)))
    return Generator(subs, departments, ctx.calendar, ctx.clock.now(), seed=12345)


def _load(ctx: HotlineContext, generator: Generator, count: int, batch: int = 20_000) -> float:
    started = time.perf_counter()
    done = 0
    postgres = ctx.engine.dialect.name == "postgresql"
    while done < count:
        rows = list(generator.rows(min(batch, count - done)))
        with ctx.engine.begin() as conn:
            if postgres:
                cursor = conn.connection.cursor()
                with cursor.copy(f"COPY tickets ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                conn.execute(insert(Ticket.__table__), [dict(zip(COLUMNS, row, strict=True)) for row in rows])
        done += len(rows)
        if done % 200_000 < batch:
            print(f"  {done} tickets loaded", file=sys.stderr)
    elapsed = time.perf_counter() - started
    # As autovacuum would after a day of traffic: statistics, and the visibility map that lets the
    # KPI queries read their covering indexes only.
    with ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if postgres else "ANALYZE"))
    return count / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hotline.benches.sla", description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    settings = load_settings()
    settings.sla.sweeps_enabled = False
    ctx = HotlineContext.from_settings(settings)
    generator = _prepare(ctx)
    rate = _load(ctx, generator, args.tickets)

    def timed_sweep() -> float:
        started = time.perf_counter()
        run_sweep(ctx.sessions, settings.sla.warnings, ctx.calendar, ctx.clock)
        return time.perf_counter() - started

    sweep_s, sweep_repeat_s = timed_sweep(), timed_sweep()
    this_month = ctx.clock.now().date().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    minutes = ctx.calendar.working_day_length.total_seconds() / 60
    period = (
        datetime.combine(last_month, datetime.min.time()),
        datetime.combine(this_month, datetime.min.time()),
    )
    timings = []
    for _ in range(3):
        with ctx.unit_of_work() as session:
            started = time.perf_counter()
            rows = compute_kpis(session, *period, ctx.clock.now(), minutes)
            timings.append(time.perf_counter() - started)
    with ctx.unit_of_work() as session:
        open_count = session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.state.in_(["dispatched", "in_progress"]))
        )
    print(f"  open at departments: {open_count}; KPI rows: {len(rows)}", file=sys.stderr)
    result = {
        "tickets": args.tickets,
        "insert_rows_per_s": round(rate),
        "sweep_s": round(sweep_s, 3),
        "sweep_repeat_s": round(sweep_repeat_s, 3),
        "kpi_month_s": round(statistics.median(timings), 3),
        "database": ctx.engine.dialect.name,
    }
    ctx.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
