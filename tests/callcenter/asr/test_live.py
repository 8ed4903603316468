"""Live recognition: audio streamed over the Unix socket comes back as partial and final text, the
stream limit refuses the next call, the client never blocks a media worker, and the runtime turns the
recogniser's lines into `transcript.partial` events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from callcenter.asr.client import LiveClient
from callcenter.asr.live import LiveServer, capacity
from callcenter.asr.runtime import SpeechRuntime
from callcenter.asr.transcriber import Transcriber
from callcenter.settings import AsrSettings
from hotline.context import HotlineContext
from tests.callcenter.asr.conftest import silence
from tests.conftest import make_settings


def short_socket(tmp_path: Path, name: str) -> Path:
    """Unix socket paths must stay under ~100 bytes; pytest's tmp paths can be longer."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="asr-")) / name


@contextlib.contextmanager
def serving(server: LiveServer) -> Iterator[LiveServer]:
    """The server bound and accepting on a thread, shut down afterwards."""
    server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def live_server(tiny_model: Path, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(Transcriber(tiny_model), short_socket(tmp_path, "live.sock"), max_streams=1)
    with serving(server):
        yield server


class Listener:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.sendall(b'{"subscribe": true}\n')
        self.events: list[dict] = []
        self._file = self.sock.makefile("rb")
        self.events.append(json.loads(self._file.readline()))  # hello: subscribed from here on
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._file:
            self.events.append(json.loads(line))

    def wait_for(self, kind: str, call: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("type") == kind and event.get("call") == call:
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no {kind} event for {call}: {self.events}")


def stream_audio(client: LiveClient, audio: np.ndarray, pace: float = 0.0) -> None:
    for begin in range(0, len(audio), 160):  # 20 ms frames
        client.send(audio[begin : begin + 160].tobytes())
        if pace:
            time.sleep(pace)


def test_audio_in_partial_text_out_and_the_limit_refuses_the_next_stream(
    live_server: LiveServer, speech: dict
) -> None:
    listener = Listener(live_server.socket_path)
    assert listener.events[0]["max_streams"] == 1
    audio = np.concatenate([speech[8000], silence(8000, 1.5)])
    first = LiveClient(live_server.socket_path, "call-1")
    listener.wait_for("started", "call-1")
    second = LiveClient(live_server.socket_path, "call-2")
    refused = listener.wait_for("refused", "call-2")
    assert "after-call transcript only" in refused["message"]
    stream_audio(first, audio, pace=0.0002)
    stream_audio(second, audio[:1600])
    assert second.state == "refused" and "limit of 1" in (second.reason or "")
    partial = listener.wait_for("partial", "call-1")
    assert partial["text"] and " " not in partial["text"]
    final = listener.wait_for("final", "call-1")
    assert final["text"] and final["words"][0].keys() == {"word", "start", "end", "conf"}
    first.close()
    assert listener.wait_for("ended", "call-1")["seconds"] == pytest.approx(len(audio) / 8000, abs=0.01)
    assert first.stats()["dropped_frames"] == 0
    # The slot is free again once the first call ended.
    third = LiveClient(live_server.socket_path, "call-3")
    listener.wait_for("started", "call-3")
    third.close()


def test_silence_streams_no_text(live_server: LiveServer) -> None:
    listener = Listener(live_server.socket_path)
    with LiveClient(live_server.socket_path, "quiet") as client:
        stream_audio(client, silence(8000, 2))
    listener.wait_for("ended", "quiet")
    assert not [e for e in listener.events if e.get("call") == "quiet" and e["type"] in ("partial", "final")]


def test_the_client_drops_frames_instead_of_blocking(tmp_path: Path) -> None:
    path = short_socket(tmp_path, "deaf.sock")
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deaf.bind(str(path))
    deaf.listen(1)  # accepts the connection, never reads: a recogniser that fell far behind
    client = LiveClient(path, "call-x")
    frame = b"\x01\x02" * 160
    started = time.perf_counter()
    results = [client.send(frame) for _ in range(5000)]  # 100 s of audio
    elapsed = time.perf_counter() - started
    assert client.state == "streaming"
    assert not all(results) and client.dropped_frames == results.count(False) > 0
    assert client.sent_bytes + client.dropped_bytes == 5000 * len(frame)
    assert elapsed < 2.0
    client.close()
    deaf.close()


def test_no_recogniser_means_unavailable_not_an_error(tmp_path: Path) -> None:
    client = LiveClient(tmp_path / "nobody.sock", "call-y")
    assert client.state == "unavailable" and "not reachable" in (client.reason or "")
    assert client.send(b"\x00\x00" * 160) is False


def test_capacity_follows_the_measured_cpu() -> None:
    assert capacity(0.25, cores=4) == 12
    assert capacity(2.0, cores=1) == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_runtime_publishes_live_text_and_refusals(
    db_url: str, tiny_model: Path, speech: dict, tmp_path: Path
) -> None:
    in_context(db_url, lambda ctx: _live_session(ctx, tiny_model, speech[8000]))


def in_context(db_url: str, session: Callable[[HotlineContext], Awaitable[None]]) -> None:
    """Run `session` on a context of its own (its own runtime folder: short Unix socket paths)."""
    import tempfile

    runtime_dir = Path(tempfile.mkdtemp(prefix="asr-rt-"))
    ctx = HotlineContext.from_settings(make_settings(db_url, callcenter={"runtime_dir": str(runtime_dir)}))
    try:
        asyncio.run(session(ctx))
    finally:
        ctx.close()


async def _live_session(ctx: HotlineContext, model: Path, audio: np.ndarray) -> None:
    runtime = SpeechRuntime(ctx, AsrSettings(model_path=model, live_streams=1))
    await runtime.start()
    try:
        status = runtime.status()
        assert (status["transcription"], status["live"]) == ("on", "on")
        async with ctx.events.subscribe(["transcript."]) as events:
            talk = LiveClient(runtime.live_socket, "live-1")
            await asyncio.sleep(0.2)
            busy = LiveClient(runtime.live_socket, "live-2")
            await asyncio.to_thread(stream_audio, talk, np.concatenate([audio, silence(8000, 1.5)]), 0.0002)
            await asyncio.to_thread(talk.close)
            seen = await _collect(
                events, until=lambda e: e.topic == "transcript.live" and e.payload["state"] == "ended"
            )
            busy.close()
        partials = [e.payload for e in seen if e.topic == "transcript.partial"]
        assert partials and all(p["call_uid"] == "live-1" for p in partials)
        assert any(p["final"] for p in partials) and partials[-1]["text"]
        assert "suggestions" in next(p for p in partials if p["final"])
        refusals = [
            e.payload for e in seen if e.topic == "transcript.live" and e.payload["state"] == "refused"
        ]
        assert refusals == [{"call_uid": "live-2", "state": "refused", "message": refusals[0]["message"]}]
        assert "after-call" in refusals[0]["message"]
    finally:
        await runtime.stop()


async def _collect(events: asyncio.Queue, until, timeout: float = 15) -> list:
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            event = await events.get()
            seen.append(event)
            if until(event):
                return seen


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_status_for_the_health_page_without_a_model(db_url: str, tmp_path: Path) -> None:
    import tempfile

    from callcenter import asr

    settings = make_settings(db_url, callcenter={"runtime_dir": tempfile.mkdtemp(prefix="asr-rt-")})
    ctx = HotlineContext.from_settings(settings)
    missing = tmp_path / "vosk-model-small-cn-0.22"

    async def session() -> dict:
        await asr.start(ctx, AsrSettings(model_path=missing))
        try:
            return asr.asr_status()
        finally:
            await asr.stop()

    try:
        assert asr.asr_status()["transcription"] == "off"
        status = asyncio.run(session())
    finally:
        ctx.close()
    assert (status["transcription"], status["live"], status["model_path"]) == ("off", "off", str(missing))
    assert str(missing) in status["reason"] and status["live_reason"] == status["reason"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_killed_live_recogniser_is_started_again(
    db_url: str, tiny_model: Path, speech: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 of the live recogniser: the status says so, it is started again, and the next call's
    speech becomes live text as before."""
    from callcenter.asr import runtime as asr_runtime

    monkeypatch.setattr(asr_runtime, "RESTART_FIRST_SECONDS", 0.2)
    in_context(db_url, lambda ctx: _killed_and_restarted(ctx, tiny_model, speech[8000]))


async def _killed_and_restarted(ctx: HotlineContext, model: Path, audio: np.ndarray) -> None:
    import os
    import signal

    runtime = SpeechRuntime(ctx, AsrSettings(model_path=model, live_streams=1))
    await runtime.start()
    try:
        first = runtime._live.process  # type: ignore[union-attr]
        assert first is not None and runtime.status()["live_restarts"] == 0
        os.kill(first.pid, signal.SIGKILL)
        for _ in range(300):
            status = runtime.status()
            if status["live_restarts"] == 1 and status["live"] == "on":
                break
            await asyncio.sleep(0.1)
        assert (status["live"], status["live_restarts"]) == ("on", 1), status
        assert runtime._live.process is not first  # type: ignore[union-attr]
        async with ctx.events.subscribe(["transcript."]) as events:
            talk = LiveClient(runtime.live_socket, "after-restart")
            assert talk.state == "streaming", talk.reason
            await asyncio.to_thread(stream_audio, talk, np.concatenate([audio, silence(8000, 1.5)]), 0.0002)
            await asyncio.to_thread(talk.close)
            seen = await _collect(
                events, until=lambda e: e.topic == "transcript.live" and e.payload["state"] == "ended"
            )
        assert any(e.topic == "transcript.partial" and e.payload["final"] for e in seen)
    finally:
        await runtime.stop()
