"""Benchmark of what leaders are shown: `python -m hotline.benches.analytics [--tickets N]`.

Fills the configured scratch database (HOTLINE_DATABASE_URL; refused if it holds tickets) like the
SLA benchmark does, a year of synthetic tickets bulk-loaded, each placed in a community of the
gazetteer and worded like the demo's requests; last month's dispatched tickets get their dispatch,
sign, reply and callback events (by INSERT … SELECT), so the 三率 league has work to do. Then plants
eight calls about one matter in one community within the last two hours and measures:

- hotspot_sweep_s: the median of three hotspot sweeps over all tickets (the first raises the alert);
- report_s: last month's whole report: figures, topics, charts, PDF and XLSX.

Last line: one JSON object with those figures, tickets, month_tickets, alerts, database.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from dispatch.models import Ticket
from hotline.benches import sla as sla_bench
from hotline.config import load_settings
from hotline.context import HotlineContext
from hotline.demo_history import REQUESTS
from sla.evaluation import month_range, previous_month
from sla.hotspots import hotspot_sweep
from sla.report.service import make_report
from sla.settings import ReportSettings

COLUMNS = [*sla_bench.COLUMNS, "town_code", "community_code"]


class PlacedGenerator(sla_bench.Generator):
    """The SLA benchmark's tickets, placed in the gazetteer's communities and worded like callers."""

    places: list[tuple[str, str, str]]  # (town, community, a word of it), set before use

    def rows(self, count: int) -> Iterator[tuple[Any, ...]]:
        for row in super().rows(count):
            town, community, word = self.random.choice(self.places)
            texts = self.random.choice(REQUESTS)[1]
            content = self.random.choice(texts).format(place=word, n=self.random.randint(1, 30))
            yield (*row[:3], content, *row[4:], town, community)


EVENTS = """
INSERT INTO ticket_events (ticket_id, seq, action, actor_name, department_id, at, from_state, to_state, data)
SELECT id, {seq}, '{action}', '基准测试', lead_department_id, {at}, '{before}', '{after}', {data}
FROM tickets WHERE created_at >= :start AND created_at < :end AND {where}
"""
STEPS = [
    (2, "dispatch", "dispatched_at", "registered", "dispatched", "'{}'", "dispatched_at IS NOT NULL"),
    (3, "sign", "signed_at", "dispatched", "in_progress", "'{}'", "signed_at IS NOT NULL"),
    (4, "reply", "replied_at", "in_progress", "replied", "'{}'", "replied_at IS NOT NULL"),
    (5, "record_callback", "closed_at", "replied", "archived",
     """CASE WHEN id % 10 = 0 THEN '{"result": "dissatisfied", "solved": false}'
        ELSE '{"result": "satisfied", "solved": true}' END""", "state = 'archived'"),
]  # fmt: skip


def add_events(ctx: HotlineContext, start: datetime, end: datetime) -> None:
    json_cast = "::json" if ctx.engine.dialect.name == "postgresql" else ""
    with ctx.engine.begin() as conn:
        for seq, action, at, before, after, data, where in STEPS:
            sql = EVENTS.format(
                seq=seq,
                action=action,
                at=at,
                before=before,
                after=after,
                data=f"({data}){json_cast}",
                where=where,
            )
            conn.execute(text(sql), {"start": start, "end": end})


def plant_spike(ctx: HotlineContext, now: datetime) -> None:
    with ctx.engine.begin() as conn:
        sub_id = conn.scalar(text("SELECT id FROM subcategories WHERE name = '停水'"))
        rows = [
            {
                "number": f"SPIKE-{i:03d}", "channel": "phone", "content": "东风路停水了",
                "state": "registered",
                "subcategory_id": sub_id, "town_code": "binhe", "community_code": "dongfeng",
                "created_at": now - timedelta(minutes=10 * i), "updated_at": now, "version": 1,
                "reopen_count": 0, "supervision_count": 0, "extension_days_granted": 0, "private": False,
            }
            for i in range(8)
        ]  # fmt: skip
        conn.execute(insert(Ticket.__table__), rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hotline.benches.analytics", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--tickets", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    settings = load_settings()
    settings.sla.sweeps_enabled = False
    ctx = HotlineContext.from_settings(settings)
    base = sla_bench._prepare(ctx)
    generator = PlacedGenerator(base.subs, base.departments, base.calendar, base.now, seed=12345)
    towns = ctx.gazetteer.towns
    generator.places = [
        (t.code, c.code, w) for t in towns for c in t.communities for w in c.words or [c.name]
    ]
    sla_bench.COLUMNS[:] = COLUMNS
    sla_bench._load(ctx, generator, args.tickets)
    now = ctx.clock.now()
    month = previous_month(now.date().replace(day=1))
    start, end = month_range(month)
    add_events(ctx, start, end)
    plant_spike(ctx, now)
    with ctx.unit_of_work() as session:
        month_tickets = session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.created_at >= start, Ticket.created_at < end)
        )
    sweeps, alerts = [], 0
    for _ in range(3):
        with ctx.unit_of_work() as session:
            started = time.perf_counter()
            changed = hotspot_sweep(session, ctx, now) or []
            sweeps.append(time.perf_counter() - started)
            alerts += len(changed)
    print(f"  hotspot sweeps: {[round(s, 3) for s in sweeps]}; alerts {alerts}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        settings.sla.report = ReportSettings(folder=Path(folder), font=settings.sla.report.font)
        started = time.perf_counter()
        with ctx.unit_of_work() as session:
            files = make_report(session, ctx, month)
        report_s = time.perf_counter() - started
    print(f"  report of {month:%Y-%m}: {[f.path.name for f in files]}", file=sys.stderr)
    result = {
        "tickets": args.tickets,
        "month_tickets": month_tickets,
        "hotspot_sweep_s": round(statistics.median(sweeps), 3),
        "alerts": alerts,
        "report_s": round(report_s, 2),
        "database": ctx.engine.dialect.name,
    }
    ctx.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
