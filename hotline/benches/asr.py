"""Speech benchmark: `python -m hotline.benches.asr --model PATH [--refs DIR] [--live-calls 24]`.

Prints, for the given model on this machine:

1. the real-time factor of one stream (decoding time / audio time, one core);
2. how many live streams the machine keeps up with: the CPU one live stream costs per second of audio,
   measured end to end (client -> Unix socket -> live recogniser -> resampling -> decoder -> events),
   against 75 % of the cores;
3. the pipeline's own cost per minute of audio: channel split, resampling 8 -> 16 kHz, the live path
   without the decoder, and queueing + storing a transcript (database, knowledge base, router);
4. the time from hang-up to a stored transcript for a 3-minute call while `--live-calls` live calls
   are streamed in real time (20 ms frames) through the live recogniser process;
5. with `--refs DIR` (WAV files, each with a .txt of what was said): the character error rate with
   and without the hotline-vocabulary correction.

The last line is one JSON object with every figure. With the synthetic test model the decoder costs
next to nothing, so the figures are the pipeline's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from callcenter.asr.client import LiveClient
from callcenter.asr.live import CPU_SHARE, calibration_audio, capacity
from callcenter.asr.resample import resample
from callcenter.asr.transcriber import Transcriber, read_channel
from callcenter.recording import describe, write_durably

RATE = 8000
FRAME = 160  # 20 ms at 8 kHz


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.process_time()
    result = fn()
    return time.process_time() - started, result


def test_call(seconds: float) -> np.ndarray:
    """A call's citizen audio: the calibration signal repeated (talk with pauses)."""
    unit = calibration_audio(RATE)
    return np.tile(unit, int(np.ceil(seconds * RATE / len(unit))))[: int(seconds * RATE)]


def stereo_file(folder: Path, name: str, citizen: np.ndarray) -> Path:
    path = folder / f"{name}.wav"
    stereo = np.zeros((len(citizen), 2), dtype="<i2")
    stereo[:, 0] = citizen
    write_durably(path, stereo, RATE)
    return path


def real_time_factor(transcriber: Transcriber, folder: Path) -> dict[str, float]:
    path = stereo_file(folder, "rtf", test_call(60))
    wall = time.perf_counter()
    cpu, transcript = _cpu(lambda: transcriber.transcribe_file(path))
    wall = time.perf_counter() - wall
    return {"rtf_one_stream": round(wall / transcript.audio_seconds, 5), "rtf_cpu": round(cpu / 60, 5)}


def overhead_per_minute(folder: Path) -> dict[str, float]:
    """CPU seconds of the pipeline's own steps for one minute of call audio."""
    path = stereo_file(folder, "minute", test_call(60))
    split, (_, samples, _) = _cpu(lambda: read_channel(path))
    up, _ = _cpu(lambda: resample(samples, RATE, 16000))
    return {"channel_split_s_per_min": round(split, 4), "resample_8k_16k_s_per_min": round(up, 4)}


class LiveProcess:
    """The live recogniser as production runs it: a child process on a Unix socket."""

    def __init__(self, model: Path, folder: Path, max_streams: int) -> None:
        self.socket = Path(tempfile.mkdtemp(prefix="asr-bench-")) / "live.sock"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "callcenter.asr.live",
                "--socket",
                str(self.socket),
                "--model",
                str(model),
                "--max-streams",
                str(max_streams),
            ],
            stdout=subprocess.PIPE,
            stderr=open(folder / "live.log", "wb"),  # noqa: SIM115 - the child owns it
        )
        assert self.proc.stdout is not None
        self.hello = json.loads(self.proc.stdout.readline() or b"{}")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.socket.parent, ignore_errors=True)


def live_cpu_per_stream(live: LiveProcess, seconds: float = 30.0, streams: int = 4) -> float:
    """CPU seconds per second of audio per live stream, fed as fast as the recogniser takes it."""
    audio = test_call(seconds).tobytes()
    before = live.cpu_seconds()
    clients = [LiveClient(live.socket, f"cal-{n}") for n in range(streams)]
    for begin in range(0, len(audio), FRAME * 2):
        for client in clients:
            while not client.send(audio[begin : begin + FRAME * 2]) and client.state == "streaming":
                client.dropped_frames -= 1  # a calibration run waits instead of dropping
                time.sleep(0.0005)
    for client in clients:
        client.close()
    time.sleep(0.5)  # let the last chunks decode
    return (live.cpu_seconds() - before) / (seconds * streams)


class Feeders:
    """`count` live calls streaming in real time (one thread each, 20 ms frames) until stopped."""

    def __init__(self, socket_path: Path, count: int) -> None:
        self.stop_flag = threading.Event()
        self.clients = [LiveClient(socket_path, f"busy-{n}") for n in range(count)]
        self.threads = [threading.Thread(target=self._feed, args=(c,), daemon=True) for c in self.clients]
        for thread in self.threads:
            thread.start()

    def _feed(self, client: LiveClient) -> None:
        audio, step, n = test_call(30).tobytes(), FRAME * 2, 0
        started = time.monotonic()
        while not self.stop_flag.is_set():
            offset = (n * step) % len(audio)
            client.send(audio[offset : offset + step])
            n += 1
            time.sleep(max(0.0, started + n * 0.02 - time.monotonic()))

    def stop(self) -> dict[str, int]:
        self.stop_flag.set()
        for thread in self.threads:
            thread.join(5)
        for client in self.clients:
            client.close()
        return {
            "live_streaming": sum(c.state in ("streaming", "closed") for c in self.clients),
            "live_refused": sum(c.state == "refused" for c in self.clients),
            "live_dropped_frames": sum(c.dropped_frames for c in self.clients),
        }


class FeederProcess:
    """The live calls come from other processes in production (the media workers): so here too, lest
    the feeding threads compete with the transcription service for this process's GIL."""

    def __init__(self, socket_path: Path, count: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hotline.benches.asr",
                "--feed",
                str(socket_path),
                "--live-calls",
                str(count),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # "feeding": every call has connected

    def stop(self) -> dict[str, int]:
        out, _ = self.proc.communicate(b"", timeout=30)
        return json.loads(out.decode().strip().splitlines()[-1])


def feed(socket_path: Path, count: int) -> int:
    """The child of FeederProcess: stream until stdin closes, then print the counters."""
    feeders = Feeders(socket_path, count)
    print("feeding", flush=True)
    sys.stdin.read()
    print(json.dumps(feeders.stop()), flush=True)
    return 0


def scratch_context(folder: Path, model: Path) -> Any:
    from core.migrate import upgrade
    from hotline.config import parse_settings
    from hotline.context import HotlineContext

    settings = parse_settings(
        {
            "database": {"url": f"sqlite:///{folder / 'bench.db'}"},
            "callcenter": {"runtime_dir": str(folder / "run"), "asr": {"model_path": str(model)}},
        },
        "bench",
        folder,
    )
    ctx = HotlineContext.from_settings(settings)
    upgrade(ctx.engine)
    return ctx


# A stored transcript takes seconds; past this something is wrong: say what, do not wait forever.
STORE_DEADLINE_S = 120.0


async def hangup_to_stored(ctx: Any, folder: Path, seconds: float = 180.0) -> dict[str, float]:
    """A 3-minute call hangs up (record closed, event published); how long until its transcript is stored."""
    from sqlalchemy import select

    from callcenter.asr.models import CallTranscript
    from callcenter.asr.service import TranscriptionService
    from callcenter.models import CallRecord

    service = TranscriptionService(ctx, poll_seconds=5.0)
    await service.start()
    await service._warm_task  # a running hotline has long built its matcher and vocabulary
    info = describe(stereo_file(folder, "three-minutes", test_call(seconds)))
    hung_up = time.perf_counter()
    with ctx.unit_of_work() as session:
        now = ctx.clock.now()
        session.add(
            CallRecord(
                uid="bench-call",
                caller="13900000000",
                callee="12345",
                offered_at=now - timedelta(seconds=seconds),
                ended_at=now,
                recording_path=info["path"],
                recording_bytes=info["bytes"],
                recording_sha256=info["sha256"],
                recording_seconds=info["seconds"],
            )
        )
    ctx.events.publish("call.ended", {"call_uid": "bench-call"})
    try:
        while True:
            with ctx.unit_of_work() as session:
                row = session.scalar(
                    select(CallTranscript).join(CallRecord).where(CallRecord.uid == "bench-call")
                )
            if row is not None and row.status == "done":
                break
            if time.perf_counter() - hung_up > STORE_DEADLINE_S:
                state = f"{row.status}: {row.error}" if row is not None else "no transcript row"
                raise RuntimeError(f"the transcript was not stored within {STORE_DEADLINE_S} s ({state})")
            await asyncio.sleep(0.02)
        stored = time.perf_counter() - hung_up
    finally:
        await service.stop()
    return {
        "hangup_to_stored_s": round(stored, 3),
        "decode_s_in_worker": row.decode_seconds or 0.0,
        "queue_and_store_s": round(stored - (row.decode_seconds or 0.0), 3),
    }


def cer_on_refs(transcriber: Transcriber, refs: Path) -> dict[str, Any]:
    from callcenter.asr.vocabulary import corpus_cer, hotline_vocabulary

    vocabulary = hotline_vocabulary()
    wavs = sorted(p for p in refs.glob("*.wav") if p.with_suffix(".txt").is_file())
    texts = [transcriber.transcribe_file(p).text for p in wavs]
    references = [p.with_suffix(".txt").read_text(encoding="utf-8").strip() for p in wavs]
    return {
        "refs_files": len(wavs),
        "cer_without_correction": corpus_cer(references, texts),
        "cer_with_correction": corpus_cer(references, [vocabulary.correct(t) for t in texts]),
    }


def run(model: Path, refs: Path | None, live_calls: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"model": str(model), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="asr-bench-") as tmp:
        folder = Path(tmp)
        transcriber = Transcriber(model)
        figures.update(real_time_factor(transcriber, folder))
        figures.update(overhead_per_minute(folder))
        live = LiveProcess(model, folder, max_streams=max(live_calls, 1) + 8)
        try:
            per_stream = live_cpu_per_stream(live)
            figures["live_cpu_per_stream_pct_of_core"] = round(100 * per_stream, 3)
            figures["live_streams_kept_up"] = capacity(per_stream)
            figures["live_path_s_per_min"] = round(60 * per_stream, 4)
            feeders = FeederProcess(live.socket, live_calls)
            try:
                ctx = scratch_context(folder, model)
                figures.update(asyncio.run(hangup_to_stored(ctx, folder)))
                ctx.close()
            finally:
                figures.update(feeders.stop())
        finally:
            live.stop()
        if refs is not None:
            figures.update(cer_on_refs(transcriber, refs))
    figures["live_calls_during_hangup_test"] = live_calls
    return figures


def report(figures: dict[str, Any]) -> None:
    lines = [
        f"model: {figures['model']} on {figures['cores']} cores",
        f"real-time factor, one stream: {figures['rtf_one_stream']} (CPU {figures['rtf_cpu']})",
        f"live stream CPU: {figures['live_cpu_per_stream_pct_of_core']} % of one core per call -> "
        f"{figures['live_streams_kept_up']} live streams kept up with "
        f"({int(CPU_SHARE * 100)} % of the cores)",
        f"pipeline per minute of audio: channel split {figures['channel_split_s_per_min']} s, "
        f"resampling 8->16 kHz {figures['resample_8k_16k_s_per_min']} s, "
        f"live path {figures['live_path_s_per_min']} s (CPU)",
        f"3-minute call, {figures['live_calls_during_hangup_test']} live calls running: stored "
        f"{figures['hangup_to_stored_s']} s after hang-up (decoding {figures['decode_s_in_worker']} s, "
        f"queueing and storing {figures['queue_and_store_s']} s); "
        f"live: {figures['live_streaming']} streaming, "
        f"{figures['live_refused']} refused, {figures['live_dropped_frames']} frames dropped",
    ]
    if "refs_files" in figures:
        lines.append(
            f"CER on {figures['refs_files']} files: {figures['cer_without_correction']} without, "
            f"{figures['cer_with_correction']} with the vocabulary correction"
        )
    print("\n".join(lines))
    print(json.dumps(figures, ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark speech to text (callcenter.asr).")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--refs", type=Path, help="folder of WAV files with .txt references")
    parser.add_argument("--live-calls", type=int, default=24)
    parser.add_argument("--feed", type=Path, help=argparse.SUPPRESS)  # internal: the feeder process
    parser.add_argument(
        "--watchdog", type=float, default=240.0, help="print every thread's stack and exit after this long"
    )
    args = parser.parse_args(argv)
    # A run that hangs says where (every thread's stack on stderr) instead of waiting forever.
    faulthandler.dump_traceback_later(args.watchdog, exit=True)
    if args.feed:
        return feed(args.feed, args.live_calls)
    if args.model is None:
        parser.error("--model is required")
    # The benchmark works in a temporary folder: a relative path must not be read from there.
    model = args.model.resolve()
    if not model.is_dir():
        parser.error(f"--model {args.model}: no such model folder")
    refs = args.refs.resolve() if args.refs else None
    if refs is not None and not refs.is_dir():
        parser.error(f"--refs {args.refs}: no such folder")
    report(run(model, refs, args.live_calls))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
