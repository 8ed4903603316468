"""Live speech on a media host (split mode): the host's own live recogniser, and its events sent on to
the active controller.

The citizen's audio stays on the machine that carries the call: the host's workers stream it to a
live recogniser started here (`callcenter.asr.live`, the same process as on the controller's machine),
and only its event lines (partials, finals, the opening statement) travel. They go to the active
controller over a `speech` channel of its control listener; the controller adds the knowledge-base
suggestions and the routing, and publishes them to every console like its own
(`SpeechRuntime.remote`). Each event is numbered and kept here until the controller acknowledges
it, after publishing: when no controller answers (a takeover), or one dies with events read but not
yet published, they are sent again once one answers, and a controller publishes each number once.
The queue is bounded; partial text is dropped first, as the next one replaces it. A live recogniser
that stops is started again (`LiveProcess`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callcenter.asr.client import live_socket_path
from callcenter.asr.runtime import LiveProcess, opening_arguments
from callcenter.asr.service import check_engine_folder, engine_folder
from callcenter.asr.transcriber import ModelError
from callcenter.protocol import encode
from callcenter.settings import AsrSettings

log = logging.getLogger("callcenter.asr.hostlive")

PENDING_LIMIT = 2000  # event lines kept until a controller acknowledges them
RETRY_SECONDS = 0.5
CONNECT_TIMEOUT = 3.0
ACK_SECONDS = 10.0  # events written and none acknowledged for this long: the link is dead, take another


def host_models(settings: AsrSettings, resolve: Callable[[Path], Path]) -> tuple[Path | None, list[str], str]:
    """The Vosk model for partial text and the Whisper arguments for opening statements on this host,
    each checked here (a missing or changed model is refused with its reason), and why either is off."""
    reasons: list[str] = []
    vosk: Path | None = None
    if settings.model_path is not None:
        folder = resolve(settings.model_path)
        try:
            check_engine_folder("vosk", settings, folder)
            vosk = folder
        except ModelError as exc:
            reasons.append(f"live text off: {exc}")
    opening: list[str] = []
    if settings.engine == "whisper" and settings.opening_statement:
        whisper = engine_folder(resolve, settings)
        assert whisper is not None
        try:
            check_engine_folder("whisper", settings, whisper)
            opening = opening_arguments(settings, whisper)
        except ModelError as exc:
            reasons.append(f"opening statements off: {exc}")
    return vosk, opening, "; ".join(reasons)


class HostLiveSpeech:
    def __init__(
        self,
        settings: AsrSettings,
        resolve: Callable[[Path], Path],
        controllers: list[str],
        token: str,
        runtime_dir: Path,
        host: str,
    ) -> None:
        self.settings = settings
        self.resolve = resolve
        self.controllers = controllers
        self.token = token
        self.socket = live_socket_path(runtime_dir)
        self.log_path = runtime_dir / "asr-live.log"
        self.host = host
        # a new number series for each start of this host: the controller tells its events apart
        self.epoch = uuid.uuid4().hex[:12]
        self.pending: deque[dict[str, Any]] = deque()  # numbered events not yet acknowledged
        self.sent = 0  # acknowledged
        self._numbered = 0
        self._live: LiveProcess | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    @property
    def state(self) -> str:
        return "on" if self._live is not None and self._live.running else "off"

    async def start(self) -> None:
        if self.settings.live_streams == 0:
            log.info("live speech off on this host: live_streams = 0")
            return
        vosk, opening, reason = await asyncio.to_thread(host_models, self.settings, self.resolve)
        if reason:
            log.error("%s", reason)
        if vosk is None and not opening:
            return
        live = LiveProcess(self.socket, self.log_path, vosk, opening, self.settings.live_streams, self._heard)
        if not await live.start():
            log.error("live recogniser did not start; see %s", self.log_path)
            return
        self._live = live
        self._tasks = [
            asyncio.create_task(live.follow(), name="hostlive-listen"),
            asyncio.create_task(self.deliver(), name="hostlive-forward"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._live is not None:
            await self._live.stop()

    def keep(self, event: dict[str, Any]) -> None:
        """Number an event and queue it for the controller; when full, partial text goes first, then
        the oldest."""
        if len(self.pending) >= PENDING_LIMIT:
            partial = next((e for e in self.pending if e.get("type") == "partial"), None)
            if partial is not None:
                self.pending.remove(partial)
            else:
                self.pending.popleft()
        self._numbered += 1
        self.pending.append({**event, "seq": self._numbered})
        self._wake.set()

    def acknowledged(self, seq: int) -> None:
        """The controller published every event up to `seq`."""
        while self.pending and int(self.pending[0]["seq"]) <= seq:
            self.pending.popleft()
            self.sent += 1

    async def _heard(self, event: dict[str, Any]) -> None:
        self.keep(event)

    async def deliver(self) -> None:
        """Send queued events to the active controller, again on the next link if one goes away."""
        while True:
            link = await self._connect()
            if link is None:
                await asyncio.sleep(RETRY_SECONDS)
                continue
            reader, writer = link
            acks = asyncio.create_task(self._read_acks(reader))
            before = self.sent
            try:
                await self._send(writer, acks)
            except OSError as exc:
                log.warning("speech events to the controller interrupted: %s", exc)
            finally:
                acks.cancel()
                writer.close()
            if self.sent == before:  # a link that took nothing (refused, closed at once): not in a hot loop
                await asyncio.sleep(RETRY_SECONDS)

    async def _send(self, writer: asyncio.StreamWriter, acks: asyncio.Task[None]) -> None:
        written = 0  # on a new link everything not acknowledged goes again
        while not acks.done():
            for event in list(self.pending):
                if int(event["seq"]) > written:
                    writer.write(encode(event))
                    written = int(event["seq"])
            await writer.drain()
            self._wake.clear()
            waiting = asyncio.create_task(self._wake.wait())
            before = self.sent
            done, _ = await asyncio.wait({waiting, acks}, timeout=ACK_SECONDS, return_when="FIRST_COMPLETED")
            waiting.cancel()
            if not done and self.pending and self.sent == before:  # a controller cut off, not closed
                raise OSError(f"no acknowledgement from the controller in {ACK_SECONDS:.0f} s")

    async def _read_acks(self, reader: asyncio.StreamReader) -> None:
        """Acknowledgements until the controller closes the link (or dies)."""
        with contextlib.suppress(OSError):
            while line := await reader.readline():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    self.acknowledged(int(json.loads(line)["ack"]))

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A speech channel to the first controller that takes it (only the active one listens)."""
        hello = {"type": "speech", "token": self.token, "media_host": self.host, "epoch": self.epoch}
        for address in self.controllers:
            host, _, port = address.rpartition(":")
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, int(port)), CONNECT_TIMEOUT
                )
                writer.write(encode(hello))
                await writer.drain()
                return reader, writer
            except (OSError, TimeoutError):
                continue
        return None
