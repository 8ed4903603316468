"""Benchmark: `python -m knowledge_base.eval --kb FILE --queries FILE [--subset all|a|b] [--scale N]`.

The knowledge base's figures alone (see knowledge_base.evaluation): top-1/top-3 per kind, the failing
lines, and as the last line one JSON object with top1, top3, false_positive_rate,
confident_precision, confident_coverage, p50_ms and p99_ms. Category, department, emergency recall
and the false-alarm rate come from the router, which sits above the knowledge base:
`python -m dispatch.eval` takes the same arguments and prints these figures and those.
"""

from __future__ import annotations

import json
import sys

from knowledge_base.evaluation import KbTally, latency, load, report


def main(argv: list[str] | None = None) -> int:
    kb, queries, scale = load("python -m knowledge_base.eval", __doc__, argv)
    tally = KbTally()
    for q in queries:
        tally.add(q, kb.match(q["text"], k=3))
    report(kb, tally.kinds(), tally.failures)
    print("category, department and emergency figures: python -m dispatch.eval (the same arguments)")
    summary = {**tally.summary(), **latency(kb, [q["text"] for q in queries], scale), "queries": len(queries)}
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
