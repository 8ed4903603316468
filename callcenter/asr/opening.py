"""The caller's opening statement (智能填单): found in the live audio, transcribed as soon as they pause.

Most citizens say what they want in their first breath ("我想问一下公积金怎么提取"). `OpeningDetector`
follows a live stream with the Silero voice-activity model that faster-whisper ships: once speech has
started and is followed by a pause of `min_silence` seconds (or runs past `max_seconds`), it hands back
that stretch of audio. `OpeningStatements` transcribes it with Whisper on a small pool of threads of
its own (CTranslate2 releases the GIL), ahead of and apart from the after-call backlog, and reports
the text with its delay: from the end of speech to the text, the pause the detector had to wait
included.

The detector looks at the last `window` seconds every `check_every` seconds only until the statement
is found; the voice-activity model costs about 3 ms per second of audio looked at.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from callcenter.asr.resample import Resampler

VAD_RATE = 16000
PAD_SECONDS = 0.2


@dataclass(frozen=True)
class Statement:
    audio: np.ndarray  # int16 at VAD_RATE
    start: float  # seconds into the stream
    end: float
    found_at: float  # time.monotonic() when the pause was confirmed
    stream_seconds: float  # audio received when it was found (the end of speech was this much earlier)


class OpeningDetector:
    def __init__(
        self,
        rate: int,
        *,
        min_silence: float = 0.6,
        max_seconds: float = 20.0,
        check_every: float = 0.3,
        window: float = 3.0,
    ) -> None:
        from faster_whisper.vad import VadOptions

        self._resampler = Resampler(rate, VAD_RATE)
        self._chunks: list[np.ndarray] = []
        self._base = 0  # samples dropped from the front (silence before anyone spoke)
        self._length = 0
        self._checked = 0
        self.min_silence, self.max_seconds = min_silence, max_seconds
        self._check = int(check_every * VAD_RATE)
        self._window = int(window * VAD_RATE)
        self._options = VadOptions(min_silence_duration_ms=int(min_silence * 1000), speech_pad_ms=100)
        self.start: int | None = None  # sample where speech began
        self.end = 0  # last sample heard as speech
        self.done = False

    def accept(self, samples: np.ndarray) -> Statement | None:
        """Audio at the stream's rate; the statement once its end is certain (then never again)."""
        if self.done:
            return None
        out = self._resampler.process(samples)
        self._chunks.append(out)
        self._length += len(out)
        if self._length - self._checked < self._check:
            return None
        self._checked = self._length
        return self._look()

    def finish(self) -> Statement | None:
        """The stream ended: whatever was said counts as the statement."""
        if self.done or self.start is None:
            return None
        return self._cut(self.end)

    def _audio(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, dtype=np.int16)

    def _look(self) -> Statement | None:
        from faster_whisper.vad import get_speech_timestamps

        audio = self._audio()
        offset = max(0, len(audio) - self._window)
        spans = get_speech_timestamps(audio[offset:].astype(np.float32) / 32768.0, self._options)
        at = self._base + offset  # absolute sample of audio[offset]
        if spans:
            if self.start is None:
                self.start = at + spans[0]["start"]
            self.end = max(self.end, at + spans[-1]["end"])
        if self.start is None:
            # nobody has spoken yet: keep only what the next look needs
            self._chunks, self._base = [audio[offset:]], at
            return None
        silent = self._length - self.end
        if silent >= self.min_silence * VAD_RATE or self.end - self.start >= self.max_seconds * VAD_RATE:
            return self._cut(self.end)
        return None

    def _cut(self, end: int) -> Statement:
        assert self.start is not None
        self.done = True
        audio = self._audio()
        pad = int(PAD_SECONDS * VAD_RATE)
        begin = max(0, self.start - pad - self._base)
        piece = audio[begin : min(len(audio), end + pad - self._base)].copy()
        self._chunks = []
        return Statement(
            piece, self.start / VAD_RATE, end / VAD_RATE, time.monotonic(), self._length / VAD_RATE
        )


class OpeningStatements:
    """Transcribes opening statements on `workers` threads; `emit` gets one event per statement."""

    def __init__(self, transcriber: Any, workers: int, emit: Callable[[dict[str, Any]], None]) -> None:
        self.transcriber = transcriber
        self.emit = emit
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="opening")

    def detector(self, rate: int) -> OpeningDetector:
        return OpeningDetector(rate)

    def submit(self, uid: str, statement: Statement) -> None:
        self._pool.submit(self._run, uid, statement)

    def _run(self, uid: str, statement: Statement) -> None:
        started = time.monotonic()
        try:
            # Already cut by voice activity: Whisper's own filter and its "no speech" guess dropped a
            # quiet caller's statement (a telephone 26 dB below full scale came out as no text at all).
            text = self.transcriber.transcribe_samples(statement.audio, VAD_RATE, speech=True).text
        except Exception as exc:  # a failed statement must not end the stream; the after-call one follows
            self.emit({"type": "opening_failed", "call": uid, "error": f"{type(exc).__name__}: {exc}"})
            return
        done = time.monotonic()
        # The end of speech was (stream_seconds - end) seconds of audio before the pause was confirmed.
        waited = statement.stream_seconds - statement.end
        self.emit(
            {
                "type": "opening",
                "call": uid,
                "text": text,
                "start": round(statement.start, 3),
                "end": round(statement.end, 3),
                "decode_seconds": round(done - started, 3),
                "delay_seconds": round(done - statement.found_at + waited, 3),
                # the same moment on the wall clock, for measuring to a screen on this machine
                "speech_ended_at": round(time.time() - (time.monotonic() - statement.found_at + waited), 3),
            }
        )

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
