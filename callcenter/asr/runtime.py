"""Speech to text inside `hotline serve`: the background transcription and the live recogniser.

For the lead (agent_ui/app.py lifespan, next to the call centre):

    from callcenter import asr
    speech = await asr.start(ctx)          # never raises for a missing/broken model: it runs "off"
    ...
    await asr.stop()
    asr.asr_status()                       # for /api/health and the supervisor's page

`start` runs the `TranscriptionService` in this process's event loop (the decoding itself happens in
worker processes), starts `python -m callcenter.asr.live` as a child process on
`live_socket_path(runtime_dir)`, and bridges its events to `ctx.events`:

    transcript.partial   {"call_uid", "text" (everything said so far), "partial", "final": bool,
                          "suggestions" (with final segments)}
    transcript.live      {"call_uid", "state": "started" | "ended" | "refused", "message"}
    transcript.opening   {"call_uid", "text" (corrected), "raw_text", "delay_seconds", "suggestions",
                          "classification"}: the caller's first statement, as soon as they paused
    transcript.done      (from the transcription service) {"call_uid", "ticket_id", "extension",
                          "text", "suggestions", "classification"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from callcenter.asr.client import live_socket_path
from callcenter.asr.service import TranscriptionService, suggestions
from callcenter.asr.transcriber import ModelError, check_model_folder
from callcenter.context import CallCentreContext
from callcenter.settings import AsrSettings

log = logging.getLogger("callcenter.asr")

LIVE_START_SECONDS = 60.0
RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 60.0
STEADY_SECONDS = 60.0  # a recogniser that ran this long before it stopped is started again at once
AFTER_CALL_ONLY = "实时转写已满，仅通话后转写 (after-call transcript only)"


@contextlib.asynccontextmanager
async def subscription(socket_path: Path) -> AsyncIterator[asyncio.StreamReader]:
    """The live recogniser's event lines, as a listener receives them."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=1 << 20)
    writer.write(b'{"subscribe": true}\n')
    await writer.drain()
    try:
        yield reader
    finally:
        writer.close()


def opening_arguments(s: AsrSettings, folder: Path) -> list[str]:
    """The live recogniser's arguments for opening statements with the Whisper model in `folder`."""
    packaged = ["--opening-packaged"] if s.whisper_model is None else []
    return [
        "--opening-model", str(folder), *packaged, "--opening-workers", str(s.opening_workers),
        "--beam", str(s.whisper_beam_size), "--threads", str(s.opening_threads),
    ]  # fmt: skip


async def spawn_live(
    socket_path: Path, log_path: Path, vosk: Path | None, opening: list[str], max_streams: int
) -> asyncio.subprocess.Process | None:
    """Start `python -m callcenter.asr.live`; None (and no process left) when it did not say it is
    ready within LIVE_START_SECONDS (its log says why)."""
    model = ["--model", str(vosk)] if vosk is not None else []
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as errors:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callcenter.asr.live", "--socket", str(socket_path), *model, *opening,
            "--max-streams", str(max_streams), stdout=asyncio.subprocess.PIPE, stderr=errors,
        )  # fmt: skip
    assert process.stdout is not None
    try:
        ready = await asyncio.wait_for(process.stdout.readline(), LIVE_START_SECONDS)
    except TimeoutError:
        ready = b""
    if ready:
        return process
    await end_process(process)
    return None


async def end_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()
            await process.wait()


Heard = Callable[[dict[str, Any]], Awaitable[None]]


async def read_events(reader: asyncio.StreamReader, heard: Heard) -> None:
    """The live recogniser's event lines, each decoded and handed to `heard` (the controller's bridge,
    or a media host's queue to the controller)."""
    while line := await reader.readline():
        try:
            event = json.loads(line)
        except ValueError:  # one garbled line must not end the live text of every call
            log.warning("live recogniser sent a line that is not JSON: %r", line[:200])
            continue
        await heard(event)


class LiveProcess:
    """The live recogniser kept running: when it stops after a good start (a crash, a kill, the kernel's
    out-of-memory killer) it is started again, after a pause that grows while it keeps stopping. Its
    events go to `heard` after each start (`read_events`). A first start that fails is a configuration fault:
    it is reported, not retried."""

    def __init__(
        self,
        socket_path: Path,
        log_path: Path,
        vosk: Path | None,
        opening: list[str],
        max_streams: int,
        heard: Heard,
    ) -> None:
        self.arguments = (socket_path, log_path, vosk, opening, max_streams)
        self.socket_path, self.log_path = socket_path, log_path
        self.heard = heard
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.running = False

    async def start(self) -> bool:
        self.process = await spawn_live(*self.arguments)
        self.running = self.process is not None
        return self.running

    async def follow(self) -> None:
        """Consume events until stopped, starting the recogniser again whenever it goes away."""
        pause = RESTART_FIRST_SECONDS
        while True:
            started = time.monotonic()
            if self.process is not None:
                try:
                    async with subscription(self.socket_path) as reader:
                        await read_events(reader, self.heard)
                except OSError as exc:
                    log.error("live recogniser connection failed: %s", exc)
                await end_process(self.process)
            self.running = False
            if time.monotonic() - started > STEADY_SECONDS:
                pause = RESTART_FIRST_SECONDS
            log.error("live recogniser stopped (see %s); starting it again in %.0f s", self.log_path, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESTART_MAX_SECONDS)
            if await self.start():
                self.restarts += 1
                log.warning("live recogniser started again (%d restarts)", self.restarts)

    async def stop(self) -> None:
        if self.process is not None:
            await end_process(self.process)


class LiveBridge:
    """Reads the live recogniser's event lines and republishes them for the pages."""

    def __init__(self, ctx: CallCentreContext, kb_for_text: Any = None, understand: Any = None) -> None:
        self.ctx = ctx
        self.kb_for_text = kb_for_text  # text -> suggestions; None: no suggestions while talking
        self.understand = understand  # opening statement -> {"text", "suggestions", "classification"}
        self.texts: dict[str, str] = {}
        self.hello: dict[str, Any] = {}
        # each open stream's opening statement: a caller who spoke in the queue has it shown when the
        # call reaches a seat (call.offered carries it), not lost before the console knew the call
        self.openings: dict[str, dict[str, Any]] = {}

    async def handle(self, event: dict[str, Any]) -> None:
        kind, uid = event.get("type"), event.get("call")
        if kind == "hello":
            self.hello = event
        elif kind in ("partial", "final"):
            await self._text(uid, event, kind == "final")
        elif kind == "opening":
            await self._opening(uid, event)
        elif kind == "refused":
            self.ctx.events.publish(
                "transcript.live", {"call_uid": uid, "state": "refused", "message": AFTER_CALL_ONLY}
            )
        elif kind in ("started", "ended"):
            if kind == "ended":
                self.texts.pop(uid, None)
                self.openings.pop(uid, None)
            self.ctx.events.publish("transcript.live", {"call_uid": uid, "state": kind})

    async def _opening(self, uid: str, event: dict[str, Any]) -> None:
        payload: dict[str, Any] = {
            "call_uid": uid,
            "text": event["text"],
            "raw_text": event["text"],
            "delay_seconds": event.get("delay_seconds"),
            "speech_ended_at": event.get("speech_ended_at"),
        }
        if self.understand is not None and event["text"]:
            payload.update(await asyncio.to_thread(self.understand, event["text"]))
        if event["text"]:
            self.openings[uid] = payload
        self.ctx.events.publish("transcript.opening", payload)

    async def _text(self, uid: str, event: dict[str, Any], final: bool) -> None:
        said = self.texts.get(uid, "")
        payload: dict[str, Any] = {"call_uid": uid, "partial": event["text"], "final": final}
        if final:
            said = self.texts[uid] = said + event["text"]
            if self.kb_for_text is not None:
                payload["suggestions"] = await asyncio.to_thread(self.kb_for_text, said)
        payload["text"] = said if final else said + event["text"]
        self.ctx.events.publish("transcript.partial", payload)


class SpeechRuntime:
    def __init__(self, ctx: CallCentreContext, settings: AsrSettings | None = None) -> None:
        self.ctx = ctx
        self.settings = settings or ctx.settings.callcenter.asr
        self.transcription = TranscriptionService(ctx, self.settings)
        runtime_dir = ctx.settings.resolve(ctx.settings.callcenter.runtime_dir)
        self.live_socket = live_socket_path(runtime_dir)
        self.live_log = runtime_dir / "asr-live.log"
        self._live: LiveProcess | None = None
        self._bridge: LiveBridge | None = None
        self._bridge_task: asyncio.Task[None] | None = None
        self.live_state: dict[str, Any] = {"live": "off", "live_reason": "not started"}
        self._remote: LiveBridge | None = None  # media hosts' live recognisers (split mode)
        self.live_hosts: dict[str, dict[str, Any]] = {}

    async def start(self) -> None:
        await self.transcription.start()
        await self._start_live()

    async def stop(self) -> None:
        if self._bridge_task is not None:
            self._bridge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await self._bridge_task
        if self._live is not None:
            await self._live.stop()
        await self.transcription.stop()

    def status(self) -> dict[str, Any]:
        live = dict(self.live_state)
        if self._bridge is not None and self._bridge.hello:
            live.update(
                {
                    k: self._bridge.hello[k]
                    for k in ("max_streams", "cpu_per_stream")
                    if k in self._bridge.hello
                }
            )
        if self._live is not None:
            live["live_restarts"] = self._live.restarts
            if not self._live.running:  # stopped: being started again, after-call transcripts meanwhile
                reason = f"live recogniser stopped, starting it again; see {self.live_log}"
                live.update({"live": "off", "opening": "off", "live_reason": reason})
        state = self.transcription.status()
        return {
            **state,
            "reason_zh": reason_zh(state.get("reason")),
            **live,
            "live_socket": str(self.live_socket),
            "live_hosts": self.live_hosts,
        }

    async def _start_live(self) -> None:
        if self.settings.live_streams == 0:
            self.live_state = {"live": "off", "live_reason": "live_streams = 0"}
            return
        vosk = self._live_model()
        opening = self._opening_args()
        if vosk is None and not opening:
            return
        self._bridge = LiveBridge(self.ctx, self._suggest, self._understand)
        live = LiveProcess(
            self.live_socket, self.live_log, vosk, opening, self.settings.live_streams, self._bridge.handle
        )
        if not await live.start():
            reason = f"live recogniser did not start; see {self.live_log}"
            self.live_state = {"live": "off", "live_reason": reason}
            log.error("live speech recognition off: see %s", self.live_log)
            return
        self._live = live
        self._bridge_task = asyncio.create_task(live.follow(), name="asr-live-bridge")
        self.live_state = {
            "live": "on" if vosk is not None else "off",
            "live_reason": self.live_state.get("live_reason") if vosk is None else None,
            "opening": "on" if opening else "off",
        }

    def opening_of(self, uid: str) -> dict[str, Any] | None:
        """The call's opening statement when it came already (from this machine or a media host)."""
        for bridge in (self._bridge, self._remote):
            if bridge is not None and uid in bridge.openings:
                return bridge.openings[uid]
        return None

    async def remote(self, host: str, event: dict[str, Any]) -> None:
        """An event of a media host's live recogniser (callcenter.asr.hostlive), published as ours."""
        if self._remote is None:
            self._remote = LiveBridge(self.ctx, self._suggest, self._understand)
        if event.get("type") == "hello":
            self.live_hosts[host] = {k: event.get(k) for k in ("max_streams", "cpu_per_stream", "opening")}
        await self._remote.handle(event)

    def _live_model(self) -> Path | None:
        """Live partial text is Vosk's: its model folder, or None with the reason in live_state."""
        if self.transcription.engine == "vosk":
            if self.transcription.on:
                return self.transcription.model_path
            reason = self.transcription.status()["reason"] or "no usable model"
            self.live_state = {"live": "off", "live_reason": reason}
            return None
        if self.settings.model_path is None:
            reason = "no Vosk model for live text ([callcenter.asr] model_path)"
            self.live_state = {"live": "off", "live_reason": reason}
            return None
        try:
            return check_model_folder(self.ctx.settings.resolve(self.settings.model_path))
        except ModelError as exc:
            self.live_state = {"live": "off", "live_reason": str(exc)}
            return None

    def _opening_args(self) -> list[str]:
        """The live process's Whisper arguments for opening statements (none: no opening statements)."""
        s = self.settings
        if s.engine != "whisper" or not s.opening_statement or not self.transcription.on:
            return []
        assert self.transcription.model_path is not None
        return opening_arguments(s, self.transcription.model_path)

    def _suggest(self, text: str) -> list[dict[str, Any]]:
        with self.ctx.unit_of_work() as session:
            return suggestions(self.transcription.knowledge_base(session), text)

    def _understand(self, text: str) -> dict[str, Any]:
        """Suggestions and routing for an opening statement, after the hotline-vocabulary correction."""
        return self.transcription.understand(text)


_current: SpeechRuntime | None = None


def reason_zh(reason: str | None) -> str | None:
    """The supervisor's page is in Chinese: a short Chinese reason, the English detail goes in a tooltip."""
    if reason is None:
        return None
    if "no model configured" in reason:
        return "未配置语音模型（config.toml [callcenter.asr] model_path）"
    if "is not installed" in reason:
        return "语音模型安装包缺失（请运行 make 安装）"
    if "SHA-256" in reason or "bytes," in reason:
        return "语音模型文件校验失败，已拒绝加载"
    if "not started" in reason:
        return "语音转写未启动"
    if "worker died" in reason:
        return "转写进程异常，正在重启"
    return "语音模型不可用"


async def start(ctx: CallCentreContext, settings: AsrSettings | None = None) -> SpeechRuntime:
    """Start speech to text for this process (idempotent: a second call returns the running one)."""
    global _current
    if _current is None:
        _current = SpeechRuntime(ctx, settings)
        await _current.start()
    return _current


async def stop() -> None:
    global _current
    if _current is not None:
        runtime, _current = _current, None
        await runtime.stop()


def current() -> SpeechRuntime | None:
    """This process's speech runtime, when started."""
    return _current


def opening_of(uid: str) -> dict[str, Any] | None:
    return _current.opening_of(uid) if _current is not None else None


def asr_status() -> dict[str, Any]:
    """{"transcription": "on"|"off", "reason", "model_path", "pending", "live": "on"|"off", "live_reason",
    "max_streams", ...}."""
    if _current is None:
        reason = "speech to text not started"
        return {
            "transcription": "off",
            "reason": reason,
            "reason_zh": reason_zh(reason),
            "model_path": None,
            "live": "off",
            "live_reason": reason,
        }
    return _current.status()
