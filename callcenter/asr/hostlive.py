"""Live speech on a media host (split mode): the host's own live recogniser, and its events sent on to
the active controller.

The citizen's audio stays on the machine that carries the call: the host's workers stream it to a
live recogniser started here (`callcenter.asr.live`, the same process as on the controller's machine),
and only its event lines (partials, finals, the opening statement) travel. They go to the active
controller over a `speech` channel of its control listener; the controller adds the knowledge-base
suggestions and the routing, and publishes them to every console like its own
(`SpeechRuntime.remote`). When no controller answers (a takeover), events wait here in a bounded
queue and follow once one does; partial text is dropped first, as the next one replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callcenter.asr.client import live_socket_path
from callcenter.asr.runtime import end_process, opening_arguments, spawn_live, subscription
from callcenter.asr.service import check_engine_folder, engine_folder
from callcenter.asr.transcriber import ModelError
from callcenter.protocol import encode
from callcenter.settings import AsrSettings

log = logging.getLogger("callcenter.asr.hostlive")

PENDING_LIMIT = 2000  # event lines kept while no controller answers
RETRY_SECONDS = 0.5
CONNECT_TIMEOUT = 3.0


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
        self.pending: deque[dict[str, Any]] = deque()
        self.sent = 0
        self.state = "off"
        self._process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    async def start(self) -> None:
        if self.settings.live_streams == 0:
            log.info("live speech off on this host: live_streams = 0")
            return
        vosk, opening, reason = await asyncio.to_thread(host_models, self.settings, self.resolve)
        if reason:
            log.error("%s", reason)
        if vosk is None and not opening:
            return
        self._process = await spawn_live(
            self.socket, self.log_path, vosk, opening, self.settings.live_streams
        )
        if self._process is None:
            log.error("live recogniser did not start; see %s", self.log_path)
            return
        self.state = "on"
        self._tasks = [
            asyncio.create_task(self._listen(), name="hostlive-listen"),
            asyncio.create_task(self._forward(), name="hostlive-forward"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._process is not None:
            await end_process(self._process)

    def keep(self, event: dict[str, Any]) -> None:
        """Queue an event for the controller; when full, partial text goes first, then the oldest."""
        if len(self.pending) >= PENDING_LIMIT:
            partial = next((e for e in self.pending if e.get("type") == "partial"), None)
            if partial is not None:
                self.pending.remove(partial)
            else:
                self.pending.popleft()
        self.pending.append(event)
        self._wake.set()

    async def _listen(self) -> None:
        try:
            async with subscription(self.socket) as reader:
                while line := await reader.readline():
                    with contextlib.suppress(ValueError):
                        self.keep(json.loads(line))
        except OSError as exc:
            log.error("live recogniser connection failed: %s", exc)
        self.state = "off"
        log.error(
            "live recogniser stopped: calls on this host get the after-call transcript; see %s", self.log_path
        )

    async def _forward(self) -> None:
        writer: asyncio.StreamWriter | None = None
        while True:
            if not self.pending:
                self._wake.clear()
                await self._wake.wait()
            if writer is None:
                writer = await self._connect()
                if writer is None:
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
            try:
                while self.pending:
                    writer.write(encode(self.pending[0]))
                    await writer.drain()
                    self.pending.popleft()
                    self.sent += 1
            except OSError as exc:
                log.warning("speech events to the controller interrupted: %s", exc)
                writer.close()
                writer = None

    async def _connect(self) -> asyncio.StreamWriter | None:
        """A speech channel to the first controller that takes it (only the active one listens)."""
        hello = {"type": "speech", "token": self.token, "media_host": self.host}
        for address in self.controllers:
            host, _, port = address.rpartition(":")
            try:
                _reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, int(port)), CONNECT_TIMEOUT
                )
                writer.write(encode(hello))
                await writer.drain()
                return writer
            except (OSError, TimeoutError):
                continue
        return None
