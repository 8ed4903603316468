"""Shared pieces of the understanding benchmarks (`dispatch.eval`, `knowledge_base.calibrate`): loading,
splitting, scaling."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from knowledge_base.matcher import Entry, KnowledgeBase


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def select(queries: list[dict[str, Any]], subset: str) -> list[dict[str, Any]]:
    """`all`, or one half of a deterministic split (`a`: even lines, `b`: odd lines)."""
    if subset == "a":
        return queries[0::2]
    if subset == "b":
        return queries[1::2]
    return queries


def synthetic_entries(base: list[Entry], total: int, seed: int = 12345) -> list[Entry]:
    """Extra entries made by recombining the real ones' questions, phrasings and keywords, so that an
    index of `total` entries has a realistic vocabulary and realistic posting lengths."""
    rng = random.Random(seed)
    answer_rng = random.Random(seed + 1)
    out: list[Entry] = []
    answers = [e.answer for e in base if e.answer]
    phrasings = [p for e in base for p in (e.question, *e.alternatives)]
    keywords = sorted({k for e in base for k in e.keywords})
    topics = sorted({e.topic for e in base if e.topic})
    for n in range(max(0, total - len(base))):
        a, b = rng.sample(phrasings, 2)
        cut_a, cut_b = rng.randint(1, max(1, len(a) - 1)), rng.randint(1, max(1, len(b) - 1))
        alts = tuple(
            x[: rng.randint(1, max(1, len(x) - 1))] + y[rng.randint(0, max(0, len(y) - 1)) :]
            for x, y in (rng.sample(phrasings, 2) for _ in range(3))
        )
        out.append(
            Entry(
                id=f"syn-{n:05d}",
                question=a[:cut_a] + b[cut_b:],
                alternatives=alts,
                answer=_splice(answer_rng, answers),
                keywords=tuple(rng.sample(keywords, min(4, len(keywords)))),
                department=None,
                topic=rng.choice(topics) if topics else None,
            )
        )
    return out


def _splice(rng: random.Random, texts: list[str]) -> str:
    """The head of one text joined to the tail of another (answers as long and as worded as real ones)."""
    if len(texts) < 2:
        return texts[0] if texts else ""
    a, b = rng.sample(texts, 2)
    return a[: rng.randint(1, len(a))] + b[rng.randint(0, len(b) - 1) :]


def scaled(kb: KnowledgeBase, total: int) -> KnowledgeBase:
    return KnowledgeBase(
        [*kb.entries, *synthetic_entries(kb.entries, total)],
        kb.threshold,
        kb.answerable_threshold,
        encoder=kb.encoder,
        vectors=getattr(kb, "vectors", None),
        ranker=kb.models,
    )
