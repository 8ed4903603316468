"""The channel from stateless web processes to the active call-centre controller.

When the controller runs in a process of its own (`[callcenter] mode = "split"`), a web process does
not hold any call: what a seat does to a live call (transfer, conference, supervise, hang up), the
queue view, a seat phone's registration and the telephony status are asked of the active controller
over TCP. The controller's address is read from the `controller_leases` row it keeps fresh, so after a
takeover the web processes follow the new one by themselves.

One request per connection, one line of JSON each way:
  web -> controller   {"type": "request", "op": ..., "args": {...}, "token": ...}
  controller -> web   {"type": "reply", "ok": true, "result": ...}
                      {"type": "reply", "ok": false, "status": 409, "detail": ..., "detail_zh": ...}
The token is an HMAC of the hotline's session secret, so only the hotline's own processes are heard.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from callcenter.models import ControllerLease
from callcenter.protocol import ProtocolError, decode, encode
from core.clock import Clock
from core.context import Context
from core.errors import HotlineError, Unavailable

log = logging.getLogger("callcenter.control")

LEASE_NAME = "controller"
# A controller that has not refreshed its row for this long is taken for dead (it refreshes every second).
STALE_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 5.0
ADDRESS_FRESH_SECONDS = 1.0


def control_token(secret: bytes) -> str:
    return hmac.new(secret, b"hotline call-centre control", hashlib.sha256).hexdigest()


class CallControl(Protocol):
    """What a seat does to live calls: the controller itself (inline) or `RemoteControl` (split)."""

    def transfer(self, uid: str, service: str) -> None: ...
    def conference(self, uid: str, number: str) -> None: ...
    def supervise(self, uid: str, extension: str, mode: str) -> None: ...
    def hangup(self, uid: str, side: str = "operator") -> None: ...
    def seat_changed(self) -> None: ...
    def queue_view(self) -> dict[str, Any]: ...


class Refused(HotlineError):
    """The controller refused the request; carries its status and messages."""

    def __init__(self, status: int, message: str, zh: str) -> None:
        super().__init__(message, zh)
        self.status = status


def controller_gone(why: str) -> Unavailable:
    return Unavailable(
        f"the call-centre controller cannot be reached: {why}",
        "呼叫中心控制器暂时无法连接（可能正在切换到备用控制器），请几秒后重试",
    )


# --- the controller's side ----------------------------------------------------------------------------

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
# A channel that goes on after its first line: a media worker's link, a recording's upload.
Channel = Callable[[dict[str, Any], asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ControlServer:
    """Listens for web processes and for the workers of media hosts. Each op runs on the controller's
    loop (the controller is not thread-safe), so the answers are exactly what it knows now. A first
    line of type "hello" makes the connection a worker's link, "upload" a recording's upload."""

    def __init__(self, token: str, handlers: dict[str, Handler]) -> None:
        self.token = token
        self.handlers = handlers
        self.channels: dict[str, Channel] = {}
        self._server: asyncio.AbstractServer | None = None
        self._open: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, limit=1 << 20)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Open channels (workers' links) are ended, not left to be cancelled with the loop.
            for writer in list(self._open.values()):
                writer.close()
            if self._open:
                await asyncio.wait(list(self._open), timeout=2)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._open[task] = writer
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT_SECONDS)
            channel = self._channel(line)
            if channel is not None:
                await channel[0](channel[1], reader, writer)
                return
            reply = await self._answer(line)
            writer.write(encode({"type": "reply", **reply}))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # a client that went away or sent nothing: nothing to answer
        finally:
            self._open.pop(task, None)  # type: ignore[arg-type]
            writer.close()

    def _token_ok(self, message: dict[str, Any]) -> bool:
        # as bytes: compare_digest refuses str with non-ASCII characters (a stranger's token may have some)
        return hmac.compare_digest(str(message.get("token", "")).encode(), self.token.encode())

    def _channel(self, line: bytes) -> tuple[Channel, dict[str, Any]] | None:
        try:
            first = decode(line)
        except ProtocolError:
            return None
        channel = self.channels.get(first["type"])
        if channel is None or not self._token_ok(first):
            return None  # answered as a request: unknown, or refused for its token
        return channel, first

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = decode(line)
        except ProtocolError as exc:
            return _refusal(400, f"bad request: {exc}", "请求格式错误")
        if not self._token_ok(request):
            return _refusal(401, "wrong control token", "控制口令错误")
        handler = self.handlers.get(str(request.get("op")))
        args = request.get("args")
        if handler is None or not isinstance(args, dict):
            return _refusal(400, f"unknown operation {request.get('op')!r}", "未知的控制操作")
        try:
            return {"ok": True, "result": await handler(args)}
        except HotlineError as exc:
            return _refusal(exc.status, str(exc), exc.zh)
        except (KeyError, TypeError, ValueError) as exc:
            return _refusal(400, f"bad arguments: {exc}", "控制操作参数错误")


def _refusal(status: int, detail: str, zh: str) -> dict[str, Any]:
    return {"ok": False, "status": status, "detail": detail, "detail_zh": zh}


# --- the web process's side -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveController:
    holder: str
    address: str
    since: datetime
    heartbeat_age: float


def active_controller(session: Session, now: datetime) -> ActiveController | None:
    lease = session.get(ControllerLease, LEASE_NAME)
    if lease is None:
        return None
    age = (now - lease.heartbeat_at).total_seconds()
    return ActiveController(lease.holder, lease.address, lease.since, age)


@dataclass
class PlacedRemotely:
    """A callback placed through the controller (its `done` is only known there)."""

    uid: str
    done: None = None


class RemoteControl:
    """A web process's handle on the active controller: the same calls as the inline controller."""

    loop = None  # not bound to a loop: every call is a request over TCP

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, token: str) -> None:
        self.sessions = sessions
        self.clock = clock
        self.token = token
        self._active: tuple[float, ActiveController | None] = (0.0, None)

    def active(self) -> ActiveController | None:
        read_at, active = self._active
        if time.monotonic() - read_at > ADDRESS_FRESH_SECONDS:
            with self.sessions() as session:
                active = active_controller(session, self.clock.now())
            self._active = (time.monotonic(), active)
        return active

    def request(self, op: str, **args: Any) -> Any:
        active = self.active()
        if active is None:
            raise controller_gone("no controller has started (run `hotline controller`)")
        if active.heartbeat_age > STALE_SECONDS:
            raise controller_gone(f"{active.holder} last answered {active.heartbeat_age:.0f} s ago")
        host, _, port = active.address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=REQUEST_TIMEOUT_SECONDS) as sock:
                sock.sendall(encode({"type": "request", "op": op, "args": args, "token": self.token}))
                reply = decode(sock.makefile("rb").readline())
        except (OSError, ProtocolError) as exc:
            self._active = (0.0, None)  # read the lease again next time: a standby may have taken over
            raise controller_gone(f"{active.address}: {exc}") from None
        if reply.get("ok"):
            return reply.get("result")
        raise Refused(int(reply.get("status", 409)), str(reply.get("detail")), str(reply.get("detail_zh")))

    # the controller's calls, as `CallControl`
    def transfer(self, uid: str, service: str) -> None:
        self.request("transfer", uid=uid, service=service)

    def conference(self, uid: str, number: str) -> None:
        self.request("conference", uid=uid, number=number)

    def supervise(self, uid: str, extension: str, mode: str) -> None:
        self.request("supervise", uid=uid, extension=extension, mode=mode)

    def hangup(self, uid: str, side: str = "operator") -> None:
        self.request("hangup", uid=uid, side=side)

    def seat_changed(self) -> None:
        try:
            self.request("seat_changed")
        except Unavailable as exc:  # the controller also looks at the seats on every tick
            log.warning("seat change not pushed: %s", exc)

    def queue_view(self) -> dict[str, Any]:
        return dict(self.request("queue"))

    async def call_for_seat(
        self, number: str, extension: str, ticket_id: int | None = None, timeout: float = 40
    ) -> PlacedRemotely:
        uid = await asyncio.to_thread(
            self.request, "call_for_seat", number=number, extension=extension, ticket_id=ticket_id
        )
        return PlacedRemotely(str(uid))


class RemoteCallCentre:
    """Stands where the inline `CallCentre` stands in a web process: status, phones, the controller."""

    def __init__(self, control: RemoteControl) -> None:
        self.controller = control

    def phone_contact(self, extension: str) -> str | bool | None:
        try:
            contact = self.controller.request("phone", extension=extension)
        except (Unavailable, Refused):
            return None  # unknown: the seat bar says so
        return contact if isinstance(contact, str | bool) else None

    def status(self) -> dict[str, Any]:
        active = self.controller.active()
        try:
            status = dict(self.controller.request("status"))
        except (Unavailable, Refused) as exc:
            return {
                "enabled": False,
                "reason": str(exc),
                "reason_zh": exc.zh,
                "controller": _describe(active),
            }
        return {**status, "controller": _describe(active), "web_process": os.getpid()}


def _describe(active: ActiveController | None) -> dict[str, Any] | None:
    if active is None:
        return None
    return {
        "holder": active.holder,
        "address": active.address,
        "since": active.since.isoformat(timespec="seconds"),
        "heartbeat_age_seconds": round(active.heartbeat_age, 1),
    }


def remote_call_centre(ctx: Context, token: str) -> RemoteCallCentre:
    return RemoteCallCentre(RemoteControl(ctx.sessions, ctx.clock, token))
