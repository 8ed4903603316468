"""Calibrate the confidence threshold: `python -m dispatch.calibrate --kb FILE --queries FILE`.

Chooses the score threshold (and the margin over the runner-up) that answers the most queries
confidently and rightly, subject to a false-positive rate <= 0.03 on queries without an answer and a
precision >= 0.98 of confident answers. Among settings with the best coverage it takes the middle of
the widest feasible threshold range (the least fitted choice). Writes knowledge_base/confidence.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dispatch.routing import Router
from dispatch.triage import EMERGENCY_CATEGORIES, ON_THE_SPOT, is_answerable
from knowledge_base.bench import load_jsonl, select
from knowledge_base.matcher import CONFIDENCE_FILE, KnowledgeBase

MAX_FALSE_POSITIVE = 0.03
MIN_PRECISION = 0.98
MARGINS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.10)


def _observations(
    kb: KnowledgeBase, queries: list[dict[str, Any]]
) -> list[tuple[float, float, bool, bool, bool]]:
    """(score, margin, needs met, answerable, right) of each query's first hit."""
    out = []
    for q in queries:
        hits = kb.match(q["text"], k=2)
        if not hits:
            out.append((0.0, 0.0, False, bool(q.get("expected_kb_id")), False))
            continue
        margin = hits[0].score - (hits[1].score if len(hits) > 1 else 0.0)
        expected = q.get("expected_kb_id")
        out.append(
            (hits[0].score, margin, not hits[0].needs_unmet, bool(expected), hits[0].entry_id == expected)
        )
    return out


def _measure(
    obs: list[tuple[float, float, bool, bool, bool]], t: float, m: float
) -> tuple[float, float, float]:
    answerable = sum(o[3] for o in obs) or 1
    negatives = sum(not o[3] for o in obs) or 1
    conf = [o for o in obs if o[0] >= t and o[1] >= m and o[2]]
    right = sum(o[4] for o in conf)
    fp = sum(not o[3] for o in conf)
    precision = right / len(conf) if conf else 1.0
    return fp / negatives, precision, right / answerable


def calibrate(kb: KnowledgeBase, queries: list[dict[str, Any]]) -> dict[str, Any]:
    obs = _observations(kb, queries)
    scores = sorted({round(o[0], 4) for o in obs} | {1.0})
    best: tuple[float, float, float, float] | None = None  # coverage, width, threshold, margin
    for m in MARGINS:
        feasible = [t for t in scores if _fits(_measure(obs, t, m))]
        if not feasible:
            continue
        top = max(_measure(obs, t, m)[2] for t in feasible)
        ts = [t for t in feasible if _measure(obs, t, m)[2] == top]
        lo, hi = min(ts), max(ts)
        # the next score below lo is not feasible or changes coverage: the threshold can go down to it
        below = max((s for s in scores if s < lo), default=lo)
        threshold = round((below + lo) / 2, 4) if below < lo and not _fits(_measure(obs, below, m)) else lo
        candidate = (top, hi - lo, threshold, m)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is None:
        return {"threshold": 1.01, "margin": MARGINS[-1], "coverage": 0.0}
    _cov, _w, threshold, margin = best
    fp, precision, coverage = _measure(obs, threshold, margin)
    return {
        "threshold": threshold,
        "margin": margin,
        "false_positive_rate": round(fp, 4),
        "confident_precision": round(precision, 4),
        "confident_coverage": round(coverage, 4),
        "queries": len(queries),
    }


def calibrate_answerable(kb: KnowledgeBase, queries: list[dict[str, Any]], threshold: float) -> float:
    """The lower "probably answers it" bar of `dispatch.triage` with the best category accuracy.

    An answer on the spot counts as right only when its entry is the expected one: a wrong entry that
    happens to give the right category is no reason to lower the bar. Among the bars that reach the best
    accuracy it takes the median, not an edge, to fit the data less.
    """
    router = Router()
    seen = []
    for q in queries:
        hits = kb.match(q["text"], k=1)
        seen.append(
            (
                hits[0] if hits else None,
                router.classify(q["text"]),
                q.get("expected_category"),
                q.get("expected_kb_id"),
            )
        )
    candidates = sorted({round(s[0].score, 4) for s in seen if s[0] is not None and s[0].score <= threshold})
    candidates.append(threshold)

    def accuracy(bar: float) -> int:
        right = 0
        for hit, classification, expected, expected_id in seen:
            department = kb.by_id[hit.entry_id].department if hit is not None else None
            on_the_spot = classification.category not in EMERGENCY_CATEGORIES and is_answerable(
                hit, classification, bar, department
            )
            if on_the_spot:
                assert hit is not None
                right += expected == ON_THE_SPOT and expected_id in (None, hit.entry_id)
            else:
                right += classification.category == expected
        return right

    scores = {bar: accuracy(bar) for bar in candidates}
    best = max(scores.values())
    tied = [bar for bar, score in scores.items() if score == best]
    return tied[len(tied) // 2]


def _fits(measure: tuple[float, float, float]) -> bool:
    fp, precision, _coverage = measure
    return fp <= MAX_FALSE_POSITIVE and precision >= MIN_PRECISION


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dispatch.calibrate", description=__doc__)
    parser.add_argument("--kb", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--subset", choices=["all", "a", "b"], default="all")
    parser.add_argument("--out", type=Path, default=CONFIDENCE_FILE)
    args = parser.parse_args(argv)
    kb = KnowledgeBase.from_jsonl(args.kb, threshold=0.0, margin=0.0)
    queries = select(load_jsonl(args.queries), args.subset)
    result = calibrate(kb, queries)
    # Hits must be judged "confident" with the chosen threshold before the lower bar is fitted.
    kb.threshold, kb.margin = result["threshold"], result["margin"]
    result["answerable_threshold"] = calibrate_answerable(kb, queries, result["threshold"])
    result["calibrated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["kb"] = Path(args.kb).name
    result["queries_file"] = Path(args.queries).name
    result["subset"] = args.subset
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(
        f"threshold {result['threshold']}, margin {result['margin']}, "
        f"answerable {result['answerable_threshold']}: "
        f"coverage {result.get('confident_coverage')}, precision {result.get('confident_precision')}, "
        f"false positives {result.get('false_positive_rate')} on {result.get('queries')} queries"
        f" -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
