"""Speech-to-text accuracy and cost on real recordings:
`python -m callcenter.asr.bench --refs FILE [--engine whisper|vosk|both] [--model PATH] [--beam N]`.

`--refs` is a JSON Lines file, one clip per line: {"audio": "clip.wav" (relative to the file),
"ref": "what was said"}. Every clip is transcribed twice: as it is (16 kHz) and through a simulated
telephone channel (8 kHz, 300-3 400 Hz, G.711 μ-law, what a call recording holds). Printed: the
character error rate overall and per clip, with and without the hotline-vocabulary correction, the
real-time factor (decoding time / audio time) and the process's memory before and after loading the
model. Both sides are compared after the same tidying: simplified characters, no punctuation or
spaces, numbers as digits. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from callcenter.asr.resample import Resampler
from callcenter.asr.transcriber import SpeechToText, read_channel
from callcenter.asr.vocabulary import corpus_cer, hotline_vocabulary
from callcenter.asr.whisper import WhisperTranscriber, packaged_model, tidy
from callcenter.asr.workers import load_engine
from callcenter.settings import AsrSettings
from core.chinese import fold, numerals_to_digits

Event = dict[str, Any]
PHONE_RATE = 8000
PHONE_BAND = (300.0, 3400.0)
MU = 255.0


def phone_channel(samples: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """A telephone channel: down to 8 kHz, band-limited to 300-3 400 Hz, 8-bit μ-law and back."""
    resampler = Resampler(rate, PHONE_RATE)
    x = np.concatenate([resampler.process(samples), resampler.flush()]).astype(np.float64) / 32768.0
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / PHONE_RATE)
    spectrum[(freqs < PHONE_BAND[0]) | (freqs > PHONE_BAND[1])] = 0
    x = np.clip(np.fft.irfft(spectrum, len(x)), -1.0, 1.0)
    companded = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    quantised = np.round(companded * 127.0) / 127.0  # 8 bits on the wire
    y = np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(MU)) / MU
    return (y * 32767.0).astype("<i2"), PHONE_RATE


def comparable(text: str) -> str:
    """Both sides alike: simplified, no punctuation or spaces, numbers as digits (四月 and 4月 agree)."""
    return numerals_to_digits(fold(tidy(text)))


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def load(
    engine: str, model: Path | None, beam: int, threads: int, vad: bool = True, compute_type: str = "int8"
) -> SpeechToText:
    """The engine as a transcription process loads it (the packaged Whisper model when no --model)."""
    if engine == "vosk" and model is None:
        raise SystemExit("--model PATH (a Vosk model folder) is needed for the vosk engine")
    packaged = engine == "whisper" and model is None
    path = packaged_model(AsrSettings().whisper_folder) if packaged else model
    spec = {"engine": engine, "path": str(path), "beam_size": beam, "threads": threads, "packaged": packaged}
    return load_engine({**spec, "vad": vad, "compute_type": compute_type})


def _decode(engine: SpeechToText, samples: np.ndarray, rate: int) -> tuple[str, float]:
    stream = engine.stream(rate)
    started = time.perf_counter()
    stream.accept_samples(samples)
    text = stream.finish().text
    return text, time.perf_counter() - started


def run_engine(name: str, engine: SpeechToText, clips: list[dict[str, Any]], base: Path) -> dict[str, Any]:
    vocabulary = hotline_vocabulary()
    refs = [comparable(c["ref"]) for c in clips]
    result: dict[str, Any] = {"engine": name}
    for channel in ("16k", "phone"):
        hyps, per_clip, decode, audio = [], [], 0.0, 0.0
        for clip, ref in zip(clips, refs, strict=True):
            rate, samples, _ = read_channel(base / clip["audio"])
            if channel == "phone":
                samples, rate = phone_channel(samples, rate)
            text, seconds = _decode(engine, samples, rate)
            hyp = comparable(text)
            hyps.append(hyp)
            decode += seconds
            audio += len(samples) / rate
            per_clip.append({"audio": clip["audio"], "cer": corpus_cer([ref], [hyp]), "ref": ref, "hyp": hyp})
        corrected = [vocabulary.correct(h) for h in hyps]
        human = [i for i, c in enumerate(clips) if c.get("human_label")]
        result[channel] = {
            "cer": corpus_cer(refs, hyps),
            # clips whose reference is a human label (the others carry a published model output)
            "cer_human_labels": corpus_cer([refs[i] for i in human], [hyps[i] for i in human]),
            "cer_vocabulary": corpus_cer(refs, corrected),
            "rtf": round(decode / max(audio, 1e-9), 3),
            "audio_seconds": round(audio, 1),
            "clips": per_clip,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=Path, required=True, help="JSON Lines: audio, ref")
    parser.add_argument("--engine", choices=("whisper", "vosk", "both"), default="whisper")
    parser.add_argument("--model", type=Path, help="model folder (Vosk; or a faster-whisper folder of yours)")
    parser.add_argument("--vosk-model", type=Path, help="the Vosk model with --engine both")
    parser.add_argument("--beam", type=int, default=5, help="Whisper beam size")
    parser.add_argument("--threads", type=int, default=1, help="Whisper CPU threads")
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 compute type (int8, float32)")
    parser.add_argument("--no-vad", action="store_true", help="Whisper without voice-activity filtering")
    parser.add_argument("--opening", action="store_true", help="also the opening-statement delay")
    parser.add_argument("--limit", type=int, default=0, help="only the first N clips")
    args = parser.parse_args(argv)
    lines = args.refs.read_text(encoding="utf-8").splitlines()
    clips = [json.loads(line) for line in lines if line.strip()]
    clips = clips[: args.limit] if args.limit else clips
    chosen = ("whisper", "vosk") if args.engine == "both" else (args.engine,)
    report: dict[str, Any] = {
        "clips": len(clips),
        "reference_chars": sum(len(comparable(c["ref"])) for c in clips),
    }
    for name in chosen:
        # --model is the chosen engine's; with both engines the Vosk model comes by --vosk-model
        model = args.model if args.engine == name else (args.vosk_model if name == "vosk" else None)
        before = _rss_mb()
        vad, compute = not args.no_vad, args.compute_type
        engine = load(name, model, args.beam, args.threads, vad=vad, compute_type=compute)
        loaded = _rss_mb()
        figures = run_engine(name, engine, clips, args.refs.parent)
        if args.opening and isinstance(engine, WhisperTranscriber):
            figures["opening"] = opening_delays(engine, clips, args.refs.parent)
        figures.update({"rss_before_mb": before, "rss_loaded_mb": loaded, "rss_peak_mb": _rss_mb()})
        for channel in ("16k", "phone"):
            for clip in figures[channel]["clips"]:
                print(
                    f"{name} {channel} {clip['audio']} cer={clip['cer']:.3f} | {clip['hyp']}", file=sys.stderr
                )
        report[name] = figures
    summary = {
        name: {
            **{ch: {k: v for k, v in report[name][ch].items() if k != "clips"} for ch in ("16k", "phone")},
            **({"opening": report[name]["opening"]} if "opening" in report[name] else {}),
        }
        for name in chosen
    }
    print(json.dumps({**report, "summary": summary}, ensure_ascii=False))
    return 0


def _stream_opening(
    engine: WhisperTranscriber, audio: np.ndarray, rate: int, uid: str
) -> dict[str, Any] | None:
    """One call streamed in real time (20 ms frames) through the opening-statement path: its event."""
    import threading

    from callcenter.asr.opening import OpeningStatements

    got: list[dict[str, Any]] = []
    done = threading.Event()

    def emit(event: dict[str, Any]) -> None:
        got.append(event)
        done.set()

    opening = OpeningStatements(engine, 1, emit)
    detector = opening.detector(rate)
    frame, started = rate // 50, time.monotonic()
    for n, begin in enumerate(range(0, len(audio), frame)):
        statement = detector.accept(audio[begin : begin + frame])
        if statement is not None:
            opening.submit(uid, statement)
        time.sleep(max(0.0, started + (n + 1) * 0.02 - time.monotonic()))
        if done.is_set():
            break
    done.wait(60)
    opening.shutdown()
    return got[0] if got and got[0]["type"] == "opening" else None


def opening_delays(engine: WhisperTranscriber, clips: list[dict[str, Any]], base: Path) -> dict[str, Any]:
    """Each clip through the phone channel, with ring-back silence before and a pause after, streamed
    in real time into the opening-statement path: the delay from the end of speech to the text (as
    the live process reports it) and the text's error rate."""
    delays, refs, hyps = [], [], []
    for clip in clips:
        rate, samples, _ = read_channel(base / clip["audio"])
        samples, rate = phone_channel(samples, rate)
        quiet = np.zeros(rate, dtype="<i2")
        event = _stream_opening(engine, np.concatenate([quiet, samples, quiet, quiet]), rate, clip["audio"])
        if event is not None:
            delays.append(event["delay_seconds"])
            refs.append(comparable(clip["ref"]))
            hyps.append(comparable(event["text"]))
    ordered = sorted(delays)
    return {
        "statements": len(delays),
        "delay_p50_seconds": ordered[len(ordered) // 2] if ordered else None,
        "delay_max_seconds": ordered[-1] if ordered else None,
        "cer": corpus_cer(refs, hyps) if refs else None,
    }


if __name__ == "__main__":
    raise SystemExit(main())
