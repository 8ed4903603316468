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

import json
import sys
from typing import Any

from core.figures import ratio
from dispatch.routing import Router
from dispatch.triage import triage
from knowledge_base.evaluation import KbTally, latency, load, report
from knowledge_base.matcher import KnowledgeBase

EMERGENCY = {"应急处突", "转110", "转119", "转120"}


def evaluate(kb: KnowledgeBase, queries: list[dict[str, Any]], scale: int = 10_000) -> dict[str, Any]:
    router = Router()
    tally = KbTally()
    cat_ok = dept_ok = emerg_n = emerg_ok = ordinary = false_alarms = prompts = 0
    alone_cat = alone_dept = 0  # Router().classify alone: the public contract, no knowledge base
    failures: list[str] = []
    for q in queries:
        tally.add(q, kb.match(q["text"], k=3))
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
    n = len(queries)
    return {
        "per_kind": tally.kinds(),
        "failures": tally.failures + failures,
        "summary": {
            **tally.summary(),
            "category_accuracy": ratio(cat_ok, n),
            "router_alone_category_accuracy": ratio(alone_cat, n),
            "router_alone_department_accuracy": ratio(alone_dept, n),
            "department_accuracy": ratio(dept_ok, n),
            "emergency_recall": ratio(emerg_ok, emerg_n),
            # ordinary calls filed as an emergency, and those on which the console asks 转1xx？
            "false_alarm_rate": ratio(false_alarms, ordinary),
            "emergency_prompt_rate": ratio(prompts, ordinary),
            **latency(kb, [q["text"] for q in queries], scale),
            "queries": n,
        },
    }


def main(argv: list[str] | None = None) -> int:
    kb, queries, scale = load("python -m dispatch.eval", __doc__, argv)
    result = evaluate(kb, queries, scale)
    report(kb, result["per_kind"], result["failures"])
    print(json.dumps(result["summary"], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
