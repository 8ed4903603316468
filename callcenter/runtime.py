"""The running call centre: Kamailio in front, the pool of media workers, the queue controller.

`hotline serve` starts it inside the web process's event loop (the controller is light and never
touches audio; every pjsua2 endpoint runs in a worker process of its own). The benchmark and the tests
start it the same way, on free loopback ports.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from callcenter import asr
from callcenter.context import CallCentreContext
from callcenter.control import RemoteCallCentre
from callcenter.controller import Controller
from callcenter.kamailio import REGISTRATIONS_FRESH_SECONDS, Kamailio, KamailioError
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


# How often the watchdog looks whether Kamailio is still there.
KAMAILIO_CHECK_SECONDS = 0.25
SIP_VIEW_SECONDS = 1.0


class KamailioWatchdog:
    """A dead Kamailio is started again within a second or two; the event is logged and counted.
    While it runs, `while_running` is called on every look (the registrations are read, and kept for
    a Kamailio that has to be started again)."""

    def __init__(self, kamailio: Kamailio, clock: Any, while_running: Any = None) -> None:
        self.kamailio = kamailio
        self.clock = clock
        self.while_running = while_running
        self.restarts = 0
        self.last_exit: dict[str, Any] | None = None

    async def run(self) -> None:
        kamailio = self.kamailio
        while True:
            await asyncio.sleep(KAMAILIO_CHECK_SECONDS)
            if kamailio.running:
                if self.while_running is not None:
                    await asyncio.to_thread(self.while_running)
                continue
            cause = kamailio.describe_exit()
            self.restarts += 1
            self.last_exit = {"cause": cause, "at": self.clock.now().isoformat()}
            log.error("%s; starting it again (restart %d)", cause, self.restarts)
            try:
                await asyncio.to_thread(kamailio.restart)
            except KamailioError as exc:
                log.error("Kamailio did not start again: %s", exc)
                self.last_exit["restart_error"] = str(exc)
                await asyncio.sleep(1.0)
            else:
                log.info("Kamailio is back (pid %s)", kamailio.pid)


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
        self._watchdog: asyncio.Task[None] | None = None
        self.kamailio_watchdog: KamailioWatchdog | None = None
        # Kamailio's view of the media workers, read by `_watch_sip` (status never runs kamcmd itself:
        # it is asked on the controller's loop, which must not wait for a subprocess).
        self._dispatcher: dict[str, str] | None = None
        self._sip_watch: asyncio.Task[None] | None = None

    def phone_contact(self, extension: str) -> str | bool | None:
        """Where the seat's phone is registered with Kamailio (its contact URI), False when it is not
        registered, None when that cannot be told (Kamailio not running or not answering)."""
        registrations = self._fresh_registrations()
        return None if registrations is None else registrations.get(extension, False)

    def _fresh_registrations(self) -> dict[str, str] | None:
        return None if self.kamailio is None else self.kamailio.fresh_registrations()

    async def start(self, wait_seconds: float = 60) -> None:
        """Start everything; returns when every worker of ours has reported for duty. With media hosts
        (split mode over machines) the workers are theirs and report when they come; with Kamailio
        on a machine of its own (`kamailio = "own"`) it is only asked for the registrations."""
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        prompts = await asyncio.to_thread(ensure_prompts, self.prompts_dir)
        self.controller = Controller(self.ctx, prompts, self.cc)
        sock = socket_path(self.runtime_dir)
        await self.controller.start(sock, adopt=bool(self.cc.media_hosts))
        if not self.cc.media_hosts:
            self.pool = WorkerPool(
                self.cc,
                sock,
                self.runtime_dir,
                self.recordings_dir,
                self.controller.worker_died,
                timezone=self.ctx.settings.hotline.timezone,
            )
        ports = self.pool.sip_ports if self.pool else []
        own = self.cc.kamailio == "controller"
        self.kamailio = (
            Kamailio(self.cc, self.runtime_dir, ports)
            if own
            else Kamailio.elsewhere(self.cc, self.runtime_dir)
        )
        try:
            # Speech first: the live recogniser's socket must exist before the workers stream to it.
            # A missing or broken model never raises; transcription is then "off" and says why.
            await asr.start(self.ctx)
            if own:
                await asyncio.to_thread(self.kamailio.start)
                self._watchdog = asyncio.create_task(self._watch_kamailio(), name="kamailio-watchdog")
            self._sip_watch = asyncio.create_task(self._watch_sip(), name="sip-view")
            if self.pool is not None:
                await self.pool.start()
                await self.wait_for_workers(self.cc.workers, wait_seconds)
        except BaseException:
            await self.stop()
            raise
        self.started_at = time.monotonic()
        log.info(
            "call centre up: %d workers, SIP at %s:%d",
            self.workers_configured,
            self.cc.sip_host,
            self.cc.sip_port,
        )

    @property
    def workers_configured(self) -> int:
        return len(self.cc.worker_targets())

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
        assert self.kamailio is not None
        watchdog = KamailioWatchdog(self.kamailio, self.ctx.clock)  # `_watch_sip` reads the registrations
        self.kamailio_watchdog = watchdog
        await watchdog.run()

    async def _watch_sip(self) -> None:
        """Every second, off the loop: the registrations (kept for a restarted Kamailio) and, with
        media hosts, which workers Kamailio's probing has in service."""
        while True:
            await asyncio.to_thread(self._fresh_registrations)
            if self.cc.media_hosts:
                self._dispatcher = await asyncio.to_thread(self._dispatcher_states)
            await asyncio.sleep(SIP_VIEW_SECONDS)

    async def stop(self) -> None:
        for task in (self._watchdog, self._sip_watch):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:  # it died before: said here, the stop goes on
                    log.exception("%s had failed", task.get_name())
        self._watchdog = self._sip_watch = None
        if self.pool is not None:
            await self.pool.stop()
        if self.controller is not None:
            await self.controller.stop()
        if self.kamailio is not None and self.kamailio.ctl_remote is None:
            await asyncio.to_thread(self.kamailio.stop)
        await asr.stop()

    def status(self) -> dict[str, Any]:
        controller, pool = self.controller, self.pool
        return {
            "enabled": True,
            "workers_configured": self.workers_configured,
            "workers_connected": len(controller.workers) if controller else 0,
            "worker_restarts": pool.restarts if pool else 0,
            "calls": len(controller.calls) if controller else 0,
            "queue_length": len(controller.queue()) if controller else 0,
            "sip": f"{self.cc.sip_host}:{self.cc.sip_port}",
            "media_hosts": self._media_hosts(),
            "kamailio": {
                "running": self._kamailio_running(),
                "restarts": self.kamailio_watchdog.restarts if self.kamailio_watchdog else 0,
                "last_exit": self.kamailio_watchdog.last_exit if self.kamailio_watchdog else None,
            },
            "speech": asr.asr_status(),
        }

    def _kamailio_running(self) -> bool:
        if self.kamailio is None:
            return False
        if self.kamailio.ctl_remote is not None:  # on its own machine: running if it answered lately
            return self.kamailio.registrations_age < 3 * REGISTRATIONS_FRESH_SECONDS
        return self.kamailio.running

    def _media_hosts(self) -> list[dict[str, Any]]:
        """Split mode over machines: how many workers of each media host are connected."""
        if self.controller is None:
            return []
        links = list(self.controller.workers.values())
        states = self._dispatcher
        return [
            {
                "name": host.name,
                "address": host.address,
                "workers_configured": host.workers,
                "workers_connected": sum(1 for link in links if link.media_host == host.name),
                # what Kamailio's probing says: workers it sends calls to (None: not known)
                "workers_in_service": None
                if states is None
                else sum(
                    1 for uri, flags in states.items() if _host_of(uri) == host.address and "A" in flags
                ),
            }
            for host in self.cc.media_hosts
        ]

    def _dispatcher_states(self) -> dict[str, str] | None:
        if self.kamailio is None:
            return None
        try:
            return self.kamailio.dispatcher_states()
        except (KamailioError, OSError, subprocess.TimeoutExpired) as exc:
            log.warning("cannot read Kamailio's dispatcher: %s", exc)
            return None


def _host_of(uri: str) -> str:
    return uri.removeprefix("sip:").rpartition(":")[0]


async def start_call_centre(
    ctx: CallCentreContext, centre: CallCentre | None = None
) -> tuple[CallCentre | None, str | None]:
    """For `hotline serve`: the call centre, or None and the reason it could not start.

    A missing Kamailio or prompt tool stops the telephony only: the pages and the API keep working and
    show the reason, which says how to install what is missing.
    """
    from callcenter.kamailio import KamailioError
    from callcenter.prompts import PromptToolMissing

    centre = centre or CallCentre(ctx)
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
