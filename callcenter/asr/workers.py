"""What runs inside the transcription worker processes: the model, loaded once per process by the pool's
initializer, and the jobs. Kept apart from `service` so a spawned worker imports numpy and Vosk only,
not the web application."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from callcenter.asr.transcriber import ModelError, ModelMissing, SpeechToText, Transcriber
from callcenter.lifeline import follow_parent

# What a worker loads: {"engine": "vosk"|"whisper", "path": folder, and the engine's options}.
EngineSpec = dict[str, Any]

AFTER_CALL_NICENESS = 5
_transcriber: SpeechToText | None = None
_load_error: dict[str, str] | None = None


def model_error(exc: ModelError) -> dict[str, str]:
    kind = "missing" if isinstance(exc, ModelMissing) else "broken"
    return {"kind": kind, "reason": exc.reason, "path": exc.path, "message": str(exc)}


def load_engine(spec: EngineSpec) -> SpeechToText:
    if spec["engine"] == "whisper":
        from callcenter.asr.whisper import WhisperTranscriber

        return WhisperTranscriber(
            spec["path"],
            beam_size=spec["beam_size"],
            threads=spec["threads"],
            packaged=spec["packaged"],
            vad=spec.get("vad", True),
            compute_type=spec.get("compute_type", "int8"),
        )
    return Transcriber(spec["path"])


def init_worker(spec: EngineSpec) -> None:
    """Pool initializer: a failure is remembered, not raised (raising would break the whole pool)."""
    global _transcriber, _load_error
    follow_parent()  # a worker whose hotline died exits (it would hold the parent's pipes open)
    # After-call transcripts can wait; the live process (partials, opening statements) cannot: it
    # gets the CPU first when both want it.
    with contextlib.suppress(OSError):
        os.nice(AFTER_CALL_NICENESS)
    try:
        _transcriber = load_engine(spec)
    except ModelError as exc:
        _load_error = model_error(exc)


def probe() -> dict[str, Any]:
    if _transcriber is None:
        return {"ok": False, "model_error": _load_error}
    return {"ok": True, "model_rate": _transcriber.model_rate, "pid": os.getpid()}


def transcribe(path: str, channel: int | None) -> dict[str, Any]:
    """{"transcript": {...}} or {"error": "..."} (a bad recording) or {"model_error": {...}}."""
    if _transcriber is None:
        return {"model_error": _load_error}
    try:
        return {"transcript": _transcriber.transcribe_file(path, channel).to_dict()}
    except FileNotFoundError:
        return {"error": f"recording not found: {path}", "permanent": True}
    except (OSError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "permanent": isinstance(exc, ValueError)}


def make_pool(spec: EngineSpec, processes: int) -> ProcessPoolExecutor:
    # spawn, not fork: the web process has threads, an event loop and open database connections.
    return ProcessPoolExecutor(
        max_workers=processes,
        mp_context=get_context("spawn"),
        initializer=init_worker,
        initargs=(spec,),
    )
