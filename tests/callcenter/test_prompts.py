"""Generated voice prompts: format, loudness, durations, idempotence, and clear errors without the tools."""

from __future__ import annotations

import math
import shutil
import struct
import wave
from pathlib import Path

import pytest

from callcenter import prompts as prompts_module
from callcenter.prompts import Prompts, PromptToolMissing, concat, ensure_prompts, hold_music, say

needs_tools = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox not installed (apt-get install espeak-ng sox)",
)


def _audio(path: Path) -> tuple[tuple[int, int, int], float, float]:
    """(channels, sample width, rate), duration in s, RMS relative to full scale."""
    with wave.open(str(path), "rb") as wav:
        params = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
        data = wav.readframes(wav.getnframes())
        duration = wav.getnframes() / wav.getframerate()
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    rms = math.sqrt(sum(s * s for s in samples) / max(len(samples), 1)) / 32768
    return params, duration, rms


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Prompts:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox not installed (apt-get install espeak-ng sox)")
    return ensure_prompts(tmp_path_factory.mktemp("prompts"))


@needs_tools
def test_every_prompt_is_8khz_mono_16bit_and_audible(generated: Prompts) -> None:
    expected = {"welcome", "hold_music", "queue_full", "callback_registered", "transferring", "goodbye"}
    expected |= {f"position_{n}" for n in range(1, 61)} | {f"digit_{d}" for d in range(10)}
    expected |= {"survey_intro", "survey_question", "survey_no_input", "survey_thanks"}
    assert expected <= set(generated.names)
    for name in generated.names:
        params, duration, rms = _audio(generated.path(name))
        assert params == (1, 2, 8000), name
        assert rms > 0.02, f"{name} is (nearly) silent: rms {rms:.4f}"
        assert duration > 0.2, name


@needs_tools
def test_durations_are_plausible(generated: Prompts) -> None:
    seconds = {name: _audio(generated.path(name))[1] for name in ("welcome", "digit_7", "hold_music")}
    assert 4 < seconds["welcome"] < 20  # a sentence of 30 characters
    assert 0.2 < seconds["digit_7"] < 1.5  # one syllable
    assert 19.9 < seconds["hold_music"] < 20.1
    assert generated.position(3) == generated.path("position_3")
    assert generated.position(500) == generated.path("position_60")
    assert generated.digits("2026-0815") == [generated.path(f"digit_{d}") for d in "20260815"]
    with pytest.raises(KeyError):
        generated.path("no_such_prompt")


@needs_tools
def test_second_run_regenerates_nothing_and_changed_text_regenerates(generated: Prompts) -> None:
    mtimes = {name: generated.path(name).stat().st_mtime_ns for name in generated.names}
    again = ensure_prompts(generated.folder)
    assert again.generated == []
    assert {name: again.path(name).stat().st_mtime_ns for name in again.names} == mtimes

    changed = ensure_prompts(generated.folder, {"goodbye": "再见。"})
    assert changed.generated == ["goodbye"]
    assert _audio(changed.path("goodbye"))[1] < _audio(changed.path("callback_registered"))[1]
    changed.path("transferring").unlink()  # a lost file is made again too
    assert ensure_prompts(generated.folder, {"goodbye": "再见。"}).generated == ["transferring"]


@needs_tools
def test_say_and_concat(tmp_path: Path) -> None:
    first = say("您的工单已办结。", tmp_path / "a.wav")
    second = hold_music(tmp_path / "b.wav", seconds=2)
    joined = concat([first, second], tmp_path / "ab.wav")
    assert _audio(joined)[0] == (1, 2, 8000)
    assert _audio(joined)[1] == pytest.approx(_audio(first)[1] + 2, abs=0.01)
    other = tmp_path / "stereo.wav"
    with wave.open(str(other), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0" * 400)
    with pytest.raises(ValueError, match=r"stereo\.wav"):
        concat([first, other], tmp_path / "bad.wav")


@pytest.mark.parametrize(("tool", "package"), [("espeak-ng", "espeak-ng"), ("sox", "sox")])
def test_missing_tool_names_the_debian_package(
    tool: str, package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the other tool "exists": the error must come from the missing one, before anything runs
    monkeypatch.setattr(
        prompts_module.shutil, "which", lambda cmd: None if cmd == tool else f"/usr/bin/{cmd}"
    )
    with pytest.raises(PromptToolMissing, match=f"apt-get install {package}"):
        ensure_prompts(tmp_path)
    with pytest.raises(PromptToolMissing, match=tool):
        say("你好", tmp_path / "x.wav")
