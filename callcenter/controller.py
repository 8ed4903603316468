"""The queue controller (ACD): one place that decides queue order and seat choice.

It runs in an asyncio loop outside the media workers and talks to them over the Unix socket of
`callcenter.protocol`. It never touches audio: it answers "what next?" when a worker reports
something, and tells workers what to play and whom to ring. Seat states and call records live in the
database (`callcenter.service`); the pages get events through `ctx.events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from callcenter.context import CallCentreContext
from callcenter.dialer import Menu
from callcenter.models import CallDirection, CallOutcome, SeatState
from callcenter.protocol import ProtocolError, decode, encode
from callcenter.service import (
    RESTARTED,
    CallCenterError,
    CallNotFound,
    CallRecords,
    SeatService,
    mask_phone,
    seat_view,
)
from callcenter.settings import CallCenterSettings
from core.clock import SystemClock

log = logging.getLogger("callcenter.controller")

TICK_SECONDS = 0.2
# Remote workers: pinged every second; a link silent this long is taken as lost (its host cut off).
PING_SECONDS = 1.0
LINK_SILENCE_SECONDS = 6.0
# A remote worker whose link ended has this long to come back with its calls before they are closed.
RETURN_GRACE_SECONDS = 5.0
# After a takeover, how long the workers of the media hosts have to report the calls they still carry
# before every other call left open is closed as "hotline restarted".
ADOPT_GRACE_SECONDS = 4.0
# ... and a worker of a host whose other workers have reported has this long, however busy the hosts are.
ADOPT_MAX_SECONDS = 30.0
OFFER_ANSWER_SECONDS = 8.0  # how long a caller has to press the callback digit after the offer


class PromptBook(Protocol):
    def path(self, name: str) -> Path: ...


@dataclass
class WorkerLink:
    name: str
    writer: asyncio.StreamWriter
    pid: int = 0
    sip_port: int = 0
    # A worker on a media host of its own (over TCP): its prompts are its own copies, it is pinged,
    # and its recordings come by upload.
    media_host: str = ""
    prompts_dir: str = ""
    last_heard: float = field(default_factory=time.monotonic)

    @property
    def remote(self) -> bool:
        return bool(self.media_host)

    def send(self, message: dict[str, Any]) -> None:
        if self.remote and "files" in message and self.prompts_dir:
            # The media host made the same prompts in its own folder: name them, not our paths.
            message = {**message, "files": [_prompt_name(f, self.prompts_dir) for f in message["files"]]}
        if not self.writer.is_closing():
            self.writer.write(encode(message))


def _prompt_name(path: str, prompts_dir: str) -> str:
    return "prompts:" + path[len(prompts_dir) + 1 :] if path.startswith(prompts_dir + "/") else path


@dataclass
class LiveCall:
    uid: str
    worker: str
    caller: str
    direction: CallDirection
    started: float = field(default_factory=time.monotonic)
    # new -> queued -> ringing -> talking; offer: the queue is full and a callback is offered;
    # outbound: dialing -> talking
    state: str = "new"
    order: int = 0
    seat: str | None = None
    tried: set[str] = field(default_factory=set)
    offered_callback: bool = False
    offer_deadline: float | None = None
    hangup_at: float | None = None
    outcome: CallOutcome | None = None
    transfer_target: str | None = None
    digits: list[str] = field(default_factory=list)
    supervisor_on: bool = False
    done: asyncio.Future[dict[str, Any]] | None = None  # outbound calls: resolved when they end
    menu: Menu | None = None  # outbound survey: prompts and the key pressed
    hangup_cause: str = "callback request taken"
    failed_status: int | None = None  # outbound: the SIP status of a call not answered (486, 408 …)
    # outbound from the seat console: this seat's phone rings once the citizen answers
    ring_seat: str | None = None

    def waited(self, now: float) -> float:
        return now - self.started


class Controller:
    def __init__(
        self, ctx: CallCentreContext, prompts: PromptBook, settings: CallCenterSettings | None = None
    ) -> None:
        self.ctx = ctx
        # Call records keep fractions of a second (speed of answer); tests pass a ManualClock.
        self.clock = (
            SystemClock(ctx.clock.timezone, precise=True) if isinstance(ctx.clock, SystemClock) else ctx.clock
        )
        self.cc = settings or ctx.settings.callcenter
        self.prompts = prompts
        self.workers: dict[str, WorkerLink] = {}
        self.calls: dict[str, LiveCall] = {}
        self._order = itertools.count(1)
        self._outbound = itertools.count(1)
        self._server: asyncio.AbstractServer | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._adopting: set[str] = set()
        self._pinged = 0.0
        self._ticked = time.monotonic()
        self.worker_ready = asyncio.Event()
        self.on_worker_hello: Callable[[str], None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop the controller runs on

    # --- life -----------------------------------------------------------------------------------
    async def start(self, socket_path: Path, adopt: bool = False) -> None:
        """`adopt`: workers on media hosts of their own may still carry calls of a controller that
        died; they are given ADOPT_GRACE_SECONDS to report them before the rest is closed."""
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        socket_path.unlink(missing_ok=True)
        with self.ctx.unit_of_work() as session:
            SeatService(session, self.clock).ensure_seats(self.cc.seats)
        if not adopt:
            self.recover()
        self.loop = asyncio.get_running_loop()
        self._server = await asyncio.start_unix_server(
            self._serve_worker, path=str(socket_path), limit=1 << 20
        )
        self._ticker = asyncio.create_task(self._tick_forever(), name="acd-tick")
        if adopt:
            self._recovery = asyncio.create_task(self._recover_as_workers_report(), name="recovery")

    def recover(self, waiting: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Close every call a dead process left open that no worker carries on (nor may still report:
        `waiting`)."""
        with self.ctx.unit_of_work() as session:
            recordings = self.ctx.settings.resolve(self.cc.recordings_dir)
            zone = ZoneInfo(self.ctx.settings.hotline.timezone)
            closed = CallRecords(session, self.clock).recover_after_restart(
                recordings, zone, set(self.calls) | self._adopting | waiting, self._lost_because
            )
        if closed:
            log.warning("closed %d call(s) left open by a process that died: %s", len(closed), closed)
        return closed

    async def _recover_as_workers_report(self) -> None:
        """After a takeover: a call left open is closed once its worker has reported without it, or
        once its media host has had ADOPT_GRACE_SECONDS to show any worker at all (then it is
        unreachable), and in any case after ADOPT_MAX_SECONDS."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            waited = time.monotonic() - started
            with self.ctx.unit_of_work() as session:
                left = [(r.uid, r.worker or "") for r in CallRecords(session, self.clock).open_records()]
            waiting = {uid for uid, worker in left if self._may_still_report(worker, waited)}
            self.recover(waiting)
            if not waiting:
                return

    def _may_still_report(self, worker: str, waited: float) -> bool:
        if worker in self.workers or waited >= ADOPT_MAX_SECONDS:
            return False  # it has reported (without this call), or it is too late
        host = self._media_host_of(worker)
        if host is None:
            return False
        return self._host_connected(host) or waited < ADOPT_GRACE_SECONDS

    async def stop(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._recovery
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for link in self.workers.values():
            link.send({"type": "shutdown"})
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # --- the channel to the workers -------------------------------------------------------------
    async def _serve_worker(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: dict[str, Any] | None = None
    ) -> None:
        """One worker's channel; `first` is its hello when the control listener read it already."""
        link: WorkerLink | None = None
        try:
            while True:
                if first is not None:
                    message, first = first, None
                else:
                    line = await reader.readline()
                    if not line:
                        break
                    try:
                        message = decode(line)
                    except ProtocolError as exc:
                        log.error("worker %s sent a bad line: %s", link.name if link else "?", exc)
                        continue
                if link is not None:
                    link.last_heard = time.monotonic()
                if message["type"] == "hello":
                    link = await self._hello(writer, message)
                    continue
                if link is not None:
                    self._handle(link, message)
        except (ConnectionError, ValueError) as exc:
            log.warning("worker channel closed: %s", exc)
        finally:
            if link is not None and self.workers.get(link.name) is link:
                del self.workers[link.name]
                if link.remote and self.loop is not None:
                    # A worker whose link broke may be looking for us again with its call: it has
                    # RETURN_GRACE_SECONDS to say so before the call is given up.
                    cause = f"media worker {link.name} on {link.media_host} lost"
                    self.loop.call_later(RETURN_GRACE_SECONDS, self._fail_unless_back, link.name, cause)
            writer.close()

    def _fail_unless_back(self, worker: str, cause: str) -> None:
        if worker not in self.workers:
            self._fail_calls(worker, cause)

    def _lost_because(self, record: Any) -> str:
        """Why a call left open was closed: its media host never came back, or the restart."""
        host = self._media_host_of(record.worker or "")
        if host is not None and not self._host_connected(host):
            return f"media host {host} unreachable"
        return RESTARTED

    def _media_host_of(self, worker: str) -> str | None:
        """The configured media host a worker belongs to (its name is the host's, `m1-w003`)."""
        host = worker.split("-w", 1)[0]
        return host if any(h.name == host for h in self.cc.media_hosts) else None

    def _host_connected(self, host: str) -> bool:
        return any(link.media_host == host for link in self.workers.values())

    async def worker_channel(
        self, hello: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A media host's worker, reached through the control listener (its first line: its hello)."""
        await self._serve_worker(reader, writer, hello)

    async def _hello(self, writer: asyncio.StreamWriter, message: dict[str, Any]) -> WorkerLink:
        link = WorkerLink(
            str(message["worker"]),
            writer,
            int(message["pid"]),
            int(message["sip_port"]),
            media_host=str(message.get("media_host") or ""),
            prompts_dir=str(self.prompts.path("welcome").parent) if message.get("media_host") else "",
        )
        reported = message.get("calls") or []
        uids = {str(item.get("call", "")) for item in reported}
        self._adopting |= uids  # the recovery waits for them
        try:
            await self._adopt(link, reported)
        finally:
            self._adopting -= uids
        # A call we had on this worker that its hello does not name is gone (the worker process was
        # replaced after a crash, on a media host that restarts it).
        self._fail_calls(link.name, f"media worker {link.name} restarted without the call", keep=uids)
        self.workers[link.name] = link  # connected: with the calls it carries
        link.send({"type": "welcome"})  # a remote worker now tells what happened while it was away
        self.worker_ready.set()
        if self.on_worker_hello:
            self.on_worker_hello(link.name)
        return link

    async def _adopt(self, link: WorkerLink, reported: list[dict[str, Any]]) -> None:
        """Calls a worker still carries after a takeover (or a lost link) go on under this controller;
        one whose record is closed already is hung up. The records are read off the loop: forty
        workers reporting at once after a takeover must not hold up the queue."""
        for item in reported:
            uid = str(item.get("call", ""))
            if uid in self.calls:
                self.calls[uid].worker = link.name
                continue
            legs = set(item.get("legs") or [])
            call, was_ringing = await asyncio.to_thread(self._call_from_record, uid, link.name, legs)
            if call is None or uid in self.calls:
                if call is None:
                    link.send(
                        {"type": "hangup", "call": uid, "cause": "closed while the controller was away"}
                    )
                continue
            if was_ringing:  # the seat that rang for it is rung again by the queue, not twice
                link.send({"type": "drop_leg", "call": uid, "leg": "seat"})
            self.calls[uid] = call
            log.info("call %s on %s goes on under this controller (%s)", uid, link.name, call.state)
        if reported:
            self._publish_queue()

    def _call_from_record(self, uid: str, worker: str, legs: set[str]) -> tuple[LiveCall | None, bool]:
        """The live call again from its record and the legs the worker has; and whether a seat was
        ringing for it (that ring is dropped and the call queued again, in its old place)."""
        with self.ctx.unit_of_work() as session:
            record = CallRecords(session, self.clock).find(uid)
            if record is None or record.ended_at is not None:
                return None, False
            seats = SeatService(session, self.clock)
            seat = seats.holding(uid)
            direction = CallDirection(record.direction)
            call = LiveCall(uid, worker, record.caller, direction)
            call.started -= max(0.0, (self.clock.now() - record.offered_at).total_seconds())
            call.order = next(self._order)
            call.seat = seat.extension if seat is not None else None
            was_ringing = False
            if legs & {"seat", "transfer", "conference"} or (direction == CallDirection.OUTBOUND and legs):
                call.state = "talking"
            elif seat is not None:  # its seat was ringing when the controller died
                seats.change(seat.extension, SeatState.READY, by_queue=True)
                call.seat, call.state, was_ringing = None, "queued", True
            else:
                call.state = "queued" if direction == CallDirection.INBOUND else "dialing"
            if record.outcome == CallOutcome.TRANSFERRED.value:
                call.outcome = CallOutcome.TRANSFERRED
            CallRecords(session, self.clock).event(
                record, "adopted", {"worker": worker, "legs": sorted(legs)}
            )
            return call, was_ringing

    def _handle(self, link: WorkerLink, message: dict[str, Any]) -> None:
        handler = getattr(self, f"_on_{message['type']}", None)
        if handler is None:
            log.error("unknown message from %s: %s", link.name, message["type"])
            return
        try:
            handler(link, message)
        except Exception:  # one bad event must never stop the queue
            log.exception("handling %s from %s", message["type"], link.name)

    def _send(self, call: LiveCall, message: dict[str, Any]) -> None:
        link = self.workers.get(call.worker)
        if link is not None:
            link.send({**message, "call": call.uid})

    # --- events from workers ---------------------------------------------------------------------
    def _on_incoming(self, link: WorkerLink, message: dict[str, Any]) -> None:
        call = LiveCall(message["call"], link.name, str(message.get("caller", "")), CallDirection.INBOUND)
        call.order = next(self._order)
        position = len(self.queue()) + 1
        self.calls[call.uid] = call
        with self.ctx.unit_of_work() as session:
            CallRecords(session, self.clock).open(
                call.uid,
                call.caller,
                str(message.get("callee", "")),
                link.name,
                CallDirection.INBOUND,
                message.get("sip_call_id"),
            )
        if position > self.cc.max_queue_length:
            self._offer_callback(call, full=True)
            return
        self._enqueue(call, position)
        self._dispatch()

    def _enqueue(self, call: LiveCall, position: int) -> None:
        call.state = "queued"
        files = [self.prompts.path("welcome")]
        if position > 1 or not self._has_ready_seat():
            files.append(self.prompts.path(f"position_{min(position, 60)}"))
        files.append(self.prompts.path("hold_music"))
        self._send(call, {"type": "play", "files": [str(f) for f in files], "loop_last": True})
        with self.ctx.unit_of_work() as session:
            CallRecords(session, self.clock).queued(call.uid, position)
        self._publish_queue()

    def _on_leg_answered(self, link: WorkerLink, message: dict[str, Any]) -> None:
        call = self.calls.get(message["call"])
        if call is None:
            return
        leg = message["leg"]
        if leg == "citizen" and call.direction == CallDirection.INBOUND:
            return  # the worker answered the citizen itself; "offered" already says so
        if leg == "seat" and call.seat:
            call.state = "talking"
            with self.ctx.unit_of_work() as session:
                seat = SeatService(session, self.clock).change(
                    call.seat, SeatState.TALKING, by_queue=True, call_uid=call.uid
                )
                CallRecords(session, self.clock).answered(call.uid, seat)
                view = seat_view(seat, call.caller)
            self.ctx.events.publish("call.answered", {"extension": call.seat, "call_uid": call.uid})
            self.ctx.events.publish("seat", view)
            self._publish_queue()
        elif leg == "transfer":
            call.outcome = CallOutcome.TRANSFERRED
            self._record_event(call, "transfer_answered", {"target": call.transfer_target})
            self._send(call, {"type": "drop_leg", "leg": "seat"})
        elif leg == "citizen" and call.direction == CallDirection.OUTBOUND:
            call.state = "talking"
            self._record_event(call, "answered", {})
            with self.ctx.unit_of_work() as session:
                record = CallRecords(session, self.clock).get(call.uid)
                record.answered_at = self.clock.now()
            if call.menu is not None:
                self._menu_play(call, [*call.menu.opening, *call.menu.question])
            if call.ring_seat is not None:
                files = [str(self.prompts.path("transferring"))]
                self._send(call, {"type": "play", "files": files, "loop_last": False})
                uri = self._local_uri(call.ring_seat)
                self._send(
                    call, {"type": "ring", "leg": "seat", "uri": uri, "timeout": self.cc.ring_timeout_seconds}
                )
        else:
            call.supervisor_on = call.supervisor_on or leg == "supervisor"
            self._record_event(call, f"{leg}_answered", {})

    def _on_leg_failed(self, link: WorkerLink, message: dict[str, Any]) -> None:
        call = self.calls.get(message["call"])
        if call is None:
            return
        leg, status = message["leg"], int(message.get("status") or 0)
        self._record_event(call, f"{leg}_failed", {"status": status, "reason": message.get("reason")})
        if leg == "citizen":
            call.failed_status = status
        if leg == "seat" and call.seat and call.state == "ringing":
            self._seat_did_not_answer(call)
        elif leg == "transfer":
            call.transfer_target = None

    def _seat_did_not_answer(self, call: LiveCall) -> None:
        """Skip a seat that did not answer: it goes on break, the caller keeps their place."""
        extension, call.seat = call.seat, None
        assert extension is not None
        call.tried.add(extension)
        call.state = "queued"
        with self.ctx.unit_of_work() as session:
            seat = SeatService(session, self.clock).change(
                extension, SeatState.BREAK, by_queue=True, reason="no_answer"
            )
            view = seat_view(seat)
        self.ctx.events.publish("seat", view)
        self._dispatch()

    def _on_leg_ended(self, link: WorkerLink, message: dict[str, Any]) -> None:
        call = self.calls.get(message["call"])
        if call is None:
            return
        leg = message["leg"]
        call.supervisor_on = call.supervisor_on and leg != "supervisor"
        self._record_event(call, f"{leg}_ended", {"cause": message.get("cause")})
        if leg == "seat" and call.seat and call.outcome == CallOutcome.TRANSFERRED:
            self._release_seat(call)

    def _on_dtmf(self, link: WorkerLink, message: dict[str, Any]) -> None:
        call = self.calls.get(message["call"])
        if call is None:
            return
        digit = str(message.get("digit", ""))[:1]
        call.digits.append(digit)
        self._record_event(call, "dtmf", {"digit": digit, "method": message.get("method")})
        waiting_for_choice = call.state == "offer" or (call.state == "queued" and call.offered_callback)
        if waiting_for_choice and digit == self.cc.callback_digit:
            self._take_callback_request(call)
        elif call.menu is not None and call.state == "talking" and call.menu.outcome is None:
            self._menu_key(call, digit)

    def _on_ended(self, link: WorkerLink, message: dict[str, Any]) -> None:
        call = self.calls.pop(message["call"], None)
        if call is None:
            return
        left_at = message.get("left_at")
        at = (
            self.clock.from_epoch(float(left_at)) if isinstance(self.clock, SystemClock) and left_at else None
        )
        cause, side = str(message.get("cause") or "ended"), str(message.get("side") or "citizen")
        recording = message.get("recording")
        if link.remote and recording:
            recording = {**recording, "path": None}  # on the media host until its upload arrives
        self._finish(call, cause, side, recording, at)

    def _on_ping(self, link: WorkerLink, message: dict[str, Any]) -> None:
        """A remote worker's sign of life (its time is noted for every line)."""

    def _on_live_text(self, link: WorkerLink, message: dict[str, Any]) -> None:
        """The worker could not stream this call to the live recogniser: the console says so."""
        call = self.calls.get(message["call"])
        if call is not None:
            self.ctx.events.publish(
                "transcript.live",
                {
                    "call_uid": call.uid,
                    "state": message.get("state"),
                    "extension": call.seat,
                    "message": "实时转写未启用，通话结束后生成文字记录",
                },
            )

    def _on_error(self, link: WorkerLink, message: dict[str, Any]) -> None:
        call = self.calls.get(message.get("call") or "")
        # A command that crossed the citizen's hang-up on the wire is expected, not a fault.
        level = logging.ERROR if call is not None else logging.INFO
        log.log(level, "worker %s: %s (%s)", link.name, message.get("message"), message.get("command"))
        if call is not None:
            self._record_event(call, "worker_error", {"message": message.get("message")})
            if message.get("command") == "ring" and call.state == "ringing" and call.seat:
                self._seat_did_not_answer(call)

    # --- the end of a call -------------------------------------------------------------------------
    def _finish(
        self,
        call: LiveCall,
        cause: str,
        side: str,
        recording: dict[str, Any] | None,
        at: datetime | None = None,
    ) -> None:
        outcome = call.outcome
        if outcome is None:
            if call.direction == CallDirection.OUTBOUND:
                outcome = CallOutcome.COMPLETED if call.state == "talking" else CallOutcome.NOT_REACHED
            elif call.state in ("new", "queued", "ringing", "offer"):
                outcome = CallOutcome.ABANDONED
            else:
                outcome = CallOutcome.ANSWERED
        with self.ctx.unit_of_work() as session:
            record = CallRecords(session, self.clock).close(call.uid, outcome, cause, side, recording, at)
            if call.transfer_target:
                record.transfer_target = call.transfer_target
            if call.digits:
                record.dtmf = "".join(call.digits)[:64]
            result = {"uid": call.uid, "outcome": record.outcome, "digits": record.dtmf, "cause": cause}
            result["status"] = call.failed_status
            if call.menu is not None:
                menu = call.menu
                result.update(choice=menu.choice, follow_choice=menu.follow_choice, menu=menu.outcome)
        self._release_seat(call)
        self.ctx.events.publish(
            "call.ended", {"extension": call.seat, "call_uid": call.uid, "outcome": outcome.value}
        )
        self._publish_queue()
        if call.done is not None and not call.done.done():
            call.done.set_result(result)
        self._dispatch()

    def _release_seat(self, call: LiveCall) -> None:
        """The seat that had the call goes to wrap-up (or back to ready if it was only ringing)."""
        extension, call.seat = call.seat, None
        if extension is None:
            return
        ringing = call.state == "ringing"
        with self.ctx.unit_of_work() as session:
            seats = SeatService(session, self.clock)
            current = seats.get(extension)
            if current.current_call_uid != call.uid:
                return
            target = SeatState.READY if ringing else SeatState.WRAP_UP
            if SeatState(current.state) in (SeatState.RINGING, SeatState.TALKING):
                view = seat_view(seats.change(extension, target, by_queue=True))
            else:
                return
        self.ctx.events.publish("seat", view)

    def worker_died(self, name: str, cause: str) -> None:
        """Close the record of the one call a dead worker carried; nothing else is touched."""
        self.workers.pop(name, None)
        self._fail_calls(name, cause)
        with self.ctx.unit_of_work() as session:
            records = CallRecords(session, self.clock)
            for record in records.open_on_worker(name):  # from before a controller restart
                records.close(record.uid, CallOutcome.FAILED, cause, "system")

    def _fail_calls(self, worker: str, cause: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
        for call in [c for c in self.calls.values() if c.worker == worker and c.uid not in keep]:
            del self.calls[call.uid]
            call.outcome = CallOutcome.FAILED
            self._finish(call, cause, "system", None)

    def _keep_links(self, now: float) -> None:
        """Remote workers: ping each second; a silent one is cut (its calls are then closed). After
        a tick that came late (this loop was held up), what the workers sent is read first."""
        late, self._ticked = now - self._ticked > 2 * TICK_SECONDS + 0.5, now
        ping = now - self._pinged >= PING_SECONDS
        if ping:
            self._pinged = now
        for link in [w for w in self.workers.values() if w.remote]:
            if now - link.last_heard > LINK_SILENCE_SECONDS and not late:
                log.error(
                    "media worker %s on %s silent for %.1f s: cut",
                    link.name,
                    link.media_host,
                    now - link.last_heard,
                )
                link.writer.close()  # its channel ends; the calls it carried are closed there
            elif ping:
                link.send({"type": "ping"})

    # --- queue and seats -------------------------------------------------------------------------
    def queue(self) -> list[LiveCall]:
        # by arrival (a call adopted after a takeover keeps its place)
        return sorted(
            (c for c in self.calls.values() if c.state == "queued"), key=lambda c: (c.started, c.order)
        )

    def _has_ready_seat(self) -> bool:
        with self.ctx.unit_of_work() as session:
            return SeatService(session, self.clock).longest_idle_ready() is not None

    def _dispatch(self) -> None:
        """Give waiting callers, oldest first, to the ready seats idle the longest."""
        on_callback = self.seats_on_callback()
        for call in self.queue():
            with self.ctx.unit_of_work() as session:
                seats = SeatService(session, self.clock)
                seat = seats.longest_idle_ready(exclude=call.tried | on_callback)
                if seat is None:
                    return
                seat = seats.change(seat.extension, SeatState.RINGING, by_queue=True, call_uid=call.uid)
                earlier = self.ctx.call_tickets.earlier_tickets(session, call.caller)
                view = seat_view(seat, call.caller)
            call.state, call.seat = "ringing", seat.extension
            self._record_event(call, "ringing", {"seat": seat.extension})
            self._send(
                call,
                {
                    "type": "ring",
                    "leg": "seat",
                    "uri": self._local_uri(seat.extension),
                    "timeout": self.cc.ring_timeout_seconds,
                },
            )
            self.ctx.events.publish("seat", view)
            self.ctx.events.publish(
                "call.offered",
                {
                    "extension": seat.extension,
                    "call_uid": call.uid,
                    "caller": call.caller,
                    "caller_masked": mask_phone(call.caller),
                    "earlier_tickets": earlier,
                    "opening": _opening_of(call.uid),
                },
            )

    def _local_uri(self, user: str) -> str:
        return f"sip:{user}@{self.cc.sip_host}:{self.cc.sip_port}"

    # --- callback requests when the queue is full or slow ---------------------------------------
    def _offer_callback(self, call: LiveCall, full: bool) -> None:
        call.offered_callback = True
        files = [str(self.prompts.path("queue_full"))]
        if full:
            call.state = "offer"
            call.offer_deadline = time.monotonic() + _seconds(files) + OFFER_ANSWER_SECONDS
            self._send(call, {"type": "play", "files": files, "loop_last": False})
        else:  # waited too long: offer, then back to the hold music
            self._send(
                call,
                {"type": "play", "files": [*files, str(self.prompts.path("hold_music"))], "loop_last": True},
            )
        self._record_event(call, "callback_offered", {"queue_full": full})

    def _take_callback_request(self, call: LiveCall) -> None:
        call.state, call.outcome = "ending", CallOutcome.CALLBACK_REQUESTED
        with self.ctx.unit_of_work() as session:
            ticket_id, number = self.ctx.call_tickets.callback_request(session, call.caller)
            record = CallRecords(session, self.clock).get(call.uid)
            record.ticket_id = ticket_id
            CallRecords(session, self.clock).event(record, "callback_requested", {"ticket": number})
        files = [str(self.prompts.path("callback_registered"))]
        self._send(call, {"type": "play", "files": files, "loop_last": False})
        call.hangup_at = time.monotonic() + _seconds(files) + 0.3
        self._publish_queue()

    # --- the clock --------------------------------------------------------------------------------
    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self.tick()
            except Exception:
                log.exception("queue tick")

    def tick(self) -> None:
        now = time.monotonic()
        self._keep_links(now)
        for call in list(self.calls.values()):
            if call.hangup_at is not None and now >= call.hangup_at:
                call.hangup_at = None
                self._send(call, {"type": "hangup", "cause": call.hangup_cause, "side": "system"})
            elif call.menu is not None and call.menu.deadline is not None and now >= call.menu.deadline:
                call.menu.deadline = None
                self._menu_again(call)
            elif call.state == "offer" and call.offer_deadline is not None and now >= call.offer_deadline:
                call.state, call.outcome, call.offer_deadline = "ending", CallOutcome.REJECTED, None
                files = [str(self.prompts.path("goodbye"))]
                self._send(call, {"type": "play", "files": files, "loop_last": False})
                call.hangup_at = now + _seconds(files) + 0.3
            elif (
                call.state == "queued"
                and not call.offered_callback
                and call.waited(now) > self.cc.max_wait_seconds
            ):
                self._offer_callback(call, full=False)
        self._end_wrap_ups()
        self._dispatch()

    def _end_wrap_ups(self) -> None:
        with self.ctx.unit_of_work() as session:
            seats = SeatService(session, self.clock)
            views = [
                seat_view(seats.change(ext, SeatState.READY, by_queue=True))
                for ext in seats.wrap_ups_due(self.cc.wrap_up_seconds)
            ]
        for view in views:
            self.ctx.events.publish("seat", view)

    # --- requests from the seats (pages and API) -------------------------------------------------
    def _live(self, uid: str) -> LiveCall:
        call = self.calls.get(uid)
        if call is None:
            raise CallNotFound(f"call {uid} is not in progress", f"通话 {uid} 不在进行中")
        return call

    def transfer(self, uid: str, service: str) -> None:
        """Transfer to 110/119/120 at once: the centre is rung, the seat leaves when it answers."""
        call = self._live(uid)
        if call.state != "talking":
            raise CallCenterError(f"call {uid} is not talking to a seat", "通话尚未接通坐席，不能转接")
        uri = self.cc.transfers.uri(service)
        call.transfer_target = service
        self._record_event(call, "transfer", {"target": service, "uri": uri})
        self._send(call, {"type": "ring", "leg": "transfer", "uri": uri, "timeout": 60})

    def conference(self, uid: str, number: str) -> None:
        """三方通话: add a department's number; citizen, operator and party all hear each other."""
        call = self._live(uid)
        if call.state != "talking":
            raise CallCenterError(
                f"call {uid} is not talking to a seat", "通话尚未接通坐席，不能发起三方通话"
            )
        uri = number if number.startswith("sip:") else self._local_uri(number)
        self._record_event(call, "conference", {"number": number})
        self._send(call, {"type": "ring", "leg": "conference", "uri": uri, "timeout": 45})

    def supervise(self, uid: str, extension: str, mode: str) -> None:
        """A supervisor's phone listens, whispers to the operator, or joins (barge)."""
        call = self._live(uid)
        if call.supervisor_on:  # already listening: switch between listen, whisper and barge
            return self.set_supervision_mode(uid, mode)
        self._record_event(call, "supervise", {"extension": extension, "mode": mode})
        self._send(
            call, {"type": "supervise", "uri": self._local_uri(extension), "mode": mode, "timeout": 30}
        )

    def set_supervision_mode(self, uid: str, mode: str) -> None:
        call = self._live(uid)
        self._record_event(call, "supervise_mode", {"mode": mode})
        self._send(call, {"type": "set_mode", "mode": mode})

    def hangup(self, uid: str, side: str = "operator") -> None:
        self._send(self._live(uid), {"type": "hangup", "cause": "hung up from the console", "side": side})

    def seat_changed(self) -> None:
        """A seat became ready through the API: try the queue at once instead of at the next tick."""
        self._dispatch()

    def _free_workers(self) -> list[str]:
        busy = {c.worker for c in self.calls.values()}
        return [name for name in self.workers if name not in busy]

    def idle_workers(self) -> int:
        return len(self._free_workers())

    async def dial(
        self,
        number: str,
        files: list[Path],
        timeout: float = 30,
        ticket_id: int | None = None,
        hold: float | None = None,
        menu: Menu | None = None,
    ) -> LiveCall:
        """Place an outbound call on a free worker through Kamailio and play `files` once it answers;
        with a `menu`, its prompts play when the citizen answers and the key pressed ends the call."""
        free = self._free_workers()
        if not free:
            raise CallCenterError("no free media worker for an outbound call", "没有空闲的外呼通道")
        uid = f"out-{int(time.time() * 1000)}-{next(self._outbound)}"
        call = LiveCall(uid, free[0], number, CallDirection.OUTBOUND, state="dialing")
        call.done = asyncio.get_running_loop().create_future()
        call.menu = menu
        self.calls[uid] = call
        with self.ctx.unit_of_work() as session:
            CallRecords(session, self.clock).open(
                uid, self.cc.hotline_number, number, call.worker, CallDirection.OUTBOUND, ticket_id=ticket_id
            )
        self._send(call, {"type": "dial", "uri": self._local_uri(number), "timeout": timeout})
        if files:
            self._send(call, {"type": "play", "files": [str(f) for f in files], "loop_last": False})
        if hold is not None:
            call.hangup_at = time.monotonic() + hold
        return call

    def seats_on_callback(self) -> set[str]:
        """Seats placing a callback from the console: busy on that call even while they show ready."""
        return {c.ring_seat for c in self.calls.values() if c.ring_seat is not None}

    async def call_for_seat(
        self, number: str, extension: str, ticket_id: int | None = None, timeout: float = 40
    ) -> LiveCall:
        """A callback placed from the seat console: the citizen is dialled; when they answer, the
        operator's seat phone rings and both are bridged (and recorded, like any call)."""
        call = await self.dial(number, [], timeout, ticket_id)
        call.ring_seat = extension
        return call

    # --- the survey menu on outbound calls ---------------------------------------------------------
    def _menu_play(self, call: LiveCall, files: list[Path]) -> None:
        assert call.menu is not None
        names = [str(f) for f in files]
        self._send(call, {"type": "play", "files": names, "loop_last": False})
        call.menu.deadline = time.monotonic() + _seconds(names) + call.menu.wait_seconds

    def _menu_key(self, call: LiveCall, digit: str) -> None:
        menu = call.menu
        assert menu is not None
        if not digit or digit not in (menu.follow_valid if menu.stage == 2 else menu.valid):
            menu.wrong_key = True
            self._menu_again(call)
            return
        if menu.stage == 2:
            menu.follow_choice = digit
        else:
            menu.choice = digit
            if menu.follow_up:
                menu.stage, menu.tries, menu.wrong_key = 2, 0, False
                self._menu_play(call, menu.follow_up)
                return
        menu.outcome = "chosen"
        self._menu_end(call, menu.thanks)

    def _menu_again(self, call: LiveCall) -> None:
        """No key in time, or a wrong one: ask once more, or end the call."""
        menu = call.menu
        assert menu is not None
        if menu.tries < menu.repeats:
            menu.tries += 1
            self._record_event(call, "menu_repeat", {"wrong_key": menu.wrong_key, "stage": menu.stage})
            self._menu_play(call, [*menu.retry, *(menu.follow_up if menu.stage == 2 else menu.question)])
            return
        if menu.stage == 2:  # the first answer stands; the follow-up stays unanswered
            menu.outcome = "chosen"
            self._menu_end(call, menu.thanks)
            return
        menu.outcome = "invalid_input" if menu.wrong_key else "no_input"
        self._menu_end(call, menu.goodbye)

    def _menu_end(self, call: LiveCall, files: list[Path]) -> None:
        assert call.menu is not None
        call.menu.deadline = None
        names = [str(f) for f in files]
        menu = call.menu
        detail = {"outcome": menu.outcome, "choice": menu.choice, "follow_choice": menu.follow_choice}
        self._record_event(call, "menu_result", detail)
        self._send(call, {"type": "play", "files": names, "loop_last": False})
        call.hangup_cause = f"survey {call.menu.outcome}"
        call.hangup_at = time.monotonic() + _seconds(names) + 0.3

    # --- views for the pages ------------------------------------------------------------------------
    def queue_view(self) -> dict[str, Any]:
        now = time.monotonic()
        waiting = self.queue()
        return {
            "length": len(waiting),
            "longest_wait_seconds": round(max((c.waited(now) for c in waiting), default=0.0), 1),
            "callers": [
                {
                    "call_uid": c.uid,
                    "caller_masked": mask_phone(c.caller),
                    "waited_seconds": round(c.waited(now), 1),
                }
                for c in waiting
            ],
            "workers": len(self.workers),
            "calls": len(self.calls),
        }

    def caller_of(self, uid: str | None) -> str | None:
        call = self.calls.get(uid or "")
        return call.caller if call else None

    def _publish_queue(self) -> None:
        view = self.queue_view()
        self.ctx.events.publish(
            "queue", {"length": view["length"], "longest_wait_seconds": view["longest_wait_seconds"]}
        )

    def _record_event(self, call: LiveCall, kind: str, detail: dict[str, Any]) -> None:
        with self.ctx.unit_of_work() as session:
            records = CallRecords(session, self.clock)
            records.event(records.get(call.uid), kind, detail)


def _seconds(files: list[str]) -> float:
    import wave

    total = 0.0
    for name in files:
        with contextlib.suppress(OSError, wave.Error), wave.open(name, "rb") as wav:
            total += wav.getnframes() / float(wav.getframerate())
    return total


def _opening_of(uid: str) -> dict[str, Any] | None:
    """What the caller said while waiting, already transcribed (none without speech to text)."""
    from callcenter.asr import runtime  # the speech runtime is optional: imported when a call rings

    return runtime.opening_of(uid)
