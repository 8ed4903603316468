"""Speech to text with Vosk (issue 6): after-call transcripts, live text while the citizen talks.

Modules: `transcriber` (model, files, streams), `resample`, `vocabulary` (hotline-word correction),
`models` (the call_transcripts table, which is also the transcription queue), `service` (background
transcription in worker processes), `live` (the live recogniser process), `client` (what a media
worker uses to stream audio to it), `runtime` (starts both inside `hotline serve`), `bench`.

Imports here are lazy: a media worker imports `callcenter.asr.client` and must not load numpy or Vosk.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Transcriber": "transcriber",
    "Transcript": "transcriber",
    "Word": "transcriber",
    "Segment": "transcriber",
    "Stream": "transcriber",
    "ModelMissing": "transcriber",
    "ModelBroken": "transcriber",
    "LiveClient": "client",
    "live_socket_path": "client",
    "TranscriptionService": "service",
    "transcript_for_call": "service",
    "transcript_for_ticket": "service",
    "SpeechRuntime": "runtime",
    "start": "runtime",
    "stop": "runtime",
    "asr_status": "runtime",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'callcenter.asr' has no attribute {name!r}")
    return getattr(importlib.import_module(f"callcenter.asr.{_EXPORTS[name]}"), name)
