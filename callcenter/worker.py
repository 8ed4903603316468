"""A media worker: one pjsua2 endpoint in its own process, carrying one citizen's call at a time.

It answers the citizen (any other INVITE while busy gets 486, so Kamailio tries the next worker),
records the citizen and the hotline side on two channels, plays prompts, and dials the other legs the
controller asks for (seat, 110/119/120, a three-way party, a listening supervisor) on its one
conference bridge. Everything pjsua2 runs on the thread that created the library (the note's recipe:
no pjsua threads, callbacks queued to `libHandleEvents`); a reader thread only turns the controller's
lines into a queue. CPU-heavy work stays out of this process.

Run: python -m callcenter.worker --name w01 --sip-port 5101 --rtp-port 20000 --socket ctl.sock ...
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pjsua2 as pj

from callcenter.asr.client import LiveClient
from callcenter.protocol import ProtocolError, decode, encode
from callcenter.recording import TwoChannelRecording

log = logging.getLogger("callcenter.worker")

CITIZEN = "citizen"
PLAYER = "player"
REC_CITIZEN = "rec_citizen"
REC_HOTLINE = "rec_hotline"
LIVE = "live"  # the live recogniser's tap on the citizen
PARTIES = ("seat", "transfer", "conference")
IDLE_POLL_MS = 50
# Remote workers (a media host of their own): the link to the controller.
PING_SECONDS = 1.0
# Longer than the controller's (6 s): a silent link is the controller's to cut, so a worker on a busy
# machine does not give up its controller, and refuse calls, for a late ping.
LINK_SILENCE_SECONDS = 8.0
RECONNECT_SECONDS = 0.5
OUTBOX_SIZE = 2000


def wanted_edges(present: set[str], supervisor_mode: str | None, playing: bool) -> set[tuple[str, str]]:
    """Who hears whom on the bridge, as (source, sink) pairs, for the legs present now.

    The citizen and every party hear each other; a supervisor hears everyone, and is heard by the
    operator only when whispering, by everyone when barging. Prompts go to the citizen until a party
    is on the line. The two recorders take the citizen, and everything the citizen hears.
    """
    parties = [p for p in PARTIES if p in present]
    talkers = ([CITIZEN] if CITIZEN in present else []) + parties
    edges = {(a, b) for a in talkers for b in talkers if a != b}
    if "supervisor" in present:
        edges |= {(t, "supervisor") for t in talkers}
        if supervisor_mode == "whisper" and "seat" in present:
            edges.add(("supervisor", "seat"))
        elif supervisor_mode == "barge":
            edges |= {("supervisor", t) for t in talkers}
    if playing and CITIZEN in present and not parties:
        edges.add((PLAYER, CITIZEN))
    if CITIZEN in present:
        edges.add((CITIZEN, REC_CITIZEN))
        edges.add((CITIZEN, LIVE))
        edges |= {(src, REC_HOTLINE) for src, sink in edges if sink == CITIZEN}
    return edges


class Leg(pj.Call):
    """One SIP call of a session; reports its life to the session, which owns every decision."""

    def __init__(self, account: pj.Account, session: CallSession, role: str, call_id: int = -1) -> None:
        super().__init__(account, call_id)
        self.session = session
        self.role = role
        self.confirmed = False
        self.reported = False  # its failure was already reported (a ring timeout)

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
            self.confirmed = True
            self.session.leg_confirmed(self)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.session.leg_disconnected(self, info.lastStatusCode, info.lastReason)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.session.media_ready(self.role, self.getAudioMedia(index))
                return

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        method = "sip_info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
        self.session.worker.send(
            {"type": "dtmf", "call": self.session.uid, "digit": prm.digit, "method": method, "leg": self.role}
        )


class LiveTap(pj.AudioMediaPort):
    """A bridge port that hands the citizen's audio to the live recogniser (another process).

    pjsua2 calls onFrameReceived on its media clock thread every 20 ms; the client only appends to a
    non-blocking socket (frames are dropped, never waited for), so the bridge is never held up.
    """

    def __init__(self, client: LiveClient) -> None:
        super().__init__()
        self.client = client
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, 8000, 1, 20000, 16)
        self.createPort("live", fmt)

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
            self.client.send(bytes(frame.buf))


@dataclass
class PendingLeg:
    leg: Leg
    deadline: float


class CallSession:
    """The citizen's call and every leg added to it, bridged on this worker's conference bridge."""

    def __init__(self, worker: Worker, uid: str, inbound: bool) -> None:
        self.worker = worker
        self.uid = uid
        self.inbound = inbound
        self.legs: dict[str, Leg] = {}
        self.media: dict[str, pj.AudioMedia] = {}
        self.edges: set[tuple[str, str]] = set()
        self.pending: dict[str, PendingLeg] = {}
        self.supervisor_mode: str | None = None
        self.player: pj.AudioMediaPlayer | None = None
        self.hold_files: list[str] = []
        self.next_prompt_at: float | None = None
        self.recording: TwoChannelRecording | None = None
        self.recorders: dict[str, pj.AudioMediaRecorder] = {}
        self.live_tap: LiveTap | None = None
        self.hangup_side: str | None = None
        self.cause: str | None = None
        self.citizen_gone = False
        # An answered caller whose ACK never comes is given up at this time, not after pjsip's 32 s: a
        # flood of unacknowledged INVITEs must not hold the workers (issue 17).
        self.ack_deadline: float | None = None

    # --- bridge -------------------------------------------------------------------------------
    def _port(self, name: str) -> pj.AudioMedia | None:
        if name == PLAYER:
            return self.player
        if name == LIVE:
            return self.live_tap
        return self.recorders.get(name) or self.media.get(name)

    def rewire(self) -> None:
        present = {role for role in self.media if role in self.legs}
        want = wanted_edges(present, self.supervisor_mode, self.player is not None)
        want = {(a, b) for a, b in want if self._port(a) is not None and self._port(b) is not None}
        for src, sink in self.edges - want:
            self._transmit(src, sink, start=False)
        for src, sink in want - self.edges:
            self._transmit(src, sink, start=True)
        self.edges = want

    def _transmit(self, src: str, sink: str, start: bool) -> None:
        source, target = self._port(src), self._port(sink)
        if source is None or target is None:
            return
        try:
            (source.startTransmit if start else source.stopTransmit)(target)
        except pj.Error as exc:  # a port already removed by a hang-up; the edge is simply gone
            log.debug("transmit %s->%s %s: %s", src, sink, start, exc.info())

    # --- prompts ------------------------------------------------------------------------------
    def play(self, files: list[str], loop_last: bool) -> None:
        """Play the prompts in order; the last one loops (hold music) when loop_last is set."""
        if not files:
            return self.stop_play()
        if loop_last and len(files) > 1:
            self._start_player(files[:-1], loop=False)
            self.hold_files = files[-1:]
            self.next_prompt_at = time.monotonic() + sum(wav_seconds(f) for f in files[:-1])
        else:
            self.hold_files = []
            self.next_prompt_at = None
            self._start_player(files, loop=loop_last)
        return None

    def _start_player(self, files: list[str], loop: bool) -> None:
        self._drop_player()
        player = pj.AudioMediaPlayer()
        options = 0 if loop else pj.PJMEDIA_FILE_NO_LOOP
        if len(files) == 1:
            player.createPlayer(files[0], options)
        else:
            names = pj.StringVector()
            for name in files:
                names.append(name)
            player.createPlaylist(names, "prompts", options)
        self.player = player
        self.rewire()

    def _drop_player(self) -> None:
        if self.player is not None:
            for edge in [e for e in self.edges if PLAYER in e]:
                self._transmit(*edge, start=False)
                self.edges.discard(edge)
            self.player = None

    def stop_play(self) -> None:
        self.hold_files, self.next_prompt_at = [], None
        self._drop_player()

    def tick(self, now: float) -> None:
        if self.ack_deadline is not None and now >= self.ack_deadline:
            self.ack_deadline = None
            citizen = self.legs.get(CITIZEN)
            if citizen is not None and not citizen.confirmed:
                self.hangup("no ACK from the caller", side="system")
        if self.next_prompt_at is not None and now >= self.next_prompt_at and not self.citizen_gone:
            files, self.hold_files, self.next_prompt_at = self.hold_files, [], None
            self._start_player(files, loop=True)
        for role, pending in list(self.pending.items()):
            if now >= pending.deadline:
                self.worker.send(
                    {
                        "type": "leg_failed",
                        "call": self.uid,
                        "leg": role,
                        "status": 408,
                        "reason": "no answer",
                    }
                )
                self.pending.pop(role)
                pending.leg.reported = True
                self._hangup_leg(pending.leg)

    # --- legs ---------------------------------------------------------------------------------
    def add_citizen(self, leg: Leg) -> None:
        self.legs[CITIZEN] = leg

    def ring(self, role: str, uri: str, timeout: float) -> None:
        if role in self.legs:
            raise CommandError(f"leg {role} is already on this call")
        leg = Leg(self.worker.account, self, role)
        prm = pj.CallOpParam(True)
        leg.makeCall(uri, prm)
        self.legs[role] = leg
        self.pending[role] = PendingLeg(leg, time.monotonic() + timeout)

    def drop(self, role: str) -> None:
        leg = self.legs.get(role)
        if leg is None:
            raise CommandError(f"no leg {role} on this call")
        self._hangup_leg(leg)

    def hangup(self, cause: str, side: str = "system") -> None:
        self.hangup_side = self.hangup_side or side
        self.cause = self.cause or cause
        for leg in list(self.legs.values()):
            self._hangup_leg(leg)

    @staticmethod
    def _hangup_leg(leg: Leg) -> None:
        try:
            leg.hangup(pj.CallOpParam(True))
        except pj.Error as exc:  # already disconnecting
            log.debug("hangup: %s", exc.info())

    def media_ready(self, role: str, media: pj.AudioMedia) -> None:
        self.media[role] = media
        if role == CITIZEN and self.recording is None:
            self._start_recording()
            self._start_live_text()
        if role in PARTIES:
            self.stop_play()  # a person is on the line: no more prompts
        self.rewire()

    def _start_recording(self) -> None:
        self.recording = TwoChannelRecording.begin(
            self.worker.recordings_dir, self.uid, zone=self.worker.zone
        )
        try:
            for name, path in (
                (REC_CITIZEN, self.recording.citizen_part),
                (REC_HOTLINE, self.recording.hotline_part),
            ):
                recorder = pj.AudioMediaRecorder()
                recorder.createRecorder(str(path))
                self.recorders[name] = recorder
        except pj.Error as exc:
            self.worker.send(
                {"type": "error", "call": self.uid, "message": f"recording failed: {exc.info()}"}
            )
            self.recorders.clear()
            self.recording = None

    def _start_live_text(self) -> None:
        """Stream the citizen to the live recogniser when one runs; otherwise the console says so."""
        if not self.worker.live_socket:
            return
        client = LiveClient(self.worker.live_socket, self.uid, rate=8000)
        if client.state != "streaming":
            client.close()
            self.worker.send({"type": "live_text", "call": self.uid, "state": client.state})
            return
        try:
            self.live_tap = LiveTap(client)
        except pj.Error as exc:
            client.close()
            self.worker.send({"type": "error", "call": self.uid, "message": f"live text: {exc.info()}"})

    def _stop_live_text(self) -> dict[str, object] | None:
        if self.live_tap is None:
            return None
        client, self.live_tap = self.live_tap.client, None  # the port is destroyed here, on this thread
        client.close()
        return client.stats()

    def leg_confirmed(self, leg: Leg) -> None:
        self.pending.pop(leg.role, None)
        self.worker.send({"type": "leg_answered", "call": self.uid, "leg": leg.role})

    def leg_disconnected(self, leg: Leg, status: int, reason: str) -> None:
        role = leg.role
        if self.legs.get(role) is leg:
            del self.legs[role]
        self.media.pop(role, None)
        self.pending.pop(role, None)
        if leg.reported:
            pass
        elif not leg.confirmed:
            self.worker.send(
                {"type": "leg_failed", "call": self.uid, "leg": role, "status": status, "reason": reason}
            )
        else:
            self.worker.send(
                {"type": "leg_ended", "call": self.uid, "leg": role, "cause": f"{status} {reason}"}
            )
        leg.session = _Detached(self.worker)
        self.rewire()
        if role == CITIZEN:
            self._citizen_left(f"{status} {reason}")
        elif not leg.confirmed:
            pass  # a leg that never answered leaves the call as it was; the controller decides what next
        elif role == "seat" and not {"transfer", "conference"} & set(self.legs):
            self.hangup("operator hung up", side="operator")
        elif role in ("transfer", "conference") and not {"seat", "transfer", "conference"} & set(self.legs):
            self.hangup(f"{role} party hung up", side="operator")
        if not self.legs:
            self.worker.session_finished(self)

    def _citizen_left(self, cause: str) -> None:
        self.citizen_gone = True
        left_at = time.time()  # before the recording is joined: that takes a moment under load
        self.hangup_side = self.hangup_side or "citizen"
        self.cause = self.cause or ("citizen hung up" if self.hangup_side == "citizen" else cause)
        self.stop_play()
        for name in list(self.edges):
            self._transmit(*name, start=False)
        self.edges.clear()
        self.recorders.clear()  # destroying the recorders writes the WAV headers
        live_stats = self._stop_live_text()
        summary = self.recording.finish() if self.recording is not None else None
        self.worker.send(
            {
                "type": "ended",
                "call": self.uid,
                "cause": self.cause,
                "side": self.hangup_side,
                "left_at": left_at,
                "live_text": live_stats,
                "recording": summary,
            }
        )
        self.hangup(self.cause, self.hangup_side)

    def set_supervisor_mode(self, mode: str) -> None:
        self.supervisor_mode = mode
        self.rewire()


class _Detached:
    """Stands in for the session of a leg that no longer belongs to one (late callbacks are ignored)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.uid = ""

    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class CommandError(Exception):
    """A command that cannot be carried out on the call as it is now."""


class HotlineAccount(pj.Account):
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        self.worker.incoming(prm.callId)


def wav_seconds(path: str) -> float:
    import wave

    with wave.open(path, "rb") as wav:
        return wav.getnframes() / float(wav.getframerate())


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.name: str = args.name
        self.sip_port: int = args.sip_port
        self.recordings_dir = Path(args.recordings)
        self.zone = ZoneInfo(args.timezone)  # recordings are filed under the hotline's local date
        self.live_socket: str | None = args.live_socket
        self.args = args
        self.commands: queue.Queue[dict[str, Any]] = queue.Queue()
        self.session: CallSession | None = None
        self.sessions: dict[str, CallSession] = {}
        self.rejected: dict[int, Leg] = {}
        self.running = True
        self.sock: socket.socket | None = None
        self.last_heard = time.monotonic()
        self._pinged = 0.0
        self._finding: threading.Thread | None = None
        # What happened while no controller listened (remote workers only), told when one is back.
        self.outbox: collections.deque[bytes] = collections.deque(maxlen=OUTBOX_SIZE)
        self.welcomed = False
        self.ep: pj.Endpoint | None = None
        self.account: HotlineAccount | None = None
        self._sequence = 0

    # --- controller channel ---------------------------------------------------------------------
    def connect(self) -> None:
        deadline = time.monotonic() + 15
        while True:
            sock = self._open()
            if sock is not None:
                break
            if time.monotonic() > deadline:
                raise ConnectionError(f"no controller at {self.args.socket or self.args.controllers}")
            time.sleep(0.1)
        self._attach(sock)

    @property
    def remote(self) -> bool:
        """On a media host of its own: the link to the controller crosses the network and may break
        (the controller dies and a standby takes over); calls in progress outlive it."""
        return bool(self.args.controllers)

    def _open(self) -> socket.socket | None:
        """A connection to the (active) controller: its Unix socket, or the first of the controllers'
        addresses that accepts (a standby does not listen)."""
        if not self.remote:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.args.socket)
            except OSError:
                sock.close()
                return None
            return sock
        for address in self.args.controllers.split(","):
            host, _, port = address.strip().rpartition(":")
            try:
                sock = socket.create_connection((host, int(port)), timeout=1.0)
            except OSError:
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            return sock
        return None

    def _attach(self, sock: socket.socket) -> None:
        self.sock = sock
        self.last_heard = time.monotonic()
        threading.Thread(target=self._read, args=(sock,), daemon=True, name="ipc").start()

    def _read(self, sock: socket.socket) -> None:
        for line in sock.makefile("rb"):
            self.last_heard = time.monotonic()
            try:
                self.commands.put(decode(line))
            except ProtocolError as exc:
                log.error("bad line from the controller: %s", exc)
        if not self.remote:
            self.commands.put({"type": "shutdown", "reason": "controller gone"})
        elif self.sock is sock:
            self.commands.put({"type": "_link_lost", "why": "the controller closed the link", "sock": sock})

    def send(self, message: dict[str, Any]) -> None:
        line = encode({**message, "worker": self.name})
        kind = message.get("type")
        if self.remote and not self.welcomed and kind not in ("hello", "ping"):
            # Until a controller has taken our hello (and the calls in it), what we tell is kept: a
            # controller still starting, or one that refuses, would lose it.
            self.outbox.append(line)
            return
        if self.sock is None:
            return
        try:
            self.sock.sendall(line)
        except OSError as exc:
            if not self.remote:
                log.error("controller unreachable: %s", exc)
                self.running = False
                return
            self.outbox.append(line)
            self._link_lost(f"sending failed: {exc}")

    def prompt_path(self, name: str) -> str:
        """A prompt named by a controller on another machine is this media host's own copy."""
        if name.startswith("prompts:") and self.args.prompts:
            return str(Path(self.args.prompts) / name[len("prompts:") :])
        return name

    def hello(self) -> dict[str, Any]:
        """Who this worker is, and (after a reconnection) the calls it still carries."""
        # Every call, also one whose citizen has just left: its "ended" waits in the outbox and must
        # find the call still known to the controller.
        calls = [
            {
                "call": s.uid,
                "inbound": s.inbound,
                "legs": sorted(r for r, leg in s.legs.items() if leg.confirmed),
            }
            for s in self.sessions.values()
        ]
        return {
            "type": "hello",
            "pid": os.getpid(),
            "sip_port": self.sip_port,
            "host": self.args.host,
            "media_host": self.args.media_host,
            "token": os.environ.get("HOTLINE_CONTROL_TOKEN", ""),
            "calls": calls,
        }

    def _link_lost(self, why: str) -> None:
        """The controller is gone or unreachable: keep the calls, look for the controller again."""
        sock, self.sock, self.welcomed = self.sock, None, False
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            log.warning(
                "lost the controller (%s); %d call(s) go on while it is looked for", why, len(self.sessions)
            )
        if self._finding is None or not self._finding.is_alive():
            self._finding = threading.Thread(target=self._find_controller, daemon=True, name="find")
            self._finding.start()

    def _find_controller(self) -> None:
        while self.running:
            sock = self._open()
            if sock is not None:
                self.commands.put({"type": "_link_back", "sock": sock})
                return
            time.sleep(RECONNECT_SECONDS)

    def _link_back(self, sock: socket.socket) -> None:
        self._attach(sock)
        self.send(self.hello())

    def _welcomed(self) -> None:
        """The controller took our hello: what happened meanwhile is told now, in order."""
        self.welcomed = True
        pending, self.outbox = list(self.outbox), collections.deque(maxlen=OUTBOX_SIZE)
        for line in pending:
            if self.sock is None:
                self.outbox.append(line)
                continue
            try:
                self.sock.sendall(line)
            except OSError as exc:
                self.outbox.append(line)
                self._link_lost(f"sending failed: {exc}")
        log.info("controller found again; %d report(s) caught up", len(pending))

    def keep_link(self, now: float) -> None:
        """A link across the network can go silent without breaking: both sides ping every second,
        and silence for LINK_SILENCE_SECONDS counts as a lost controller."""
        if not self.remote or self.sock is None:
            return
        if now - self.last_heard > LINK_SILENCE_SECONDS:
            self._link_lost(f"silent for {now - self.last_heard:.1f} s")
        elif now - self._pinged >= PING_SECONDS:
            self._pinged = now
            self.send({"type": "ping"})

    # --- pjsua2 --------------------------------------------------------------------------------
    def start_endpoint(self) -> None:
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 4
        cfg.uaConfig.userAgent = f"hotline-media-worker/{self.name}"
        cfg.logConfig.level = 3
        cfg.logConfig.consoleLevel = 1
        cfg.logConfig.filename = self.args.pjsip_log
        cfg.logConfig.msgLogging = 0
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.channelCount = 1
        cfg.medConfig.threadCnt = 1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.maxMediaPorts = 32
        ep.libInit(cfg)
        ep.audDevManager().setNullDev()
        transport = pj.TransportConfig()
        transport.port = self.sip_port
        transport.boundAddress = self.args.host
        transport_id = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        ep.libStart()
        for codec in ep.codecEnum2():  # G.711 only: what the trunk and the seat phones speak
            keep = codec.codecId.startswith(("PCMA/", "PCMU/"))
            ep.codecSetPriority(
                codec.codecId, 255 if codec.codecId.startswith("PCMA/") else 254 if keep else 0
            )
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{self.args.caller_id}@{self.args.host}:{self.sip_port}"
        acfg.sipConfig.transportId = transport_id
        acfg.sipConfig.proxies.append(self.args.proxy)
        acfg.mediaConfig.transportConfig.boundAddress = self.args.host
        acfg.mediaConfig.transportConfig.port = self.args.rtp_port
        acfg.mediaConfig.transportConfig.portRange = self.args.rtp_range
        account = HotlineAccount(self)
        account.create(acfg, True)
        self.ep, self.account = ep, account

    def incoming(self, call_id: int) -> None:
        assert self.account is not None
        no_controller = self.sock is None or (self.remote and not self.welcomed)
        if self.session is not None or not self.running or no_controller:
            # One citizen per worker; 486 sends Kamailio to the next worker. With no controller to
            # queue the call (a takeover in progress), 503: Kamailio tries another worker, or tells
            # the caller to try again shortly.
            leg = Leg(self.account, _RejectSink(self, call_id), "rejected", call_id)  # type: ignore[arg-type]
            self.rejected[call_id] = leg
            busy = pj.CallOpParam()
            busy.statusCode = 503 if no_controller else 486
            leg.answer(busy)
            return
        self._sequence += 1
        uid = f"{self.name}-{int(time.time() * 1000)}-{self._sequence}"
        session = CallSession(self, uid, inbound=True)
        leg = Leg(self.account, session, CITIZEN, call_id)
        session.add_citizen(leg)
        self.session = session
        self.sessions[uid] = session
        info = leg.getInfo()
        prm = pj.CallOpParam()
        prm.statusCode = 200
        leg.answer(prm)
        session.ack_deadline = time.monotonic() + self.args.ack_timeout
        self.send(
            {
                "type": "incoming",
                "call": uid,
                "caller": sip_user(info.remoteUri),
                "callee": sip_user(info.localUri),
                "sip_call_id": info.callIdString,
            }
        )

    def dial(self, command: dict[str, Any]) -> None:
        assert self.account is not None
        if self.session is not None:
            raise CommandError("this worker is busy with another call")
        uid = command["call"]
        session = CallSession(self, uid, inbound=False)
        leg = Leg(self.account, session, CITIZEN)
        leg.makeCall(command["uri"], pj.CallOpParam(True))
        session.add_citizen(leg)
        session.pending[CITIZEN] = PendingLeg(leg, time.monotonic() + float(command.get("timeout", 30)))
        self.session = session
        self.sessions[uid] = session

    def session_finished(self, session: CallSession) -> None:
        self.sessions.pop(session.uid, None)
        if self.session is session:
            self.session = None

    # --- commands ------------------------------------------------------------------------------
    def handle(self, command: dict[str, Any]) -> None:
        kind = command["type"]
        if kind == "shutdown":
            self.running = False
            return
        if kind == "ping":
            return
        if kind == "welcome":
            return self._welcomed() if self.remote else None
        if kind == "_link_lost":
            # a link given up since (its reader ends after the new one is up) is not the current one
            return self._link_lost(command["why"]) if command.get("sock") in (None, self.sock) else None
        if kind == "reply":  # our hello was refused (a controller still starting, a wrong token)
            return self._link_lost(f"hello refused: {command.get('detail')}")
        if kind == "_link_back":
            return self._link_back(command["sock"])
        if kind == "dial":
            return self.dial(command)
        session = self.sessions.get(command.get("call", ""))
        if session is None:
            raise CommandError(f"no call {command.get('call')!r} on worker {self.name}")
        if kind == "play":
            session.play(
                [self.prompt_path(f) for f in command["files"]], bool(command.get("loop_last", False))
            )
        elif kind == "stop_play":
            session.stop_play()
        elif kind == "ring":
            session.ring(command["leg"], command["uri"], float(command.get("timeout", 15)))
        elif kind == "supervise":
            session.supervisor_mode = command.get("mode", "listen")
            session.ring("supervisor", command["uri"], float(command.get("timeout", 15)))
        elif kind == "set_mode":
            session.set_supervisor_mode(command["mode"])
        elif kind == "drop_leg":
            session.drop(command["leg"])
        elif kind == "hangup":
            session.hangup(command.get("cause", "hung up by the hotline"), command.get("side", "system"))
        else:
            raise CommandError(f"unknown command {kind!r}")
        return None

    def run(self) -> None:
        self.connect()
        self.start_endpoint()
        self.send(self.hello())
        assert self.ep is not None
        while self.running:
            # SIP wakes the poll at once; the timeout only paces our own commands and timers, which
            # matter during a call. An idle worker polls slowly: 72 of them must not load the machine.
            self.ep.libHandleEvents(10 if self.sessions else IDLE_POLL_MS)
            self._drain()
            now = time.monotonic()
            self.keep_link(now)
            for session in list(self.sessions.values()):
                session.tick(now)
        self.shutdown()

    def _drain(self) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return
            try:
                self.handle(command)
            except (CommandError, KeyError, ValueError, pj.Error) as exc:
                detail = exc.info() if isinstance(exc, pj.Error) else str(exc)
                self.send(
                    {
                        "type": "error",
                        "call": command.get("call"),
                        "message": detail,
                        "command": command.get("type"),
                    }
                )

    def shutdown(self) -> None:
        """The note's order; any other crashed at least once."""
        assert self.ep is not None
        self.ep.hangupAllCalls()
        deadline = time.monotonic() + 5
        while (self.sessions or self.rejected) and time.monotonic() < deadline:
            self.ep.libHandleEvents(20)
        for session in self.sessions.values():
            session.player = None
            session._stop_live_text()
            session.recorders.clear()
            session.media.clear()
            session.legs.clear()
        self.sessions.clear()
        self.session = None
        self.rejected.clear()
        if self.account is not None:
            self.account.shutdown()
            self.account = None
        self.ep.libDestroy()
        self.ep = None


class _RejectSink(_Detached):
    """Forgets a rejected INVITE's Call object inside its DISCONNECTED callback (never later)."""

    def __init__(self, worker: Worker, call_id: int) -> None:
        super().__init__(worker)
        self.call_id = call_id

    def leg_disconnected(self, *_args: Any) -> None:
        self.worker.rejected.pop(self.call_id, None)


def sip_user(uri: str) -> str:
    """'"Zhang" <sip:13800138000@1.2.3.4:5060>;tag=x' -> '13800138000'."""
    inner = uri.split("<", 1)[-1].split(">", 1)[0]
    inner = inner.split(":", 1)[-1] if inner.startswith(("sip:", "sips:", "tel:")) else inner
    return inner.split("@", 1)[0].split(";", 1)[0]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--rtp-port", type=int, required=True)
    parser.add_argument("--rtp-range", type=int, default=20)
    parser.add_argument("--proxy", required=True, help="Kamailio, e.g. sip:127.0.0.1:5060;lr")
    parser.add_argument("--caller-id", default="12345")
    link = parser.add_mutually_exclusive_group(required=True)
    link.add_argument("--socket", help="the controller's Unix socket (on the controller's machine)")
    link.add_argument(
        "--controllers", help="host:port of every controller, comma-separated (a media host of its own)"
    )
    parser.add_argument("--media-host", default="", help="the media host's name (remote workers)")
    parser.add_argument("--prompts", default="", help="this host's prompts folder (remote workers)")
    parser.add_argument("--recordings", required=True)
    parser.add_argument(
        "--timezone", default="Asia/Shanghai", help="the hotline's time zone (config hotline)"
    )
    parser.add_argument("--pjsip-log", required=True)
    parser.add_argument("--live-socket", default=None, help="the live recogniser's socket (optional)")
    parser.add_argument("--ack-timeout", type=float, default=4.0, help="seconds an answer waits for the ACK")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    worker = Worker(parse_args(argv))
    signal.signal(signal.SIGTERM, lambda *_: setattr(worker, "running", False))
    signal.signal(signal.SIGINT, lambda *_: setattr(worker, "running", False))
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
