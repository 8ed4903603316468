"""Two-channel recordings: the parts joined into one stereo WAV, fsynced, measured and checksummed."""

from __future__ import annotations

import hashlib
import wave
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from callcenter.recording import TwoChannelRecording, channel_levels


def write_mono(path: Path, samples: np.ndarray, finalised: bool = True) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(samples.astype("<i2").tobytes())
    if not finalised:  # what a recorder killed mid-call leaves: a header claiming no data
        data = bytearray(path.read_bytes())
        data[40:44] = (0).to_bytes(4, "little")
        path.write_bytes(bytes(data))


def tone(seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return amplitude * 32767 * np.sin(2 * np.pi * 1000 * t)


def test_the_sides_become_the_two_channels(tmp_path: Path) -> None:
    rec = TwoChannelRecording.begin(tmp_path, "call-1")
    write_mono(rec.citizen_part, tone(3.0, 0.3))
    write_mono(rec.hotline_part, tone(2.5, 0.03))
    summary = rec.finish()
    assert summary is not None
    path = Path(summary["path"])
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
    assert summary["seconds"] == 3.0  # the longer side sets the length; the shorter is padded
    assert summary["bytes"] == path.stat().st_size
    assert summary["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    citizen, hotline = channel_levels(path)
    assert abs(citizen - (-13.5)) < 0.3 and hotline < citizen - 15
    assert not rec.citizen_part.exists() and not rec.hotline_part.exists()


def test_a_part_with_an_unfinished_header_still_gives_its_audio(tmp_path: Path) -> None:
    rec = TwoChannelRecording.begin(tmp_path, "call-2")
    write_mono(rec.citizen_part, tone(1.0, 0.3), finalised=False)
    summary = rec.finish()
    assert summary is not None and summary["seconds"] == 1.0
    assert channel_levels(Path(summary["path"]))[1] == float("-inf")  # no hotline part: a silent channel


def test_no_recording_when_nothing_was_recorded(tmp_path: Path) -> None:
    assert TwoChannelRecording.begin(tmp_path, "call-3").finish() is None


def test_recordings_are_filed_under_the_hotlines_local_date(tmp_path: Path) -> None:
    # 07:30 in Beijing is still the day before in UTC: the recording belongs to the Beijing day.
    beijing = ZoneInfo("Asia/Shanghai")
    morning = datetime(2026, 11, 17, 7, 30, tzinfo=beijing)
    rec = TwoChannelRecording.begin(tmp_path, "call-4", when=morning)
    assert rec.path.parent.name == "2026-11-17"
    assert morning.astimezone(UTC).date().isoformat() == "2026-11-16"
    today = TwoChannelRecording.begin(tmp_path, "call-5", zone=beijing)
    assert today.path.parent.name == datetime.now(beijing).date().isoformat()


def test_the_worker_takes_the_hotlines_time_zone() -> None:
    from callcenter.worker import parse_args

    args = ["--name", "w", "--sip-port", "1", "--rtp-port", "2", "--proxy", "sip:x", "--socket", "s"]
    args += ["--recordings", "r", "--pjsip-log", "l", "--timezone", "Asia/Urumqi"]
    assert parse_args(args).timezone == "Asia/Urumqi"
