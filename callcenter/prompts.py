"""Voice prompts of the hotline, generated at start-up (not committed as audio).

Speech comes from espeak-ng's Mandarin voice and is converted by sox to what the media workers play
without resampling: 8 kHz, mono, 16-bit PCM WAV. Hold music is synthesised here in pure Python.
A manifest (hash of each prompt's text and of the voice settings) makes generation idempotent: a prompt
is only made again when its file is missing or its text changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import struct
import subprocess
import wave
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

RATE = 8000
MAX_POSITION = 60
# Phone numbers are read digit by digit; 1 is "幺" as Chinese operators say it.
HOTLINE_SPOKEN = "幺二三四五"
DIGIT_WORDS = "零一二三四五六七八九"
VOICE = ("espeak-ng", "-v", "cmn", "-s", "165", "-b", "1")  # -b 1: the text argument is UTF-8
SOX_OUT = ("-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer")
MANIFEST = "manifest.json"
HOLD_MUSIC = "hold_music"
HOLD_MUSIC_VERSION = "melody-1"  # bump when the melody generator changes
TOOLS = {"espeak-ng": "espeak-ng", "sox": "sox"}  # command -> Debian package


class PromptToolMissing(RuntimeError):
    """espeak-ng or sox is not installed."""


def default_texts() -> dict[str, str]:
    """Name -> text of every spoken prompt (hold music is not speech and not listed here)."""
    texts = {
        "welcome": f"您好，欢迎致电{HOTLINE_SPOKEN}政务服务便民热线，正在为您接通话务员，请稍候。",
        "queue_full": "当前来电较多，如需我们回电，请按1；继续等候请不要挂机。",
        "callback_registered": "已为您登记回电，我们将尽快与您联系，再见。",
        "transferring": "正在为您转接，请稍候。",
        "goodbye": "感谢您的来电，再见。",
        # callback survey (issue 8): intro, the ticket number digit by digit, the question
        "survey_intro": f"您好，这里是{HOTLINE_SPOKEN}热线回访，关于您的工单",
        "survey_question": "满意请按1，基本满意请按2，不满意请按3。",
        "survey_solved": "您反映的问题已解决请按1，未解决请按2。",
        "survey_no_input": "未收到有效按键。",
        "survey_thanks": "感谢您的评价，再见。",
    }
    texts.update({f"position_{n}": f"您前面还有{n}位来电，请耐心等候。" for n in range(1, MAX_POSITION + 1)})
    texts.update({f"digit_{d}": DIGIT_WORDS[d] for d in range(10)})
    return texts


@dataclass
class Prompts:
    """The generated prompt files by name; `generated` lists what the last ensure_prompts() (re)made."""

    folder: Path
    names: tuple[str, ...]
    generated: list[str] = field(default_factory=list)

    def path(self, name: str) -> Path:
        if name not in self.names:
            raise KeyError(f"no prompt named {name!r}")
        return self.folder / f"{name}.wav"

    def position(self, ahead: int) -> Path:
        """The queue position prompt for `ahead` callers (capped to what was generated)."""
        return self.path(f"position_{min(max(ahead, 1), MAX_POSITION)}")

    def digits(self, number: str) -> list[Path]:
        """One prompt per digit, to read out a ticket number."""
        return [self.path(f"digit_{d}") for d in number if d.isdigit()]


# --- tools -----------------------------------------------------------------------------------------
def _require(command: str) -> str:
    path = shutil.which(command)
    if path is None:
        raise PromptToolMissing(
            f"{command} is needed to generate the voice prompts: apt-get install {TOOLS[command]}"
        )
    return path


def say(text: str, path: Path) -> Path:
    """Speak `text` into `path` (8 kHz mono 16-bit WAV), e.g. a short reply summary for a survey call."""
    espeak, sox = _require("espeak-ng"), _require("sox")
    speech = subprocess.run(
        [espeak, *VOICE[1:], "--stdout", text], capture_output=True, check=True, timeout=60
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part.wav")  # a half-written prompt is never played
    # norm -3: every prompt at the same loudness, 3 dB below full scale
    subprocess.run(
        [sox, "-q", "-t", "wav", "-", *SOX_OUT, str(partial), "norm", "-3"],
        input=speech.stdout,
        capture_output=True,
        check=True,
        timeout=60,
    )
    partial.replace(path)
    return path


def concat(parts: Sequence[Path], out: Path) -> Path:
    """Join WAV files of the same format into one (e.g. intro + ticket digits + question)."""
    if not parts:
        raise ValueError("nothing to concatenate")
    params = None
    frames: list[bytes] = []
    for part in parts:
        with wave.open(str(part), "rb") as wav:
            current = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
            if params is not None and current != params:
                raise ValueError(f"{part} is {current}, the others are {params}")
            params = current
            frames.append(wav.readframes(wav.getnframes()))
    assert params is not None
    _write_wav(out, b"".join(frames), *params)
    return out


def _write_wav(path: Path, frames: bytes, channels: int = 1, width: int = 2, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part.wav")
    with wave.open(str(partial), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)
    partial.replace(path)


# --- hold music ------------------------------------------------------------------------------------
# A calm pentatonic tune (semitones above A3) with a bass note per bar: 16 bars of 4 beats at 96 bpm.
_MELODY = [
    0,
    4,
    7,
    9,
    7,
    4,
    2,
    4,
    0,
    2,
    4,
    7,
    9,
    12,
    9,
    7,
    4,
    7,
    9,
    12,
    14,
    12,
    9,
    7,
    9,
    7,
    4,
    2,
    4,
    2,
    0,
    -3,
]
_BASS = [-12, -8, -5, -8, -12, -10, -8, -5]


def hold_music(path: Path, seconds: float = 20.0) -> Path:
    """A soft melody loop (sine notes with harmonics and a decaying envelope, and a bass line)."""
    beat = 60 / 96
    total = int(seconds * RATE)
    samples = [0.0] * total
    for index, start in enumerate(_frange(0, seconds, beat / 2)):
        _add_note(samples, start, beat / 2 * 1.6, _MELODY[index % len(_MELODY)], 0.22)
    for index, start in enumerate(_frange(0, seconds, beat * 2)):
        _add_note(samples, start, beat * 2, _BASS[index % len(_BASS)], 0.14)
    fade = int(0.05 * RATE)  # no click where the loop restarts
    for n in range(fade):
        samples[n] *= n / fade
        samples[-1 - n] *= n / fade
    frames = struct.pack(f"<{total}h", *(round(32767 * max(-1.0, min(1.0, s))) for s in samples))
    _write_wav(path, frames)
    return path


def _frange(start: float, stop: float, step: float) -> list[float]:
    return [start + n * step for n in range(int((stop - start) / step))]


def _add_note(samples: list[float], start: float, length: float, semitone: int, level: float) -> None:
    hz = 220.0 * 2 ** (semitone / 12)
    first = int(start * RATE)
    for n in range(min(int(length * RATE), len(samples) - first)):
        t = n / RATE
        envelope = min(1.0, t / 0.02) * math.exp(-3.0 * t / length)
        phase = 2 * math.pi * hz * t
        samples[first + n] += level * envelope * (math.sin(phase) + 0.3 * math.sin(2 * phase))


# --- generation ------------------------------------------------------------------------------------
def _digest(text: str) -> str:
    return hashlib.sha256("\0".join([*VOICE, *SOX_OUT, text]).encode()).hexdigest()


def _load_manifest(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def ensure_prompts(prompts_dir: Path, texts: Mapping[str, str] | None = None, workers: int = 4) -> Prompts:
    """Generate the prompts that are missing or whose text changed; return them all by name.

    `texts` overrides or adds spoken prompts (name -> text) on top of default_texts().
    """
    folder = Path(prompts_dir)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {**default_texts(), **(texts or {})}
    digests = {name: _digest(text) for name, text in wanted.items()}
    digests[HOLD_MUSIC] = _digest(HOLD_MUSIC_VERSION)
    manifest = _load_manifest(folder)
    stale = sorted(
        n for n, d in digests.items() if manifest.get(n) != d or not (folder / f"{n}.wav").exists()
    )
    speech = [n for n in stale if n != HOLD_MUSIC]
    if speech:
        for tool in TOOLS:  # fail before starting anything
            _require(tool)
    # espeak-ng and sox are separate processes: a few in parallel use both cores.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda name: say(wanted[name], folder / f"{name}.wav"), speech))
    if HOLD_MUSIC in stale:
        hold_music(folder / f"{HOLD_MUSIC}.wav")
    # only prompts that exist are recorded, so an interrupted run is completed next time
    manifest.update({name: digests[name] for name in stale})
    (folder / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True), "utf-8"
    )
    return Prompts(folder, tuple(sorted(digests)), stale)
