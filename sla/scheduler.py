"""The SLA sweeps on a timer, inside `hotline serve` (APScheduler 3, in-memory job store).

There is one job, not one per ticket: every SLA fact lives in the tickets table, so a restarted or
second process needs no persisted jobs, and the database lock in `sla.supervision` keeps two
processes from sweeping at once.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

from sla.context import SlaContext
from sla.supervision import run_sweep


def start_sweeps(ctx: SlaContext) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=ctx.settings.hotline.timezone)
    scheduler.add_job(
        run_sweep,
        "interval",
        seconds=ctx.settings.sla.sweep_interval_seconds,
        args=[ctx.sessions, ctx.settings.sla.warnings, ctx.calendar, ctx.clock],
        id="sla-sweep",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(
            ZoneInfo(ctx.settings.hotline.timezone)
        ),  # catch up at start-up: raise what was missed while down
    )
    scheduler.start()
    return scheduler
