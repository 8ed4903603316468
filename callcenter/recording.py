"""Call recordings: the citizen on the left channel, the hotline side on the right.

pjsua2's recorder writes mono at the bridge's 8 kHz, so a worker records the two sides into two part
files and joins them into one stereo WAV when the citizen hangs up: the citizen's channel can then be
transcribed alone. The file is fsynced before its size and checksum are reported, so a record never
points at audio that a power cut could still lose.
"""

from __future__ import annotations

import hashlib
import os
import wave
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import numpy as np

CITIZEN_CHANNEL = 0
HOTLINE_CHANNEL = 1


@dataclass
class TwoChannelRecording:
    path: Path
    citizen_part: Path
    hotline_part: Path

    @classmethod
    def begin(
        cls, recordings_dir: Path, uid: str, when: datetime | None = None, zone: tzinfo | None = None
    ) -> TwoChannelRecording:
        """Filed under the hotline's local date (`zone`), not the machine's: a call at 07:30 in
        Beijing belongs to that day although it is still yesterday in UTC."""
        day = (when or datetime.now(zone)).strftime("%Y-%m-%d")
        folder = recordings_dir / day
        parts = recordings_dir / ".parts"
        folder.mkdir(parents=True, exist_ok=True)
        parts.mkdir(parents=True, exist_ok=True)
        return cls(folder / f"{uid}.wav", parts / f"{uid}-citizen.wav", parts / f"{uid}-hotline.wav")

    def finish(self) -> dict[str, Any] | None:
        """Join the parts into the stereo file; None when nothing was recorded."""
        if not self.citizen_part.exists():
            return None
        rate, left = read_mono(self.citizen_part)
        right = read_mono(self.hotline_part)[1] if self.hotline_part.exists() else np.zeros(0, np.int16)
        frames = max(len(left), len(right))
        stereo = np.zeros((frames, 2), dtype="<i2")
        stereo[: len(left), CITIZEN_CHANNEL] = left
        stereo[: len(right), HOTLINE_CHANNEL] = right
        write_durably(self.path, stereo, rate)
        for part in (self.citizen_part, self.hotline_part):
            part.unlink(missing_ok=True)
        return describe(self.path)


def read_mono(path: Path) -> tuple[int, np.ndarray]:
    """A 16-bit WAV as int16 samples; a header the recorder never finalised counts what is there."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
    except (wave.Error, EOFError):
        rate = 8000
    start = data.find(b"data")
    samples = data[start + 8 :] if start >= 0 else b""
    samples = samples[: len(samples) - len(samples) % 2]
    return rate, np.frombuffer(samples, dtype="<i2")


def write_durably(path: Path, stereo: np.ndarray, rate: int) -> None:
    partial = path.with_suffix(".wav.partial")
    with open(partial, "wb") as handle:
        with wave.open(handle, "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(stereo.tobytes())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wav_seconds(path: Path | str) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / float(wav.getframerate())


def describe(path: Path) -> dict[str, Any]:
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "sha256": sha256_of(path),
        "seconds": round(wav_seconds(path), 3),
    }


def channel_levels(path: Path) -> list[float]:
    """RMS level in dBFS of each channel (a silent channel gives -inf)."""
    with wave.open(str(path), "rb") as wav:
        channels = wav.getnchannels()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, channels)
    levels = []
    for index in range(channels):
        rms = float(np.sqrt(np.mean(samples[:, index].astype(np.float64) ** 2))) if len(samples) else 0.0
        levels.append(20 * np.log10(rms / 32768.0) if rms > 0 else float("-inf"))
    return levels
