"""The hotline's scheduled work (deadline sweeps, hotspot warnings, the monthly report, callbacks and
surveys), started once per hotline: by `hotline serve` in inline mode, by the active `hotline
controller` in split mode (many web processes must not sweep and call citizens many times over)."""

from __future__ import annotations

from typing import Any

from agent_ui.context import UiContext
from core.scheduler import Jobs
from dispatch import scheduled as dispatch_scheduled
from dispatch.callbacks import scheduled as callbacks_scheduled
from sla import scheduled as sla_scheduled


def start_jobs(ctx: UiContext, centre: Any) -> tuple[Jobs, Any]:
    """The started scheduler and the survey runner (None when callbacks are off)."""
    jobs = Jobs(ctx.settings.hotline.timezone)
    sla_scheduled.register(jobs, ctx)
    dispatch_scheduled.register(jobs, ctx)
    runner = callbacks_scheduled.register(jobs, ctx, centre)
    jobs.start()
    return jobs, runner
