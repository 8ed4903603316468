"""`hotline controller`: the call centre in a process of its own, active or on standby.

Start it on two machines (or twice on one): the first to take the lock (`callcenter.leadership`) is the
active controller: it opens its control listener, writes where it listens into `controller_leases`,
starts Kamailio, the media workers and the queue, and runs the hotline's scheduled work. The other
waits and takes over when the lock comes free (the active one died, or its machine did). A controller
that can no longer confirm its lock stops everything and exits, since a standby may already be active.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from callcenter.asr import runtime as asr_runtime
from callcenter.context import CallCentreContext
from callcenter.control import LEASE_NAME, ControlServer, Handler
from callcenter.leadership import RETRY_SECONDS, Lease
from callcenter.models import ControllerLease
from callcenter.prompts import PromptToolMissing, ensure_prompts
from callcenter.protocol import ProtocolError, decode, encode
from callcenter.runtime import CallCentre, start_call_centre, telephony_status
from callcenter.service import CallCenterError
from callcenter.store import RecordingStore

log = logging.getLogger("callcenter.standby")

HEARTBEAT_SECONDS = 1.0
LOST_LEASE_EXIT = 3

# Scheduled work started once this process is active; returns what stops it.
Background = Callable[[CallCentre | None], Awaitable[Callable[[], Awaitable[None]]]]


async def speech_events(hello: dict[str, Any], reader: asyncio.StreamReader, writer: Any) -> None:
    """A media host's live recogniser events (callcenter.asr.hostlive), published as this process's.
    Each is acknowledged once published, so the host sends again what a dead controller read but never
    published; a number already published (sent again over a new link) is acknowledged, not repeated."""
    host = str(hello.get("media_host") or "?")
    series = (host, str(hello.get("epoch") or ""))
    while line := await reader.readline():
        try:
            event = decode(line)
        except ProtocolError as exc:
            log.warning("media host %s sent a bad speech event: %s", host, exc)
            continue
        seq = event.get("seq")
        if not isinstance(seq, int) or seq > _published.get(series, 0):
            speech = asr_runtime.current()
            if speech is not None:
                await speech.remote(host, event)
        if isinstance(seq, int):
            _published[series] = max(seq, _published.get(series, 0))
            writer.write(encode({"ack": seq}))
            await writer.drain()


# the last event number published from each media host's series (host, epoch)
_published: dict[tuple[str, str], int] = {}


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ControllerProcess:
    def __init__(
        self,
        ctx: CallCentreContext,
        lease: Lease,
        token: str,
        background: Background | None = None,
    ) -> None:
        self.ctx = ctx
        self.cc = ctx.settings.callcenter
        self.lease = lease
        self.token = token
        self.background = background
        self.centre: CallCentre | None = None
        self.centre_error: str | None = None
        self.state = "standby"
        self.active_since: float | None = None
        self.server = ControlServer(token, self._handlers())

    async def run(self, stop: asyncio.Event) -> int:
        """Until `stop` is set (0) or the lock is lost (LOST_LEASE_EXIT)."""
        if self.cc.enabled:
            # What takes seconds is done before waiting, so a takeover does not wait for it.
            prompts_dir = self.ctx.settings.resolve(self.cc.prompts_dir)
            try:
                await asyncio.to_thread(ensure_prompts, prompts_dir)
            except (PromptToolMissing, OSError) as exc:  # said again, and shown, when it starts
                log.error("prompts not made: %s", exc)
        if not await self._wait_for_lease(stop):
            return 0
        self.state, self.active_since = "starting", time.monotonic()
        stop_background: Callable[[], Awaitable[None]] | None = None
        try:
            await self.server.start(self.cc.control_host, self.cc.control_port)
            address = f"{self.cc.control_host}:{self.server.port}"
            await asyncio.to_thread(self._announce, address, True)
            log.info("active controller (%s), control at %s", self.lease.describe(), address)
            if self.cc.enabled:
                centre = CallCentre(self.ctx)
                self._open_channels(centre)
                self.centre, self.centre_error = await start_call_centre(self.ctx, centre)
            if self.background is not None:
                stop_background = await self.background(self.centre)
            self.state = "active"
            return await self._keep_lease(stop, address)
        finally:
            self.state = "stopping"
            if stop_background is not None:
                await stop_background()
            if self.centre is not None:
                await self.centre.stop()
            await self.server.stop()
            self.lease.release()

    async def _wait_for_lease(self, stop: asyncio.Event) -> bool:
        said = False
        while not stop.is_set():
            if await asyncio.to_thread(self.lease.try_acquire):
                return True
            if not said:
                log.info("standby: another controller holds %s; waiting to take over", self.lease.describe())
                said = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_SECONDS)
        return False

    async def _keep_lease(self, stop: asyncio.Event, address: str) -> int:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), HEARTBEAT_SECONDS)
                return 0
            except TimeoutError:
                pass
            if not await asyncio.to_thread(self.lease.holds):
                log.error("lost the controller lock; stepping down (a standby takes over)")
                return LOST_LEASE_EXIT
            try:
                await asyncio.to_thread(self._announce, address, False)
            except Exception as exc:
                log.warning("heartbeat not written: %s", exc)
        return 0

    def _announce(self, address: str, new: bool) -> None:
        now = self.ctx.clock.now()
        with self.ctx.unit_of_work() as session:
            lease = session.get(ControllerLease, LEASE_NAME, with_for_update=True)
            if lease is None:
                lease = ControllerLease(name=LEASE_NAME, since=now)
                session.add(lease)
            if new:
                lease.since = now
            lease.holder, lease.address, lease.heartbeat_at = holder_name(), address, now

    def _open_channels(self, centre: CallCentre) -> None:
        """Media hosts' workers report here, and send their recordings and their live speech here."""

        async def worker(hello: dict[str, Any], reader: Any, writer: Any) -> None:
            if centre.controller is None:  # not started yet: the worker comes back in a moment
                writer.close()
                return
            await centre.controller.worker_channel(hello, reader, writer)

        store = RecordingStore(self.ctx, centre.recordings_dir, self.ctx.clock)
        self.server.channels.update(hello=worker, upload=store.receive, speech=speech_events)

    # --- what web processes may ask ---------------------------------------------------------------
    def _handlers(self) -> dict[str, Handler]:
        return {
            "status": self._status,
            "queue": self._queue,
            "phone": self._phone,
            "seat_changed": self._seat_changed,
            "transfer": self._transfer,
            "conference": self._conference,
            "supervise": self._supervise,
            "hangup": self._hangup,
            "call_for_seat": self._call_for_seat,
        }

    def _controller(self) -> Any:
        if self.centre is None or self.centre.controller is None:
            if self.state == "starting":
                raise CallCenterError("the call centre is starting", "呼叫中心正在启动，请稍候")
            raise CallCenterError("the call centre is not running", "呼叫中心未启用")
        return self.centre.controller

    async def _status(self, _args: dict[str, Any]) -> dict[str, Any]:
        status = telephony_status(self.centre, self.centre_error, self.cc)
        if self.centre is None and self.state == "starting":
            status.update(reason="starting", reason_zh="呼叫中心正在启动")
        return {**status, "controller_state": self.state, "controller_pid": os.getpid()}

    async def _queue(self, _args: dict[str, Any]) -> dict[str, Any]:
        return {"enabled": True, **self._controller().queue_view()}

    async def _phone(self, args: dict[str, Any]) -> str | bool | None:
        if self.centre is None:
            return None
        return await asyncio.to_thread(self.centre.phone_contact, str(args["extension"]))

    async def _seat_changed(self, _args: dict[str, Any]) -> None:
        self._controller().seat_changed()

    async def _transfer(self, args: dict[str, Any]) -> None:
        self._controller().transfer(str(args["uid"]), str(args["service"]))

    async def _conference(self, args: dict[str, Any]) -> None:
        self._controller().conference(str(args["uid"]), str(args["number"]))

    async def _supervise(self, args: dict[str, Any]) -> None:
        self._controller().supervise(str(args["uid"]), str(args["extension"]), str(args["mode"]))

    async def _hangup(self, args: dict[str, Any]) -> None:
        self._controller().hangup(str(args["uid"]), str(args.get("side", "operator")))

    async def _call_for_seat(self, args: dict[str, Any]) -> str:
        ticket = args.get("ticket_id")
        call = await self._controller().call_for_seat(
            str(args["number"]), str(args["extension"]), int(ticket) if ticket is not None else None
        )
        return str(call.uid)
