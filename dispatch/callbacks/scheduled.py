"""The callbacks' periodic job: queue the replied tickets and place the survey calls that are due."""

from __future__ import annotations

from typing import Any

from core.scheduler import Jobs
from dispatch.callbacks.runner import SurveyRunner
from dispatch.context import DispatchContext


def register(jobs: Jobs, ctx: DispatchContext, centre: Any) -> SurveyRunner | None:
    """`centre` is the running call centre (None without telephony: surveys go out as SMS links)."""
    if not ctx.settings.callbacks.enabled:
        return None
    controller = centre.controller if centre is not None else None
    prompts_dir = centre.prompts_dir if centre is not None else None
    runner = SurveyRunner(ctx, controller, prompts_dir)
    jobs.every(ctx.settings.callbacks.scheduler_interval_seconds, runner.run_once, id="callbacks")
    return runner
