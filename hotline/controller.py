"""`hotline controller`: the active (or standby) call-centre controller of split mode, with the
hotline's scheduled work. See callcenter/standby.py for the roles."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from agent_ui.background import start_jobs
from callcenter.control import control_token
from callcenter.leadership import lease_for
from callcenter.standby import ControllerProcess
from core import semantics
from core.accounts.sessions import load_secret
from hotline.config import Settings
from hotline.context import HotlineContext

log = logging.getLogger("hotline.controller")


def controller_process(ctx: HotlineContext) -> ControllerProcess:
    settings = ctx.settings
    auth = settings.auth
    secret = load_secret(auth.session_secret, settings.resolve(auth.session_secret_file))

    async def background(centre: Any) -> Callable[[], Awaitable[None]]:
        jobs, _runner = start_jobs(ctx, centre)

        async def stop() -> None:
            jobs.shutdown()

        return stop

    lease = lease_for(settings.database_url, settings.resolve(settings.callcenter.runtime_dir))
    return ControllerProcess(ctx, lease, control_token(secret), background)


async def run_controller(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ctx = HotlineContext.from_settings(settings)
    ctx.gazetteer  # noqa: B018 (a broken gazetteer stops the start with its message)
    ctx.relay_events()
    understanding = settings.understanding
    semantics.configure(understanding.encoder, understanding.threads or None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    process = controller_process(ctx)
    try:
        return await process.run(stop)
    finally:
        ctx.close()
