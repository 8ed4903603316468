"""The live recogniser: a process of its own that turns the citizens' audio into text while they talk.

    python -m callcenter.asr.live --socket PATH [--model VOSK] [--opening-model WHISPER] --max-streams N

Media workers connect one Unix-socket stream per call (`callcenter.asr.client.LiveClient`: a JSON
header line, then 16-bit PCM). Each stream gets its own Vosk recogniser and a thread; Vosk releases
the GIL while decoding, so streams spread over the cores. Listeners (the bridge in the web process)
connect with the header `{"subscribe": true}` and receive one JSON line per event:

    {"type": "hello", "max_streams": 6, "streams": 0, "cpu_per_stream": 0.12, ...}
    {"type": "started", "call": uid, "streams": 3}
    {"type": "partial", "call": uid, "text": "我想问一下", "at": 2.4}     (only when the text changed)
    {"type": "final", "call": uid, "text": "我想问一下公积金", "words": [...], "at": 3.1}
    {"type": "ended", "call": uid, "seconds": 93.2}
    {"type": "refused", "call": uid, "reason": "busy", "message": "..."}
    {"type": "opening", "call": uid, "text": "...", "delay_seconds": 1.4, ...}  (callcenter.asr.opening)

Partial text needs a Vosk model (`--model`); the opening statement needs a Whisper model
(`--opening-model`): the caller's first statement, transcribed as soon as they pause. Either or both.

The stream limit is the smaller of `--max-streams` and what a start-up measurement says this machine
keeps up with: decoding a few seconds of test audio gives the CPU one stream costs per second of audio
(a real-time factor), and the limit is the usable cores divided by it. Calls beyond it are refused
and get the after-call transcript only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from callcenter.asr.opening import OpeningStatements, Statement
from callcenter.asr.transcriber import ModelError, Segment, SpeechToText, Transcriber
from callcenter.lifeline import follow_parent

log = logging.getLogger("callcenter.asr.live")

CHUNK_SECONDS = 0.2  # audio per decoder call: partials at most this late, plus the decoder's own lag
HEADER_TIMEOUT = 5.0
CPU_SHARE = 0.75  # of the machine's cores for live decoding; the rest for the web, the DB, the workers
LISTENER_QUEUE = 2000


def calibration_audio(rate: int = 8000, seconds: float = 4.0, seed: int = 7) -> np.ndarray:
    """Speech-like test audio: bursts of harmonics and noise with short pauses (no file needed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    voiced = (
        np.sin(2 * np.pi * 140 * t) + 0.5 * np.sin(2 * np.pi * 420 * t) + 0.3 * rng.standard_normal(len(t))
    )
    envelope = (np.sin(2 * np.pi * 1.5 * t) > -0.3).astype(float)
    return (voiced * envelope * 6000).astype(np.int16)


def measure_cpu_per_stream(transcriber: SpeechToText, rate: int = 8000) -> float:
    """CPU seconds one live stream costs per second of audio (resampling and decoding), on this machine."""
    audio = calibration_audio(rate)
    stream = transcriber.stream(rate)
    step = int(rate * CHUNK_SECONDS)
    started = time.thread_time()
    for begin in range(0, len(audio), step):
        stream.accept_samples(audio[begin : begin + step])
    stream.finish()
    return (time.thread_time() - started) / (len(audio) / rate)


def capacity(cpu_per_stream: float, cores: int | None = None) -> int:
    usable = (cores or os.cpu_count() or 1) * CPU_SHARE
    return max(1, int(usable / max(cpu_per_stream, 1e-4)))


class Listeners:
    """Subscribers' queues; a slow listener loses its oldest lines, never slows a stream."""

    def __init__(self) -> None:
        self._queues: list[queue.Queue[bytes]] = []
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False).encode() + b"\n"
        with self._lock:
            targets = list(self._queues)
        for q in targets:
            with contextlib.suppress(queue.Empty, queue.Full):
                if q.full():
                    q.get_nowait()
                q.put_nowait(line)

    def serve(self, conn: socket.socket, hello: dict[str, Any]) -> None:
        q: queue.Queue[bytes] = queue.Queue(LISTENER_QUEUE)
        q.put_nowait(json.dumps(hello).encode() + b"\n")
        with self._lock:
            self._queues.append(q)
        try:
            while True:
                conn.sendall(q.get())
        except OSError:
            pass  # the listener went away
        finally:
            with self._lock:
                self._queues.remove(q)


# Builds the opening-statement transcriber around the server's event sink.
OpeningFactory = Callable[[Callable[[dict[str, Any]], None]], OpeningStatements]


class LiveServer:
    def __init__(
        self,
        transcriber: SpeechToText | None,
        socket_path: Path,
        max_streams: int,
        opening: OpeningFactory | None = None,
    ) -> None:
        self.transcriber = transcriber
        self.socket_path = socket_path
        self.cpu_per_stream = measure_cpu_per_stream(transcriber) if transcriber is not None else 0.0
        self.max_streams = min(max_streams, capacity(self.cpu_per_stream)) if transcriber else max_streams
        self.listeners = Listeners()
        self.opening = opening(self.listeners.emit) if opening is not None else None
        self.streams: set[str] = set()
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self.refused = 0

    def info(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "max_streams": self.max_streams,
            "streams": len(self.streams),
            "cpu_per_stream": round(self.cpu_per_stream, 5),
            "cores": os.cpu_count(),
            "model_path": str(self.transcriber.model_path) if self.transcriber else None,
            "model_rate": self.transcriber.model_rate if self.transcriber else None,
            "opening": self.opening is not None,
        }

    def bind(self) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.socket_path))
        server.listen(128)
        self._server = server

    def serve_forever(self) -> None:
        assert self._server is not None
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed by shutdown()
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def shutdown(self) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept()
            self._server.close()
            self._server = None
        self.socket_path.unlink(missing_ok=True)

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            header, rest = _read_header(conn)
            if header is None:
                return
            if header.get("subscribe"):
                self.listeners.serve(conn, self.info())
                return
            uid, rate = str(header.get("call", "")), int(header.get("rate", 8000))
            if not self._admit(conn, uid):
                return
            try:
                self._stream(conn, uid, rate, rest)
            finally:
                with self._lock:
                    self.streams.discard(uid)

    def _admit(self, conn: socket.socket, uid: str) -> bool:
        with self._lock:
            busy = len(self.streams) >= self.max_streams
            if not busy:
                self.streams.add(uid)
            count = len(self.streams)
        if busy:
            self.refused += 1
            message = (
                f"live recognition is at its limit of {self.max_streams} streams: after-call transcript only"
            )
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"ok": False, "reason": "busy", "message": message}).encode() + b"\n")
            self.listeners.emit({"type": "refused", "call": uid, "reason": "busy", "message": message})
            return False
        with contextlib.suppress(OSError):
            conn.sendall(b'{"ok": true}\n')
        self.listeners.emit({"type": "started", "call": uid, "streams": count})
        return True

    def _stream(self, conn: socket.socket, uid: str, rate: int, first: bytes) -> None:
        stream = self.transcriber.stream(rate) if self.transcriber is not None else None
        opening = self.opening.detector(rate) if self.opening is not None else None
        chunk = int(rate * CHUNK_SECONDS) * 2
        buffer, last_partial, received = bytearray(first), "", 0
        while True:
            data = _recv(conn)
            if data:
                buffer += data
            if len(buffer) >= chunk or (not data and buffer):
                usable = len(buffer) - len(buffer) % 2
                samples = np.frombuffer(bytes(buffer[:usable]), dtype="<i2")
                received += len(samples)
                if stream is not None:
                    result = stream.accept_samples(samples)
                    last_partial = self._emit(uid, result, last_partial, stream.seconds)
                if opening is not None:
                    self._opening(uid, opening.accept(samples))
                del buffer[:usable]
            if not data:
                break
        if stream is not None:
            self._emit(uid, stream.finish(), last_partial, stream.seconds)
        if opening is not None:
            self._opening(uid, opening.finish())
        with self._lock:  # the slot is free before anyone hears the stream ended (the next call may come)
            self.streams.discard(uid)
        self.listeners.emit({"type": "ended", "call": uid, "seconds": round(received / rate, 3)})

    def _opening(self, uid: str, statement: Statement | None) -> None:
        if statement is not None and self.opening is not None:
            self.opening.submit(uid, statement)

    def _emit(self, uid: str, result: str | Segment, last_partial: str, at: float) -> str:
        if isinstance(result, Segment):
            if result.text:
                words = [vars(w) for w in result.words]
                self.listeners.emit(
                    {"type": "final", "call": uid, "text": result.text, "words": words, "at": round(at, 3)}
                )
            return ""
        if result != last_partial and result:
            self.listeners.emit({"type": "partial", "call": uid, "text": result, "at": round(at, 3)})
        return result


def _recv(conn: socket.socket) -> bytes:
    try:
        return conn.recv(65536)
    except OSError:
        return b""


def _read_header(conn: socket.socket) -> tuple[dict[str, Any] | None, bytes]:
    """The JSON header line and whatever audio came with it."""
    conn.settimeout(HEADER_TIMEOUT)
    data = b""
    try:
        while b"\n" not in data and len(data) < 4096:
            more = conn.recv(4096)
            if not more:
                return None, b""
            data += more
        line, _, rest = data.partition(b"\n")
        header = json.loads(line)
    except (OSError, ValueError):
        return None, b""
    conn.settimeout(None)
    return (header if isinstance(header, dict) else None), rest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Live speech recogniser for the call centre.")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="Vosk model folder: partial text while the caller talks")
    parser.add_argument("--opening-model", type=Path, help="faster-whisper folder: the opening statement")
    parser.add_argument("--opening-packaged", action="store_true", help="check the packaged model's SHA-256")
    parser.add_argument("--opening-workers", type=int, default=1)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-streams", type=int, default=24)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    follow_parent()  # `hotline serve` killed outright: this process must not live on without it
    if args.model is None and args.opening_model is None:
        log.error("live recognition off: neither --model nor --opening-model given")
        return 2
    try:
        transcriber = Transcriber(args.model) if args.model is not None else None
        opening = _opening_factory(args) if args.opening_model is not None else None
    except ModelError as exc:
        log.error("live recognition off: %s", exc)
        return 2
    server = LiveServer(transcriber, args.socket, args.max_streams, opening)
    server.bind()
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    log.info(
        "live recogniser on %s: model %s, opening statements %s, %.4f CPU s per audio s, limit %d streams",
        args.socket,
        args.model,
        args.opening_model,
        server.cpu_per_stream,
        server.max_streams,
    )
    print(json.dumps(server.info()), flush=True)  # the parent reads this line: ready
    server.serve_forever()
    return 0


def _opening_factory(args: argparse.Namespace) -> OpeningFactory:
    from callcenter.asr.whisper import WhisperTranscriber

    whisper = WhisperTranscriber(
        args.opening_model, beam_size=args.beam, threads=args.threads, packaged=args.opening_packaged
    )
    return lambda emit: OpeningStatements(whisper, args.opening_workers, emit)


if __name__ == "__main__":
    sys.exit(main())
