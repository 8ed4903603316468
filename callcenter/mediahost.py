"""`hotline media-host --name NAME`: the media workers of one machine, in split mode.

It keeps the host's workers running (a dead one is replaced on the same ports, as on the controller's
machine), makes the host's own copies of the prompts, and sends every finished recording to the
active controller, which files it in the one recordings store (`callcenter.store`). Its own live
recogniser turns the citizens' speech into text here and sends the text on (`callcenter.asr.hostlive`).
The workers find the active controller themselves among `[callcenter] controllers` and keep their
calls through a takeover. A recording leaves this disk only once the store has confirmed its
checksum; until then it is retried, also after a restart of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callcenter.asr.hostlive import HostLiveSpeech
from callcenter.pool import WorkerPool
from callcenter.prompts import ensure_prompts
from callcenter.protocol import ProtocolError, decode, encode
from callcenter.recording import sha256_of
from callcenter.settings import CallCenterSettings, MediaHost

log = logging.getLogger("callcenter.mediahost")

UPLOAD_EVERY_SECONDS = 1.0
UPLOAD_TIMEOUT_SECONDS = 30.0


def finished_recordings(recordings_dir: Path) -> list[Path]:
    """Recordings ready to go: joined and renamed into a day folder (parts and partial files are not)."""
    if not recordings_dir.exists():
        return []
    return sorted(p for p in recordings_dir.glob("????-??-??/*.wav") if p.is_file())


class Uploader:
    """Sends finished recordings to the first controller that takes them (the standby refuses the
    connection), and deletes each only after the store confirmed it."""

    def __init__(self, controllers: list[str], token: str, recordings_dir: Path, host: str) -> None:
        self.controllers = controllers
        self.token = token
        self.recordings_dir = recordings_dir
        self.host = host
        self.uploaded = 0
        self.refused: dict[str, str] = {}

    def upload_pending(self) -> int:
        sent = 0
        for path in finished_recordings(self.recordings_dir):
            if path.name in self.refused:
                continue  # refused for good (e.g. no such call): kept here, said in the log once
            try:
                self.upload(path)
            except OSError as exc:
                log.warning("recording %s not sent yet: %s", path.name, exc)
                break  # no controller now: try again on the next round
            except UploadRefusedHere as exc:
                self.refused[path.name] = str(exc)
                log.error("recording %s refused by the store (kept on this host): %s", path.name, exc)
                continue
            path.unlink()
            sent += 1
        self.uploaded += sent
        return sent

    def upload(self, path: Path) -> None:
        header = {
            "type": "upload",
            "token": self.token,
            "uid": path.stem,
            "day": path.parent.name,
            "bytes": path.stat().st_size,
            "sha256": sha256_of(path),
            "media_host": self.host,
        }
        last: OSError | None = None
        for address in self.controllers:
            host, _, port = address.rpartition(":")
            try:
                reply = self._send(host, int(port), header, path)
            except OSError as exc:
                last = exc
                continue
            if reply.get("ok"):
                return
            raise UploadRefusedHere(str(reply.get("detail")))
        raise last or OSError("no controller configured ([callcenter] controllers)")

    def _send(self, host: str, port: int, header: dict[str, Any], path: Path) -> dict[str, Any]:
        with socket.create_connection((host, port), timeout=UPLOAD_TIMEOUT_SECONDS) as sock:
            sock.sendall(encode(header))
            with open(path, "rb") as handle:
                sock.sendfile(handle)
            line = sock.makefile("rb").readline()
        try:
            return decode(line)
        except ProtocolError as exc:
            raise OSError(f"no answer to the upload: {exc}") from None


class UploadRefusedHere(Exception):
    pass


class MediaHostProcess:
    def __init__(
        self,
        cc: CallCenterSettings,
        host: MediaHost,
        token: str,
        runtime_dir: Path,
        recordings_dir: Path,
        prompts_dir: Path,
        timezone: str,
        resolve: Callable[[Path], Path] = Path,
    ) -> None:
        self.cc = cc
        self.host = host
        self.token = token
        self.runtime_dir = runtime_dir
        self.recordings_dir = recordings_dir
        self.prompts_dir = prompts_dir
        self.timezone = timezone
        self.uploader = Uploader(cc.controllers, token, recordings_dir, host.name)
        self.speech = HostLiveSpeech(cc.asr, resolve, cc.controllers, token, runtime_dir, host.name)
        self.pool: WorkerPool | None = None

    async def run(self, stop: asyncio.Event) -> int:
        if not self.cc.controllers:
            raise ValueError("[callcenter] controllers is empty: the workers would not know where to report")
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(ensure_prompts, self.prompts_dir)
        await self.speech.start()  # before the workers: they stream to its socket
        os.environ["HOTLINE_CONTROL_TOKEN"] = self.token  # the workers' hello carries it
        self.pool = WorkerPool(
            self.cc,
            self.runtime_dir / "unused.sock",
            self.runtime_dir,
            self.recordings_dir,
            self._worker_died,
            timezone=self.timezone,
            host=self.host,
            prompts_dir=self.prompts_dir,
        )
        await self.pool.start()
        log.info(
            "media host %s: %d workers at %s, reporting to %s",
            self.host.name, self.host.workers, self.host.address, ", ".join(self.cc.controllers),
        )  # fmt: skip
        try:
            while not stop.is_set():
                await asyncio.to_thread(self.uploader.upload_pending)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), UPLOAD_EVERY_SECONDS)
        finally:
            await self.pool.stop()
            await self.speech.stop()
            with contextlib.suppress(OSError):  # what the workers wrote on their way out
                await asyncio.to_thread(self.uploader.upload_pending)
        return 0

    def _worker_died(self, name: str, cause: str) -> None:
        # The controller sees the worker's link end and closes its call; here it is only replaced.
        log.error("%s: %s", name, cause)
