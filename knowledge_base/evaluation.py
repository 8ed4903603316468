"""The knowledge base's own figures on a set of utterances with expected answers: top-1/top-3 per kind,
confident answers that are right, answerable ones answered confidently and rightly, unanswerable ones
answered confidently, and the latency of `match` on a scaled copy. `python -m knowledge_base.eval`
prints them; `python -m dispatch.eval` adds the router's (category, department, emergencies), which
sit above the knowledge base."""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.figures import ratio
from knowledge_base.bench import load_jsonl, scaled, select
from knowledge_base.matcher import Hit, KnowledgeBase


@dataclass
class KbTally:
    answerable: int = 0
    top1: int = 0
    top3: int = 0
    negatives: int = 0
    false_positives: int = 0
    confident: int = 0
    confident_right: int = 0
    per_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    failures: list[str] = field(default_factory=list)

    def add(self, q: dict[str, Any], hits: list[Hit]) -> None:
        expected = q.get("expected_kb_id")
        ids = [h.entry_id for h in hits]
        first_confident = bool(hits and hits[0].confident)
        if expected:
            self.answerable += 1
            stats = self.per_kind[q.get("kind", "?")]  # n, top1, top3
            ok1, ok3 = bool(ids and ids[0] == expected), expected in ids
            self.top1 += ok1
            self.top3 += ok3
            stats[0] += 1
            stats[1] += ok1
            stats[2] += ok3
            if not ok1:
                self.failures.append(
                    f"MISS  [{q.get('kind')}] want {expected} got {ids} :: {q['text']} ({q.get('notes')})"
                )
        else:
            self.negatives += 1
            if first_confident:
                self.false_positives += 1
                self.failures.append(
                    f"FALSE [{q.get('kind')}] claimed {ids[0]} :: {q['text']} ({q.get('notes')})"
                )
        if first_confident:
            self.confident += 1
            self.confident_right += bool(expected and ids[0] == expected)

    def kinds(self) -> dict[str, dict[str, Any]]:
        return {
            k: {"n": v[0], "top1": ratio(v[1], v[0]), "top3": ratio(v[2], v[0])}
            for k, v in self.per_kind.items()
        }

    def summary(self) -> dict[str, Any]:
        return {
            "top1": ratio(self.top1, self.answerable),
            "top3": ratio(self.top3, self.answerable),
            "false_positive_rate": ratio(self.false_positives, self.negatives),
            "confident_precision": ratio(self.confident_right, self.confident),
            "confident_coverage": ratio(self.confident_right, self.answerable),
        }


def latency(kb: KnowledgeBase, texts: list[str], scale: int) -> dict[str, Any]:
    """p50/p99 of `match` with the knowledge base scaled to `scale` entries."""
    big = scaled(kb, scale)
    texts = texts or ["社保卡丢了怎么办"]
    for t in texts[:20]:
        big.match(t)  # warm caches
    times: list[float] = []
    for _ in range(max(1, 1000 // len(texts))):
        for t in texts:
            start = time.perf_counter()
            big.match(t, k=3)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
        "kb_entries_for_latency": len(big),
    }


def report(kb: KnowledgeBase, kinds: dict[str, dict[str, Any]], failures: list[str]) -> None:
    """The human part of either command's output; the JSON line follows it."""
    print(
        f"knowledge base: {len(kb)} entries ({kb.mode}); threshold {kb.threshold}, "
        f"answerable {kb.answerable_threshold}"
    )
    for kind, v in sorted(kinds.items()):
        print(f"  {kind:<12} n={v['n']:<4} top1={v['top1']}  top3={v['top3']}")
    print(f"failing lines ({len(failures)}):")
    for line in failures:
        print("  " + line)


def load(
    prog: str, description: str | None, argv: list[str] | None
) -> tuple[KnowledgeBase, list[dict[str, Any]], int]:
    """Both commands' arguments: the knowledge base, the utterances (or a half of them) and the scale."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--kb", required=True, help="knowledge base, JSON Lines")
    parser.add_argument("--queries", required=True, help="utterances with expected results, JSON Lines")
    parser.add_argument("--subset", choices=["all", "a", "b"], default="all", help="a/b: halves of a split")
    parser.add_argument("--ranker", type=Path, default=None, help="ranker model (default: the trained one)")
    parser.add_argument("--scale", type=int, default=10_000, help="KB size for the latency figures")
    args = parser.parse_args(argv)
    kb = KnowledgeBase.from_jsonl(args.kb, ranker=args.ranker)
    return kb, select(load_jsonl(args.queries), args.subset), args.scale
