"""Understanding benchmark: `python -m hotline.benches.understanding [--entries 10000] [--embed-sample 300]`.

Prints, on this machine, as one JSON object on the last line:

- `embed_one_ms`: embedding one utterance not seen before (p50, p99), and the same utterances
  segmented by jieba as a baseline of this run (the machine is shared: compare the two);
- `match_ms`: `KnowledgeBase.match` (hybrid: lexical + dense + the learned ranker) with `--entries`
  entries (the synthetic ones carry embeddings mixed from real ones, not embedded: that is timed
  below), utterances already embedded (as when the router embedded them first), p50 and p99;
  beside it the lexical-only matcher on the same entries;
- `classify_ms`: `Router.classify` (rules + trained model) of a new utterance, p50 and p99;
- `embed_entries`: seconds to embed `--embed-sample` entries (question and alternatives), and the
  time for `--entries` extrapolated from it (the embedding is linear in the texts); a second build of
  the same entries (all cached, the incremental case) is timed too;
- `memory_mb`: resident memory of the process before and after loading the models and the index.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from core import semantics
from dispatch.routing import Router
from knowledge_base import text as tx
from knowledge_base.bench import load_jsonl, synthetic_entries
from knowledge_base.matcher import Entry, EntryVectors, KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]
DEMO_KB = ROOT / "knowledge_base" / "demo_kb.jsonl"
UTTERANCES = ROOT / "knowledge_base" / "tuning" / "t1_queries.jsonl"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _percentiles(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "p50": round(statistics.median(times) * 1000, 2),
        "p99": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1000, 2),
    }


def _timed(func: Any, items: list[str]) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        func(item)
        out.append(time.perf_counter() - start)
    return out


def _borrowed_vectors(
    base: list[Entry], big: list[Entry], encoder: semantics.Encoder
) -> dict[str, EntryVectors]:
    """Embeddings for the synthetic entries without embedding them (that is timed separately): each
    phrasing the normalised mean of two real ones, so the index has the size and spread of a real one."""
    real = KnowledgeBase(base, encoder=encoder)
    pool = np.vstack([v.phrasings for v in real.vectors.values()])
    rng = np.random.default_rng(12345)
    out: dict[str, EntryVectors] = dict(real.vectors)

    def mix(rows: np.ndarray, count: int) -> np.ndarray:
        picked = rows[rng.integers(0, len(rows), (count, 2))].mean(axis=1)
        return (picked / np.linalg.norm(picked, axis=1, keepdims=True)).astype(np.float32)

    for e in big:
        if e.id not in out:
            out[e.id] = EntryVectors(mix(pool, 1 + len(e.alternatives)))
    return out


def _build_twice(sample: list[Entry], encoder: semantics.Encoder) -> tuple[float, float]:
    """Seconds to index `sample` from nothing (an empty embedding cache, the texts as written: a marker
    added to make them new would lengthen them), then again with every text cached (the incremental
    case)."""
    saved = os.environ.get(semantics.CACHE_VARIABLE)
    with tempfile.TemporaryDirectory() as folder:
        os.environ[semantics.CACHE_VARIABLE] = str(Path(folder) / "embeddings.sqlite")
        try:
            times = []
            for _ in range(2):
                start = time.perf_counter()
                KnowledgeBase(sample, encoder=encoder)
                times.append(time.perf_counter() - start)
        finally:
            if saved is None:
                os.environ.pop(semantics.CACHE_VARIABLE, None)
            else:
                os.environ[semantics.CACHE_VARIABLE] = saved
    return times[0], times[1]


def run(entries: int, embed_sample: int) -> dict[str, Any]:
    before = _rss_mb()
    encoder = semantics.encoder()
    if encoder is None:
        raise SystemExit("the embedding model is not available: " + semantics.status().reason)
    base = [Entry.from_mapping(row) for row in load_jsonl(DEMO_KB)]
    texts = [q["text"] for q in load_jsonl(UTTERANCES)]
    # each utterance made new, so the cache does not answer
    fresh = [f"{t}（{n}）" for n, t in enumerate(texts[:200])]
    embed = _timed(encoder.query, fresh)
    segment = _timed(tx.segment, fresh)

    sample = synthetic_entries(base, embed_sample + len(base), seed=7)[:embed_sample]
    embed_seconds, cached_seconds = _build_twice(sample, encoder)

    big = [*base, *synthetic_entries(base, entries)]
    hybrid = KnowledgeBase(big, encoder=encoder, vectors=_borrowed_vectors(base, big, encoder))
    lexical = KnowledgeBase(big, encoder=None, ranker=hybrid.models)
    after = _rss_mb()
    queries = texts[:200]
    for q in queries:
        hybrid.embed(q)  # embedded once, as the router does first
    hybrid_times = _timed(hybrid.match, queries)
    lexical_times = _timed(lexical.match, queries)
    router = Router()
    classify = _timed(router.classify, [f"{t}（{n}）" for n, t in enumerate(texts[200:300])])
    return {
        "encoder": encoder.version,
        "embed_one_ms": _percentiles(embed),
        "baseline_jieba_segment_ms": _percentiles(segment),
        "match_ms": {
            "entries": len(big),
            "hybrid": _percentiles(hybrid_times),
            "lexical": _percentiles(lexical_times),
        },
        "classify_ms": _percentiles(classify),
        "embed_entries": {
            "sample": embed_sample,
            "seconds": round(embed_seconds, 2),
            "per_entry_ms": round(embed_seconds / embed_sample * 1000, 2),
            "extrapolated_seconds_for": {str(entries): round(embed_seconds / embed_sample * entries, 1)},
            "again_all_cached_seconds": round(cached_seconds, 2),
        },
        "memory_mb": {"before": before, "after_models_and_index": after},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hotline.benches.understanding", description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--embed-sample", type=int, default=300)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.entries, args.embed_sample), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
