"""The dispatch domain's periodic job: retrain the router when enough new tickets were signed."""

from __future__ import annotations

from core.scheduler import Jobs
from dispatch.context import DispatchContext
from dispatch.router_training import retrain_if_due

# How often to look; the training itself runs in a child process and only when RETRAIN_AFTER more
# labelled tickets exist than the current model saw.
CHECK_SECONDS = 6 * 3600


def register(jobs: Jobs, ctx: DispatchContext) -> None:
    def check() -> None:
        with ctx.unit_of_work() as session:
            retrain_if_due(session, ctx.settings.config_file, ctx.settings.database_url)

    jobs.every(CHECK_SECONDS, check, id="router-retrain")
