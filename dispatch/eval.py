"""Benchmark: `python -m dispatch.eval --kb FILE --queries FILE [--subset all|a|b]`.

Prints top-1/top-3 per kind, the failing lines with their notes, and as the last line one JSON object
with top1, top3, false_positive_rate, confident_precision, confident_coverage, category_accuracy,
department_accuracy (as the console's triage decides, with the knowledge base),
router_alone_category_accuracy and router_alone_department_accuracy (`Router().classify` alone, the
public contract without a knowledge base), emergency_recall, false_alarm_rate (ordinary calls filed
as an emergency),
emergency_prompt_rate (ordinary calls on which the console asks 转1xx？), p50_ms and p99_ms (latency
with the KB scaled to 10 000 entries; the synthetic entries are embedded too, so keep --scale small
when the embedding model is on, or use python -m hotline.benches.understanding).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from dispatch.routing import Router
from dispatch.triage import triage
from knowledge_base.bench import load_jsonl, scaled, select
from knowledge_base.matcher import KnowledgeBase

EMERGENCY = {"应急处突", "转110", "转119", "转120"}


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def evaluate(kb: KnowledgeBase, queries: list[dict[str, Any]], scale: int = 10_000) -> dict[str, Any]:
    router = Router()
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # n, top1, top3
    answerable = top1 = top3 = negatives = false_pos = confident = confident_right = 0
    cat_ok = dept_ok = emerg_n = emerg_ok = ordinary = false_alarms = prompts = 0
    alone_cat = alone_dept = 0  # Router().classify alone: the public contract, no knowledge base
    failures: list[str] = []
    for q in queries:
        hits = kb.match(q["text"], k=3)
        expected = q.get("expected_kb_id")
        ids = [h.entry_id for h in hits]
        first_confident = bool(hits and hits[0].confident)
        if expected:
            answerable += 1
            stats = per_kind[q.get("kind", "?")]
            stats[0] += 1
            ok1, ok3 = bool(ids and ids[0] == expected), expected in ids
            top1 += ok1
            top3 += ok3
            stats[1] += ok1
            stats[2] += ok3
            if not ok1:
                failures.append(
                    f"MISS  [{q.get('kind')}] want {expected} got {ids} :: {q['text']} ({q.get('notes')})"
                )
        else:
            negatives += 1
            if first_confident:
                false_pos += 1
                failures.append(f"FALSE [{q.get('kind')}] claimed {ids[0]} :: {q['text']} ({q.get('notes')})")
        if first_confident:
            confident += 1
            confident_right += bool(expected and ids[0] == expected)
        # Category and department as the seat console gets them (dispatch.triage).
        decided = triage(q["text"], kb, router, kb.answerable_threshold)
        category, department = decided.category, decided.department
        cat_ok += category == q.get("expected_category")
        dept_ok += department == q.get("expected_department")
        alone = router.classify(q["text"])
        alone_cat += alone.category == q.get("expected_category")
        alone_dept += alone.department == q.get("expected_department")
        if q.get("expected_category") not in EMERGENCY:
            ordinary += 1
            false_alarms += category in EMERGENCY
            prompts += decided.classification.possible_emergency is not None
        if q.get("kind") == "emergency" or q.get("expected_category") in EMERGENCY:
            emerg_n += 1
            emerg_ok += category == q.get("expected_category")
            if category != q.get("expected_category"):
                failures.append(f"EMERG want {q.get('expected_category')} got {category} :: {q['text']}")
    big = scaled(kb, scale)
    texts = [q["text"] for q in queries] or ["社保卡丢了怎么办"]
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
        "per_kind": {
            k: {"n": v[0], "top1": _ratio(v[1], v[0]), "top3": _ratio(v[2], v[0])}
            for k, v in per_kind.items()
        },
        "failures": failures,
        "summary": {
            "top1": _ratio(top1, answerable),
            "top3": _ratio(top3, answerable),
            "false_positive_rate": _ratio(false_pos, negatives),
            "confident_precision": _ratio(confident_right, confident),
            "confident_coverage": _ratio(confident_right, answerable),
            "category_accuracy": _ratio(cat_ok, len(queries)) if router else None,
            "router_alone_category_accuracy": _ratio(alone_cat, len(queries)),
            "router_alone_department_accuracy": _ratio(alone_dept, len(queries)),
            "department_accuracy": _ratio(dept_ok, len(queries)) if router else None,
            "emergency_recall": _ratio(emerg_ok, emerg_n) if router else None,
            # ordinary calls filed as an emergency, and those on which the console asks 转1xx？
            "false_alarm_rate": _ratio(false_alarms, ordinary),
            "emergency_prompt_rate": _ratio(prompts, ordinary),
            "p50_ms": round(statistics.median(times), 3),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
            "kb_entries_for_latency": len(big),
            "queries": len(queries),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dispatch.eval", description=__doc__)
    parser.add_argument("--kb", required=True, help="knowledge base, JSON Lines")
    parser.add_argument("--queries", required=True, help="utterances with expected results, JSON Lines")
    parser.add_argument("--subset", choices=["all", "a", "b"], default="all", help="a/b: halves of a split")
    parser.add_argument("--ranker", type=Path, default=None, help="ranker model (default: the trained one)")
    parser.add_argument("--scale", type=int, default=10_000, help="KB size for the latency figures")
    args = parser.parse_args(argv)
    kb = KnowledgeBase.from_jsonl(args.kb, ranker=args.ranker)
    result = evaluate(kb, select(load_jsonl(args.queries), args.subset), args.scale)
    print(
        f"knowledge base: {len(kb)} entries ({kb.mode}); threshold {kb.threshold}, "
        f"answerable {kb.answerable_threshold}"
    )
    for kind, v in sorted(result["per_kind"].items()):
        print(f"  {kind:<12} n={v['n']:<4} top1={v['top1']}  top3={v['top3']}")
    print(f"failing lines ({len(result['failures'])}):")
    for line in result["failures"]:
        print("  " + line)
    print(json.dumps(result["summary"], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
