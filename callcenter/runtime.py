"""The running call centre: Kamailio in front, the pool of media workers, the queue controller.

`hotline serve` starts it inside the web process's event loop (the controller is light and never
touches audio; every pjsua2 endpoint runs in a worker process of its own). The benchmark and the tests
start it the same way, on free loopback ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from callcenter import asr
from callcenter.context import CallCentreContext
from callcenter.control import RemoteCallCentre
from callcenter.controller import Controller
from callcenter.kamailio import Kamailio, KamailioError
from callcenter.pool import WorkerPool
from callcenter.prompts import ensure_prompts
from callcenter.settings import CallCenterSettings

log = logging.getLogger("callcenter")

UNIX_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin


def socket_path(runtime_dir: Path) -> Path:
    """The controller's socket: in the runtime folder, or under /tmp when that path is too long."""
    path = runtime_dir / "controller.sock"
    if len(str(path)) < UNIX_PATH_MAX:
        return path
    digest = hashlib.sha1(str(runtime_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"hotline-{digest}.sock"


# The seat bar asks every few seconds for each seat: read Kamailio's location table at most this often.
REGISTRATIONS_FRESH_SECONDS = 2.0
# How often the watchdog looks whether Kamailio is still there.
KAMAILIO_CHECK_SECONDS = 0.25


class CallCentre:
    def __init__(self, ctx: CallCentreContext, cc: CallCenterSettings | None = None) -> None:
        self.ctx = ctx
        self.cc = cc or ctx.settings.callcenter
        self.runtime_dir = ctx.settings.resolve(self.cc.runtime_dir)
        self.recordings_dir = ctx.settings.resolve(self.cc.recordings_dir)
        self.prompts_dir = ctx.settings.resolve(self.cc.prompts_dir)
        self.controller: Controller | None = None
        self.pool: WorkerPool | None = None
        self.kamailio: Kamailio | None = None
        self.started_at: float | None = None
        self.kamailio_restarts = 0
        self.kamailio_last_exit: dict[str, Any] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._registrations: tuple[float, dict[str, str]] = (0.0, {})

    def phone_contact(self, extension: str) -> str | bool | None:
        """Where the seat's phone is registered with Kamailio (its contact URI), False when it is not
        registered, None when that cannot be told (Kamailio not running or not answering)."""
        registrations = self._fresh_registrations()
        return None if registrations is None else registrations.get(extension, False)

    def _fresh_registrations(self) -> dict[str, str] | None:
        """Kamailio's registrations, read again when older than REGISTRATIONS_FRESH_SECONDS (each read
        is also what a restarted Kamailio is given back); None when they cannot be read."""
        if self.kamailio is None:
            return None
        read_at, registrations = self._registrations
        if time.monotonic() - read_at > REGISTRATIONS_FRESH_SECONDS:
            try:
                registrations = self.kamailio.registrations()
            except KamailioError as exc:
                log.warning("cannot read the registrations from Kamailio: %s", exc)
                return None
            self._registrations = (time.monotonic(), registrations)
        return registrations

    async def start(self, wait_seconds: float = 60) -> None:
        """Start everything; returns when every worker has reported for duty."""
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        prompts = await asyncio.to_thread(ensure_prompts, self.prompts_dir)
        self.controller = Controller(self.ctx, prompts, self.cc)
        sock = socket_path(self.runtime_dir)
        await self.controller.start(sock)
        self.pool = WorkerPool(
            self.cc,
            sock,
            self.runtime_dir,
            self.recordings_dir,
            self.controller.worker_died,
            timezone=self.ctx.settings.hotline.timezone,
        )
        self.kamailio = Kamailio(self.cc, self.runtime_dir, self.pool.sip_ports)
        try:
            # Speech first: the live recogniser's socket must exist before the workers stream to it.
            # A missing or broken model never raises; transcription is then "off" and says why.
            await asr.start(self.ctx)
            await asyncio.to_thread(self.kamailio.start)
            self._watchdog = asyncio.create_task(self._watch_kamailio(), name="kamailio-watchdog")
            await self.pool.start()
            await self.wait_for_workers(self.cc.workers, wait_seconds)
        except BaseException:
            await self.stop()
            raise
        self.started_at = time.monotonic()
        log.info(
            "call centre up: %d workers, SIP at %s:%d", self.cc.workers, self.cc.sip_host, self.cc.sip_port
        )

    async def wait_for_workers(self, count: int, timeout: float) -> None:
        assert self.controller is not None
        deadline = time.monotonic() + timeout
        while len(self.controller.workers) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"only {len(self.controller.workers)} of {count} media workers started "
                    f"within {timeout:.0f} s; "
                    f"see {self.runtime_dir / 'workers'}"
                )
            await asyncio.sleep(0.05)

    async def _watch_kamailio(self) -> None:
        """A dead Kamailio is started again within a second or two; the event is logged and counted."""
        kamailio = self.kamailio
        assert kamailio is not None
        while True:
            await asyncio.sleep(KAMAILIO_CHECK_SECONDS)
            if kamailio.running:
                await asyncio.to_thread(self._fresh_registrations)  # kept for a restarted Kamailio
                continue
            cause = kamailio.describe_exit()
            self.kamailio_restarts += 1
            self.kamailio_last_exit = {"cause": cause, "at": self.ctx.clock.now().isoformat()}
            log.error("%s; starting it again (restart %d)", cause, self.kamailio_restarts)
            try:
                await asyncio.to_thread(kamailio.restart)
            except KamailioError as exc:
                log.error("Kamailio did not start again: %s", exc)
                self.kamailio_last_exit["restart_error"] = str(exc)
                await asyncio.sleep(1.0)
            else:
                log.info("Kamailio is back (pid %s)", kamailio.pid)

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self.pool is not None:
            await self.pool.stop()
        if self.controller is not None:
            await self.controller.stop()
        if self.kamailio is not None:
            await asyncio.to_thread(self.kamailio.stop)
        await asr.stop()

    def status(self) -> dict[str, Any]:
        controller, pool = self.controller, self.pool
        return {
            "enabled": True,
            "workers_configured": self.cc.workers,
            "workers_connected": len(controller.workers) if controller else 0,
            "worker_restarts": pool.restarts if pool else 0,
            "calls": len(controller.calls) if controller else 0,
            "queue_length": len(controller.queue()) if controller else 0,
            "sip": f"{self.cc.sip_host}:{self.cc.sip_port}",
            "kamailio": {
                "running": bool(self.kamailio and self.kamailio.running),
                "restarts": self.kamailio_restarts,
                "last_exit": self.kamailio_last_exit,
            },
            "speech": asr.asr_status(),
        }


async def start_call_centre(ctx: CallCentreContext) -> tuple[CallCentre | None, str | None]:
    """For `hotline serve`: the call centre, or None and the reason it could not start.

    A missing Kamailio or prompt tool stops the telephony only: the pages and the API keep working and
    show the reason, which says how to install what is missing.
    """
    from callcenter.kamailio import KamailioError
    from callcenter.prompts import PromptToolMissing

    centre = CallCentre(ctx)
    try:
        await centre.start()
    except (KamailioError, PromptToolMissing, TimeoutError, OSError) as exc:
        log.error("call centre not started: %s", exc)
        return None, str(exc)
    return centre, None


def telephony_status(
    centre: CallCentre | RemoteCallCentre | None, error: str | None, cc: CallCenterSettings
) -> dict[str, Any]:
    """What the health endpoint, the status API and the supervisor's page say about calls and speech."""
    if centre is not None:
        return centre.status()
    if error:
        reason, reason_zh = error, "呼叫中心启动失败"
    elif not cc.enabled:
        reason = "disabled in config.toml ([callcenter] enabled = false)"
        reason_zh = "配置中未启用（config.toml [callcenter] enabled = false）"
    else:
        reason, reason_zh = "not started by this process", "本进程未启动呼叫中心"
    return {"enabled": False, "reason": reason, "reason_zh": reason_zh, "speech": asr.asr_status()}
