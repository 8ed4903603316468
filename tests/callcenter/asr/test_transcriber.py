"""The transcriber drives the real Vosk decoder with the synthetic model: files at 8 and 16 kHz, the
citizen's channel of a call recording, silence, up-sampling for a 16 kHz model, model errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from callcenter.asr import transcriber as tr
from callcenter.asr.resample import Resampler, resample
from callcenter.asr.transcriber import ModelBroken, ModelMissing, Segment, Transcriber, join_words
from callcenter.recording import CITIZEN_CHANNEL, HOTLINE_CHANNEL
from tests.callcenter.asr.conftest import silence, write_wav

VOCABULARY = {
    "你好",
    "投诉",
    "咨询",
    "社保",
    "公积金",
    "停水",
    "停电",
    "噪音",
    "举报",
    "谢谢",
    "满意",
    "工单",
}


@pytest.fixture(scope="module")
def transcriber(tiny_model: Path) -> Transcriber:
    return Transcriber(tiny_model)


def assert_words(result: tr.Transcript, seconds: float) -> None:
    assert result.text, "speech gave no text"
    assert " " not in result.text
    assert result.text == "".join(w.word for w in result.words)
    assert {w.word for w in result.words} <= VOCABULARY
    for word in result.words:
        assert 0 <= word.start <= word.end <= seconds + 0.05
        assert 0 < word.conf <= 1
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)


def test_8khz_mono_speech(transcriber: Transcriber, speech: dict, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "mono8.wav", 8000, speech[8000])
    result = transcriber.transcribe_file(path)
    assert (result.input_rate, result.model_rate, result.channel) == (8000, 8000, None)
    assert result.model_path == str(transcriber.model_path)
    assert_words(result, result.audio_seconds)
    assert json.loads(json.dumps(result.to_dict()))["words"][0].keys() == {"word", "start", "end", "conf"}


def test_16khz_mono_is_down_sampled_for_an_8khz_model(
    transcriber: Transcriber, speech: dict, tmp_path: Path
) -> None:
    result = transcriber.transcribe_file(write_wav(tmp_path / "mono16.wav", 16000, speech[16000]))
    assert (result.input_rate, result.model_rate) == (16000, 8000)
    assert_words(result, result.audio_seconds)


def test_silence_gives_empty_text(transcriber: Transcriber, tmp_path: Path) -> None:
    result = transcriber.transcribe_file(write_wav(tmp_path / "silence.wav", 8000, silence(8000, 3)))
    assert (result.text, result.words, result.audio_seconds) == ("", [], 3.0)


@pytest.mark.parametrize(("speaker", "expect_text"), [(CITIZEN_CHANNEL, True), (HOTLINE_CHANNEL, False)])
def test_stereo_recording_uses_the_citizen_channel_only(
    transcriber: Transcriber, speech: dict, tmp_path: Path, speaker: int, expect_text: bool
) -> None:
    talk, quiet = speech[8000], silence(8000, len(speech[8000]) / 8000)
    channels = (talk, quiet) if speaker == CITIZEN_CHANNEL else (quiet, talk)
    path = write_wav(tmp_path / "call.wav", 8000, *channels)
    result = transcriber.transcribe_file(path)
    assert result.channel == CITIZEN_CHANNEL
    assert bool(result.text) is expect_text
    # The operator's channel can still be asked for explicitly.
    assert bool(transcriber.transcribe_file(path, channel=HOTLINE_CHANNEL).text) is not expect_text


def test_a_16khz_model_gets_8khz_audio_up_sampled(
    model_16k: Path, speech: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []
    original = tr.Stream._feed

    def spy(self: tr.Stream, samples: np.ndarray) -> str | Segment:
        seen.append((self.model_rate, len(samples)))
        return original(self, samples)

    monkeypatch.setattr(tr.Stream, "_feed", spy)
    t16 = Transcriber(model_16k)
    assert t16.model_rate == 16000
    result = t16.transcribe_file(write_wav(tmp_path / "tel.wav", 8000, speech[8000]))
    assert (result.input_rate, result.model_rate) == (8000, 16000)
    fed = sum(n for _, n in seen)
    assert {rate for rate, _ in seen} == {16000}
    assert fed == 2 * len(speech[8000])  # twice the samples: the recogniser heard 16 kHz audio
    assert_words(result, result.audio_seconds)


def test_the_16khz_model_refuses_8khz_audio_without_resampling(model_16k: Path) -> None:
    """Guards the test above: up-sampling is needed, Vosk does not do it by itself."""
    from vosk import KaldiRecognizer

    recogniser = KaldiRecognizer(Transcriber(model_16k).model, 8000)
    with pytest.raises(Exception, match="Failed to process waveform"):
        recogniser.AcceptWaveform(b"\x10\x20" * 8000)


def test_streaming_gives_partials_and_segments(transcriber: Transcriber, speech: dict) -> None:
    audio = np.concatenate([speech[8000], silence(8000, 2.5), speech[8000]])
    stream = transcriber.stream(8000)
    partials, segments = [], []
    for begin in range(0, len(audio), 160):  # 20 ms frames, as a media port delivers them
        out = stream.accept(audio[begin : begin + 160].tobytes())
        (segments if isinstance(out, Segment) else partials).append(out)
    segments.append(stream.finish())
    assert any(partials)
    assert len([s for s in segments if s.text]) >= 2  # the pause ended the first phrase
    assert stream.seconds == pytest.approx(len(audio) / 8000)


def test_missing_model_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match=str(tmp_path / "nowhere")):
        Transcriber(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelMissing, match="not a Vosk model folder"):
        Transcriber(tmp_path / "empty")


def test_broken_model_names_the_path(broken_model: Path) -> None:
    with pytest.raises(ModelBroken, match=str(broken_model)):
        Transcriber(broken_model)


def test_join_words_leaves_no_spaces_between_chinese() -> None:
    assert join_words(["我", "想", "咨询", "[unk]", "公积金"]) == "我想咨询公积金"
    assert join_words(["WiFi", "密码", "abc", "123"]) == "WiFi密码abc 123"


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (44100, 16000)])
def test_resampler_keeps_a_tone_and_works_in_chunks(src: int, dst: int) -> None:
    t = np.arange(src) / src
    tone = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    whole = resample(tone, src, dst)
    expected = 8000 * np.sin(2 * np.pi * 1000 * np.arange(dst) / dst)
    assert len(whole) == dst
    assert np.sqrt(np.mean((whole[100:-100] - expected[100:-100]) ** 2)) < 80  # under 1 % of the tone
    chunked = Resampler(src, dst)
    parts = [chunked.process(tone[i : i + 160]) for i in range(0, len(tone), 160)]
    assert np.array_equal(np.concatenate([*parts, chunked.flush()]), whole)


def test_resampler_removes_what_the_lower_rate_cannot_carry() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    high = (8000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16)  # above 4 kHz: must not alias into 8 kHz
    assert np.abs(resample(high, 16000, 8000)[100:-100]).max() < 200
