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

    async def background(centre: Any) -> Callable[[], Awaitable[None]]:
        jobs, _runner = start_jobs(ctx, centre)

        async def stop() -> None:
            jobs.shutdown()

        return stop

    lease = lease_for(settings.database_url, settings.resolve(settings.callcenter.runtime_dir))
    return ControllerProcess(ctx, lease, control_secret(settings), background)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _log() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def control_secret(settings: Settings) -> str:
    auth = settings.auth
    return control_token(load_secret(auth.session_secret, settings.resolve(auth.session_secret_file)))


async def run_media_host(settings: Settings, name: str) -> int:
    from callcenter.mediahost import MediaHostProcess

    _log()
    cc = settings.callcenter
    host = cc.media_host(name)
    process = MediaHostProcess(
        cc,
        host,
        control_secret(settings),
        settings.resolve(cc.runtime_dir) / f"media-{name}",
        # until the store has each of them: on this machine, outside the store's own folder
        settings.resolve(cc.runtime_dir) / f"media-{name}" / "recordings",
        settings.resolve(cc.prompts_dir),
        settings.hotline.timezone,
        settings.resolve,
    )
    return await process.run(_stop_on_signals())


async def run_sip_proxy(settings: Settings) -> int:
    from callcenter.sipproxy import run_sip_proxy as run
    from core.clock import SystemClock

    _log()
    cc = settings.callcenter
    clock = SystemClock(settings.hotline.timezone)
    return await run(cc, settings.resolve(cc.runtime_dir) / "sip-proxy", clock, _stop_on_signals())


async def run_controller(settings: Settings) -> int:
    _log()
    ctx = HotlineContext.from_settings(settings)
    ctx.gazetteer  # noqa: B018 (a broken gazetteer stops the start with its message)
    ctx.relay_events()
    understanding = settings.understanding
    semantics.configure(understanding.encoder, understanding.threads or None)
    stop = _stop_on_signals()
    process = controller_process(ctx)
    try:
        return await process.run(stop)
    finally:
        ctx.close()
