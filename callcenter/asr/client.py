"""What a media worker uses to stream the citizen's audio to the live recogniser (callcenter.asr.live).

Light on purpose: standard library only (the worker is a pjsua2 process and must stay lean), and never
blocking: the socket is non-blocking, so when the recogniser falls behind and the socket buffer is full,
frames are dropped and counted instead of stalling the worker's media thread.

Wire format (one Unix stream connection per call): a JSON header line
`{"call": "<uid>", "rate": 8000}\\n`, then raw 16-bit little-endian mono PCM until the worker closes
its side. The recogniser answers one JSON line, `{"ok": true}` or `{"ok": false, "reason": "busy",
"message": ...}`, and closes the connection when it refuses.
"""

from __future__ import annotations

import errno
import hashlib
import json
import socket
import tempfile
from pathlib import Path

UNIX_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin
SEND_BUFFER = 64 * 1024  # about 4 s of 8 kHz audio: room for a recogniser hiccup, then frames drop


def live_socket_path(runtime_dir: Path) -> Path:
    """The live recogniser's socket: in the call centre's runtime folder, or /tmp when that is too long."""
    path = Path(runtime_dir) / "asr-live.sock"
    if len(str(path)) < UNIX_PATH_MAX:
        return path
    digest = hashlib.sha1(str(runtime_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"hotline-asr-{digest}.sock"


class LiveClient:
    """One call's audio stream. `send(pcm)` from the media thread; `close()` when the citizen hangs up.

    `state`: "streaming", "refused" (the recogniser is at its stream limit: after-call transcript only),
    "unavailable" (no recogniser running) or "closed". Counters: `sent_bytes`, `dropped_frames`,
    `dropped_bytes`."""

    def __init__(self, socket_path: Path | str, call_uid: str, rate: int = 8000) -> None:
        self.call_uid, self.rate = call_uid, rate
        self.state = "unavailable"
        self.reason: str | None = None
        self.sent_bytes = self.dropped_frames = self.dropped_bytes = 0
        self._pending = b""  # the unsent tail of a frame half-written: must go first to keep samples aligned
        self._reply = b""
        self._sock: socket.socket | None = None
        self._connect(str(socket_path))

    def _connect(self, path: str) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        sock.setblocking(False)
        try:
            sock.connect(path)  # a Unix socket connects at once or fails at once; never waits
        except OSError as exc:
            sock.close()
            self.reason = f"live recogniser not reachable at {path}: {exc.strerror or exc}"
            return
        self._sock, self.state = sock, "streaming"
        # The header goes out at once (a fresh socket's buffer always has room), so the recogniser
        # admits or refuses the call before the first frame.
        self._pending = json.dumps({"call": self.call_uid, "rate": self.rate}).encode() + b"\n"
        self._write_pending()

    def send(self, pcm: bytes) -> bool:
        """Queue one frame; False when it was dropped (or the stream is not live)."""
        if self.state != "streaming" or self._sock is None:
            return False
        self._read_reply()
        if self._pending and not self._write_pending():
            return self._drop(pcm)
        if self.state != "streaming":
            return False
        try:
            written = self._sock.send(pcm)
        except BlockingIOError:
            return self._drop(pcm)
        except OSError as exc:
            self._lost(exc)
            return False
        self.sent_bytes += len(pcm)  # accepted whole: an unsent tail goes out before any later frame
        self._pending = pcm[written:]
        return True

    def close(self) -> None:
        if self._sock is not None:
            if self.state == "streaming":
                self._write_pending()
            self._sock.close()
            self._sock = None
        if self.state == "streaming":
            self.state = "closed"

    def __enter__(self) -> LiveClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, object]:
        return {
            "state": self.state,
            "reason": self.reason,
            "sent_bytes": self.sent_bytes,
            "dropped_frames": self.dropped_frames,
            "dropped_bytes": self.dropped_bytes,
        }

    def _drop(self, pcm: bytes) -> bool:
        self.dropped_frames += 1
        self.dropped_bytes += len(pcm)
        return False

    def _write_pending(self) -> bool:
        assert self._sock is not None
        try:
            written = self._sock.send(self._pending)
        except BlockingIOError:
            return False
        except OSError as exc:
            self._lost(exc)
            return False
        self._pending = self._pending[written:]
        return not self._pending

    def _read_reply(self) -> None:
        """Pick up the recogniser's answer if it has come (never waits for it)."""
        assert self._sock is not None
        try:
            data = self._sock.recv(4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._refused_or_lost()
            return
        self._reply += data
        if b"\n" in self._reply:
            line, _, self._reply = self._reply.partition(b"\n")
            answer = json.loads(line or b"{}")
            if not answer.get("ok", False):
                self.state, self.reason = "refused", answer.get("message", "refused")

    def _refused_or_lost(self) -> None:
        if self.state == "streaming":
            self.state, self.reason = "unavailable", "the live recogniser closed the stream"

    def _lost(self, exc: OSError) -> None:
        if exc.errno in (errno.EPIPE, errno.ECONNRESET) and self._reply_says_refused():
            return
        if self.state == "streaming":
            self.state, self.reason = "unavailable", f"live recogniser connection lost: {exc.strerror or exc}"

    def _reply_says_refused(self) -> bool:
        """After a broken pipe, the refusal line may still be waiting in the receive buffer."""
        assert self._sock is not None
        try:
            self._reply += self._sock.recv(4096)
        except OSError:
            return False
        line = self._reply.partition(b"\n")[0]
        if line and not json.loads(line).get("ok", False):
            self.state, self.reason = "refused", json.loads(line).get("message", "refused")
            return True
        return False
