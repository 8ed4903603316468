"""The SLA's periodic job: the supervision sweep. One job, not one per ticket: every SLA fact lives
in the tickets table, so a restarted or second process needs no persisted jobs, and the database lock
in `sla.supervision` keeps two processes from sweeping at once."""

from __future__ import annotations

from core.scheduler import Jobs
from sla.context import SlaContext
from sla.hotspots import run_hotspot_sweep
from sla.report.service import make_last_month_if_missing
from sla.supervision import run_sweep


def register(jobs: Jobs, ctx: SlaContext) -> None:
    if not ctx.settings.sla.sweeps_enabled:
        return
    jobs.every(
        ctx.settings.sla.sweep_interval_seconds,
        run_sweep,
        id="sla-sweep",
        args=[ctx.sessions, ctx.settings.sla.warnings, ctx.calendar, ctx.clock],
    )
    hotspots = ctx.settings.sla.hotspots
    if hotspots.enabled:
        jobs.every(hotspots.sweep_interval_seconds, run_hotspot_sweep, id="hotspot-sweep", args=[ctx])
    if ctx.settings.sla.report.scheduled:
        jobs.every(3600, make_last_month_if_missing, id="monthly-report", args=[ctx])
