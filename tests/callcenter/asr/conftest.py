"""Fixtures of the speech tests: the synthetic Vosk model (never copied into the project), variants of
it in tmp, and test audio (espeak-ng Mandarin through sox when installed, else synthetic bursts)."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED

TINY_MODEL = SHARED / "models" / "vosk-tiny-test"
SENTENCE = "你好，我想咨询一下公积金怎么提取，我们小区停水了"


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    if not (TINY_MODEL / "am" / "final.mdl").is_file():
        pytest.skip(
            f"synthetic Vosk model not found at {TINY_MODEL} (needs the shared folder next to the repo)"
        )
    return TINY_MODEL


@pytest.fixture(scope="session")
def model_16k(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test model told it was trained at 16 kHz: 8 kHz input must be up-sampled for it."""
    target = tmp_path_factory.mktemp("model16") / "vosk-tiny-16k"
    shutil.copytree(tiny_model, target)
    conf = target / "conf" / "mfcc.conf"
    conf.write_text(conf.read_text().replace("--sample-frequency=8000", "--sample-frequency=16000"))
    return target


@pytest.fixture(scope="session")
def broken_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("broken") / "vosk-broken"
    shutil.copytree(tiny_model, target)
    (target / "am" / "final.mdl").write_text("this is not a Kaldi model\n")
    return target


def write_wav(path: Path, rate: int, *channels: np.ndarray) -> Path:
    length = max(len(c) for c in channels)
    frames = np.zeros((length, len(channels)), dtype="<i2")
    for index, channel in enumerate(channels):
        frames[: len(channel), index] = channel
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(len(channels))
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames.tobytes())
    return path


def bursts(rate: int, seconds: float = 3.0, seed: int = 1) -> np.ndarray:
    """Loud noise bursts with pauses: decodes as words with the synthetic model."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    envelope = (np.sin(2 * np.pi * 1.2 * t) > -0.2).astype(float)
    return (rng.standard_normal(len(t)) * envelope * 5000).clip(-32000, 32000).astype(np.int16)


def _espeak(rate: int, folder: Path) -> np.ndarray | None:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        return None
    raw, out = folder / "espeak.wav", folder / f"speech-{rate}.wav"
    try:
        subprocess.run(["espeak-ng", "-v", "cmn", "-w", str(raw), SENTENCE], check=True, capture_output=True)
        subprocess.run(
            [
                "sox",
                str(raw),
                "-r",
                str(rate),
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                "-t",
                "wavpcm",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, OSError):
        return None
    with wave.open(str(out), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").copy()


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[int, np.ndarray]:
    """Mandarin test speech at 8 and 16 kHz as int16 samples."""
    folder = tmp_path_factory.mktemp("speech")
    made = {rate: _espeak(rate, folder) for rate in (8000, 16000)}
    return {rate: samples if samples is not None else bursts(rate) for rate, samples in made.items()}


def silence(rate: int, seconds: float) -> np.ndarray:
    return np.zeros(int(rate * seconds), dtype=np.int16)
