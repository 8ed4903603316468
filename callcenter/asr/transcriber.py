"""Speech to text with Vosk: a model loaded once, whole recordings and live streams.

`Transcriber(model_path)` checks and loads the model (`ModelMissing` / `ModelBroken` name the path);
`transcribe_file(path)` reads a call recording (8 or 16 kHz, mono, or one channel of the two-channel
call recording: the citizen's by default) and returns a `Transcript`; `stream(rate)` gives a `Stream`
for live audio. Audio is converted to the model's own rate (read from its conf/mfcc.conf) on the way
in, so an 8 kHz call reaches a 16 kHz model up-sampled (see callcenter.asr.resample).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from callcenter.asr.resample import Resampler
from callcenter.recording import CITIZEN_CHANNEL

REQUIRED_FILES = ("am/final.mdl", "conf/mfcc.conf")
GRAPH_FILES = ("graph/HCLG.fst", "graph/Gr.fst")
CHUNK_SECONDS = 0.2  # audio handed to the decoder per call: small enough for live partials
_UNKNOWN = {"[unk]", "<unk>", "<UNK>", "[noise]", "<sil>"}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


class ModelError(RuntimeError):
    def __init__(self, path: Path | str, reason: str, engine: str = "Vosk") -> None:
        self.path = str(path)
        self.reason = reason
        self.engine = engine
        super().__init__(f"{engine} model {self.path}: {reason}")


class ModelMissing(ModelError):
    """No model at the configured path (or not a Vosk model folder at all)."""


class ModelBroken(ModelError):
    """The folder looks like a model but Vosk cannot load it."""


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float
    conf: float


@dataclass
class Segment:
    """Text between two pauses (Vosk's endpoint), or the rest at the end of a stream."""

    text: str
    words: list[Word] = field(default_factory=list)
    final: bool = True


@dataclass
class Transcript:
    text: str
    words: list[Word]
    audio_seconds: float
    input_rate: int  # the recording's rate
    model_rate: int  # what the recogniser was fed
    channel: int | None
    decode_seconds: float = 0.0
    model_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        return cls(**{**data, "words": [Word(**w) for w in data["words"]]})


def join_words(words: list[str]) -> str:
    """Chinese without spaces between characters; a space stays only between two Latin/digit tokens."""
    out = ""
    for word in words:
        if word in _UNKNOWN or not word:
            continue
        if out and not _CJK.search(out[-1]) and not _CJK.search(word[0]):
            out += " "
        out += word
    return out


def model_rate(model_path: Path) -> int:
    """The sample rate the model's features were trained on (Kaldi's default is 16 kHz)."""
    conf = model_path / "conf" / "mfcc.conf"
    for line in conf.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.strip().partition("=")
        if key == "--sample-frequency":
            return int(float(value))
    return 16000


def check_model_folder(model_path: Path | str) -> Path:
    """The folder as a Path; ModelMissing when it is not there or lacks the files every model has."""
    path = Path(model_path).expanduser()
    if not path.is_dir():
        raise ModelMissing(path, "no such folder")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in GRAPH_FILES):
        missing.append(" or ".join(GRAPH_FILES))
    if missing:
        raise ModelMissing(path, f"not a Vosk model folder (missing {', '.join(missing)})")
    return path


def quiet_vosk() -> None:
    import vosk

    # -1: Kaldi's warnings and info off (it logs every recogniser it creates); errors still print.
    vosk.SetLogLevel(-1)


class LiveStream(Protocol):
    """What a speech-to-text engine gives for live audio (the Vosk adapter: `Stream`)."""

    def accept(self, pcm: bytes) -> str | Segment: ...
    def accept_samples(self, samples: np.ndarray) -> str | Segment: ...
    def finish(self) -> Segment: ...
    @property
    def seconds(self) -> float: ...


class SpeechToText(Protocol):
    """A speech-to-text engine, loaded once and shared by threads. `Transcriber` is the Vosk adapter
    (the tests run it for real on the synthetic model); another engine plugs in by this interface."""

    model_path: Path
    model_rate: int

    def stream(self, rate: int) -> LiveStream: ...
    def transcribe_file(self, path: Path | str, channel: int | None = None) -> Transcript: ...


class Stream:
    """One live audio stream: `accept` int16 PCM bytes at the stream's rate, get back the partial text
    (str) while a phrase goes on or a `Segment` when a pause ends it; `finish` returns the rest."""

    def __init__(self, model: Any, input_rate: int, rate: int) -> None:
        from vosk import KaldiRecognizer

        self.input_rate, self.model_rate = input_rate, rate
        self._resampler = Resampler(input_rate, rate)
        self._recognizer = KaldiRecognizer(model, rate)
        self._recognizer.SetWords(True)
        self.samples_in = 0
        self.samples_out = 0

    def accept(self, pcm: bytes) -> str | Segment:
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
        return self.accept_samples(samples)

    def accept_samples(self, samples: np.ndarray) -> str | Segment:
        self.samples_in += len(samples)
        return self._feed(self._resampler.process(samples))

    def finish(self) -> Segment:
        """The text since the last pause; the stream is done afterwards."""
        pending = self._feed(self._resampler.flush())
        tail = self._segment(self._recognizer.FinalResult())
        if isinstance(pending, Segment):  # the flushed samples completed a phrase of their own
            return Segment(pending.text + tail.text, pending.words + tail.words)
        return tail

    @property
    def seconds(self) -> float:
        return self.samples_in / self.input_rate

    def _feed(self, samples: np.ndarray) -> str | Segment:
        self.samples_out += len(samples)
        if len(samples) and self._recognizer.AcceptWaveform(samples.astype("<i2").tobytes()):
            return self._segment(self._recognizer.Result())
        return join_words(json.loads(self._recognizer.PartialResult()).get("partial", "").split())

    def _segment(self, raw: str) -> Segment:
        data = json.loads(raw)
        words = [
            Word(w["word"], round(w["start"], 3), round(w["end"], 3), round(w.get("conf", 1.0), 3))
            for w in data.get("result", [])
            if w.get("word") not in _UNKNOWN
        ]
        return Segment(join_words([w.word for w in words]) or join_words(data.get("text", "").split()), words)


class Transcriber:
    """A Vosk model, loaded once; thread-safe for separate streams (each has its own recogniser)."""

    def __init__(self, model_path: Path | str) -> None:
        self.model_path = check_model_folder(model_path)
        self.model_rate = model_rate(self.model_path)
        quiet_vosk()
        from vosk import Model

        try:
            self.model = Model(str(self.model_path))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise ModelBroken(self.model_path, f"Vosk could not load it ({exc}); see the log above") from None

    def stream(self, rate: int) -> Stream:
        return Stream(self.model, rate, self.model_rate)

    def transcribe_file(self, path: Path | str, channel: int | None = None) -> Transcript:
        """`channel`: which channel of a multi-channel file; default the citizen's (0). Mono: ignored."""
        started = time.perf_counter()
        rate, samples, used = read_channel(Path(path), channel)
        stream = self.stream(rate)
        segments: list[Segment] = []
        step = max(1, int(rate * CHUNK_SECONDS))
        for begin in range(0, len(samples), step):
            result = stream.accept_samples(samples[begin : begin + step])
            if isinstance(result, Segment):
                segments.append(result)
        segments.append(stream.finish())
        return Transcript(
            text="".join(s.text for s in segments),
            words=[w for s in segments for w in s.words],
            audio_seconds=round(len(samples) / rate, 3),
            input_rate=rate,
            model_rate=self.model_rate,
            channel=used,
            decode_seconds=round(time.perf_counter() - started, 4),
            model_path=str(self.model_path),
        )


def read_wav(path: Path) -> tuple[int, int, np.ndarray]:
    """(rate, channels, interleaved int16 samples) of a 16-bit PCM WAV, plain or WAVE_FORMAT_EXTENSIBLE
    (what sox writes; Python 3.11's `wave` refuses it)."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    fmt, samples, pos = None, None, 12
    while pos + 8 <= len(data):
        name, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = data[pos + 8 : pos + 8 + size]
        if name == b"fmt ":
            fmt = body
        elif name == b"data":
            samples = body  # a header the recorder never finalised still yields what is there
            break
        pos += 8 + size + size % 2
    if fmt is None or samples is None:
        raise ValueError(f"{path}: WAV file without fmt or data chunk")
    tag, channels, rate = (int.from_bytes(fmt[a:b], "little") for a, b in ((0, 2), (2, 4), (4, 8)))
    bits = int.from_bytes(fmt[14:16], "little")
    if tag == 0xFFFE and len(fmt) >= 26:
        tag = int.from_bytes(fmt[24:26], "little")  # the sub-format GUID starts with the real tag
    if tag != 1 or bits != 16:
        raise ValueError(f"{path}: {bits}-bit audio of format {tag}; 16-bit PCM expected")
    usable = len(samples) - len(samples) % (2 * channels)
    return rate, channels, np.frombuffer(samples[:usable], dtype="<i2")


def read_channel(path: Path, channel: int | None = None) -> tuple[int, np.ndarray, int | None]:
    """(rate, int16 samples, channel used); the channel is None for a mono file."""
    rate, channels, frames = read_wav(path)
    if channels == 1:
        return rate, frames, None
    wanted = CITIZEN_CHANNEL if channel is None else channel
    if not 0 <= wanted < channels:
        raise ValueError(f"{path}: has {channels} channels, channel {wanted} asked for")
    # A copy, so the de-interleaved channel is contiguous for the resampler and the decoder.
    return rate, frames.reshape(-1, channels)[:, wanted].copy(), wanted
