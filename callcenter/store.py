"""The one recordings store, and the upload that fills it from the media hosts.

A worker on a media host of its own records into that host's disk. When the recording is finished the
media host (`callcenter.mediahost.Uploader`) sends it to the active controller: a header line
{"type": "upload", "uid", "day", "bytes", "sha256", "token"} and then exactly `bytes` bytes. The
controller writes it under recordings_dir/day/uid.wav, checks the SHA-256 of what arrived against the
header and against what the worker reported when the call ended, makes it durable, and only then
points the call record at it and says {"ok": true}; the media host deletes its copy after that only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import wave
from pathlib import Path
from typing import Any

from callcenter.context import CallCentreContext
from callcenter.protocol import encode
from callcenter.recording import wav_seconds
from callcenter.service import CallRecords
from core.clock import Clock

log = logging.getLogger("callcenter.store")

UID = re.compile(r"^[A-Za-z0-9._-]{1,40}$")
DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_BYTES = 2 * 1024**3  # a WAV's own limit
CHUNK = 1 << 16


class UploadRefused(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RecordingStore:
    def __init__(self, ctx: CallCentreContext, recordings_dir: Path, clock: Clock) -> None:
        self.ctx = ctx
        self.recordings_dir = recordings_dir
        self.clock = clock

    async def receive(
        self, header: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            reply = await self._receive(header, reader)
        except UploadRefused as exc:
            log.error("upload of %s refused: %s", header.get("uid"), exc)
            reply = {"ok": False, "status": exc.status, "detail": str(exc)}
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.warning("upload of %s broken off: %s", header.get("uid"), exc)
            return
        writer.write(encode({"type": "reply", **reply}))
        await writer.drain()

    async def _receive(self, header: dict[str, Any], reader: asyncio.StreamReader) -> dict[str, Any]:
        uid, day, sha256 = str(header.get("uid")), str(header.get("day")), str(header.get("sha256"))
        size = header.get("bytes")
        if not (UID.match(uid) and DAY.match(day) and SHA256.match(sha256)):
            raise UploadRefused(400, "bad upload header (uid, day or sha256)")
        if not isinstance(size, int) or not 0 < size <= MAX_BYTES:
            raise UploadRefused(400, f"bad size {size!r}")
        path = self.recordings_dir / day / f"{uid}.wav"
        partial = path.with_suffix(".wav.upload")
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(partial, "wb") as out:
            left = size
            while left:
                block = await reader.readexactly(min(CHUNK, left))
                digest.update(block)
                out.write(block)
                left -= len(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            partial.unlink(missing_ok=True)
            raise UploadRefused(422, f"checksum mismatch for {uid}: got {digest.hexdigest()}")
        os.replace(partial, path)
        await asyncio.to_thread(self._file, uid, path, sha256)
        return {"ok": True, "path": str(path)}

    def _file(self, uid: str, path: Path, sha256: str) -> None:
        with self.ctx.unit_of_work() as session:
            records = CallRecords(session, self.clock)
            record = records.find(uid)
            if record is None:
                path.unlink(missing_ok=True)
                raise UploadRefused(404, f"no call {uid}")
            try:  # the checksum was taken as the bytes came: only the length is read here
                seconds = round(wav_seconds(path), 3)
            except (wave.Error, EOFError) as exc:
                path.unlink(missing_ok=True)
                raise UploadRefused(422, f"{uid}: not a WAV file ({exc})") from None
            if record.recording_sha256 not in (None, sha256):
                path.unlink(missing_ok=True)
                raise UploadRefused(
                    409, f"{uid}: the worker reported {record.recording_sha256}, got {sha256}"
                )
            size = path.stat().st_size
            record.recording_path = str(path)
            record.recording_bytes = size
            record.recording_sha256 = sha256
            record.recording_seconds = seconds
            records.event(record, "recording_stored", {"sha256": sha256, "bytes": size})
