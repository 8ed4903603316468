"""The understanding measured on data it was not built from, and on data it was trained on.

`heldout9` (80 entries, 430 utterances in tests/knowledge_base/data/heldout9_*) was written by other
hands before the change it judged (the fourth tuning set t4 and heldout8 joining the training sets)
and is never tuned on: no threshold, feature or training example comes from it. Its floors sit a
little below what the system reaches, to catch regressions; they are not the issue's targets (the
README gives both).

heldout8 judged the ranker's precedents (read once, after that change); heldout5, heldout6 and
heldout7 judged the earlier steps the same way; their figures were looked at
while doing so, and since the next set was written they are training data like batches 1-4
(heldout_*, heldout3_*, heldout4_*, written for the project earlier, each before the round of rule
changes it judged). The ranker (knowledge_base.calibrate), its precedents and the router
(dispatch.router_model) are trained on them: their floors are in-sample figures and only check that
training still fits them (the precedents hold their utterances, so an utterance finds itself: the
in-sample coverage is far above what unseen data gets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dispatch.eval import EMERGENCY, evaluate
from dispatch.routing import Router
from knowledge_base import KnowledgeBase

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class HeldOut:
    name: str
    kb: str
    queries: str
    floors: dict[str, float]
    max_false_positive_rate: float
    tuned: bool = True  # trained on (in-sample figures)
    # emergencies the console may file as an ordinary call (the set's known misses, named below)
    silent_emergencies: int = 0
    # near misses answered confidently (the set's known ones, named below)
    confident_near_misses: int = 0


# Measured on heldout9 (README, "Understanding"), before -> after t4 and heldout8 joined the training
# sets (the precedents already in both): top1 0.945 -> 0.940, top3 0.990 -> 0.990, confident precision
# 0.991 -> 1.0, coverage 0.545 -> 0.535, false positives 0.004 -> 0.0, category 0.770 -> 0.791,
# department 0.921 -> 0.935, router alone 0.840 / 0.879 -> 0.863 / 0.902, emergency recall 0.967.
HELDOUT9_FLOORS = {
    "top1": 0.91,
    "top3": 0.97,
    "confident_precision": 0.96,
    "confident_coverage": 0.48,
    "category_accuracy": 0.76,
    "department_accuracy": 0.91,
    "router_alone_category_accuracy": 0.84,
    "router_alone_department_accuracy": 0.88,
    "emergency_recall": 0.95,
}

SETS = [
    # Two emergencies go to the wrong service, none is filed as an ordinary call: a car driven into a
    # ditch with people inside, a collapsed house with a man under it (both 应急处突 for 转119).
    HeldOut(
        "heldout9",
        "heldout9_kb.jsonl",
        "heldout9_queries.jsonl",
        HELDOUT9_FLOORS,
        0.03,
        tuned=False,
    ),
    # In-sample since 2026-12-08; judged the precedents, when a child choking on jelly went to 转119
    # (转120) and two near misses were answered confidently.
    HeldOut(
        "heldout8",
        "heldout8_kb.jsonl",
        "heldout8_queries.jsonl",
        {
            "top1": 0.89,
            "top3": 0.97,
            "confident_precision": 0.96,
            "confident_coverage": 0.50,
            "category_accuracy": 0.83,
            "department_accuracy": 0.95,
            "emergency_recall": 0.96,
        },
        0.03,
    ),
    # In-sample, one near miss is still answered confidently (a Cantonese question about a
    # long-stay Hong Kong endorsement, against the tourist endorsement's entry).
    HeldOut(
        "heldout7",
        "heldout7_kb.jsonl",
        "heldout7_queries.jsonl",
        {
            "top1": 0.89,
            "top3": 0.97,
            "confident_precision": 0.96,
            "confident_coverage": 0.55,
            "category_accuracy": 0.83,
            "department_accuracy": 0.93,
            "emergency_recall": 0.95,
        },
        0.03,
        confident_near_misses=1,
    ),
    HeldOut(
        "heldout5",
        "heldout5_kb.jsonl",
        "heldout5_queries.jsonl",
        {
            "top1": 0.77,
            "top3": 0.88,
            "confident_precision": 0.93,
            "confident_coverage": 0.30,
            "category_accuracy": 0.70,
            "department_accuracy": 0.93,
            "emergency_recall": 1.0,
        },
        0.03,
    ),
    HeldOut(
        "heldout6",
        "heldout6_kb.jsonl",
        "heldout6_queries.jsonl",
        {
            "top1": 0.90,
            "top3": 0.97,
            "confident_precision": 0.96,
            "confident_coverage": 0.38,
            "category_accuracy": 0.80,
            "department_accuracy": 0.92,
            "emergency_recall": 0.90,
        },
        0.03,
    ),
    HeldOut(
        "batch1",
        "heldout_kb.jsonl",
        "heldout_queries.jsonl",
        {
            "top1": 0.95,
            "top3": 0.97,
            "confident_precision": 0.97,
            "confident_coverage": 0.70,
            "category_accuracy": 0.94,
            "department_accuracy": 0.95,
        },
        0.03,
    ),
    HeldOut(
        "batch2",
        "heldout_kb.jsonl",
        "heldout_queries_2.jsonl",
        {
            "top1": 0.92,
            "top3": 0.96,
            "confident_precision": 0.95,
            "confident_coverage": 0.60,  # 0.62 in-sample since the answer is no longer embedded
            "category_accuracy": 0.90,
            "department_accuracy": 0.90,
        },
        0.05,
    ),
    HeldOut(
        "batch3",
        "heldout3_kb.jsonl",
        "heldout3_queries.jsonl",
        {
            "top1": 0.95,
            "top3": 0.97,
            "confident_precision": 0.95,
            "confident_coverage": 0.68,
            "category_accuracy": 0.93,
            "department_accuracy": 0.95,
        },
        0.05,
    ),
    HeldOut(
        "batch4",
        "heldout4_kb.jsonl",
        "heldout4_queries.jsonl",
        {
            "top1": 0.92,
            "top3": 0.97,
            "confident_precision": 0.95,
            "confident_coverage": 0.68,
            "category_accuracy": 0.87,
            "department_accuracy": 0.93,
        },
        0.05,
    ),
]
BY_NAME = {s.name: s for s in SETS}


def _load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module", params=[s.name for s in SETS])
def held_out(request: pytest.FixtureRequest) -> tuple[HeldOut, KnowledgeBase, list[dict[str, Any]]]:
    spec = BY_NAME[request.param]
    return spec, KnowledgeBase.from_jsonl(DATA / spec.kb), _load(DATA / spec.queries)


@pytest.fixture(scope="module")
def summary(held_out: tuple[HeldOut, KnowledgeBase, list[dict[str, Any]]]) -> dict[str, Any]:
    _spec, kb, queries = held_out
    # latency is measured on the knowledge base as it is (no scaling): the figures here are accuracy
    return evaluate(kb, queries, scale=len(kb))["summary"]


def test_the_sets_keep_the_rules_of_the_sample_format(
    held_out: tuple[HeldOut, KnowledgeBase, list[dict[str, Any]]],
) -> None:
    _spec, kb, queries = held_out
    departments = set(Router().departments)
    for e in kb.entries:
        assert e.department in departments and e.topic and 2 <= len(e.alternatives) <= 4, e.id
    for q in queries:
        expected = q["expected_kb_id"]
        assert (q["expected_category"] == "简单咨询") == (expected is not None), q["text"]
        if expected is not None:
            assert q["expected_department"] == kb.by_id[expected].department, q["text"]
        elif q["expected_category"] in ("疑难复杂", "应急处突"):
            assert q["expected_department"] == "ddzx", q["text"]
        elif q["expected_category"] in ("转110", "转119", "转120", "无法判定"):
            assert q["expected_department"] is None, q["text"]
        else:
            assert q["expected_department"] in departments, q["text"]
    kinds = {q["kind"] for q in queries}
    assert {"paraphrase", "asr_noise", "near_miss", "dispatch", "emergency", "out_of_scope"} <= kinds


def test_the_first_batch_is_large() -> None:
    assert len(_load(DATA / "heldout_kb.jsonl")) >= 30
    assert len(_load(DATA / "heldout_queries.jsonl")) >= 150


def test_heldout_floors(
    held_out: tuple[HeldOut, KnowledgeBase, list[dict[str, Any]]], summary: dict[str, Any]
) -> None:
    spec = held_out[0]
    below = {m: (summary[m], floor) for m, floor in spec.floors.items() if summary[m] < floor}
    assert not below, (spec.name, summary)
    assert summary["false_positive_rate"] <= spec.max_false_positive_rate, (spec.name, summary)


def test_heldout_no_emergency_is_filed_as_an_ordinary_call(
    held_out: tuple[HeldOut, KnowledgeBase, list[dict[str, Any]]],
) -> None:
    """The console's triage files every emergency as one of the four (the exact service is the floors'
    business): a missed emergency is the worst error."""
    from dispatch.triage import triage

    spec, kb, queries = held_out
    router = Router()
    silent = [
        (q["text"], category)
        for q in queries
        if q["expected_category"] in EMERGENCY
        and (category := triage(q["text"], kb, router, kb.answerable_threshold).category) not in EMERGENCY
    ]
    assert len(silent) <= spec.silent_emergencies, silent


def test_heldout_near_misses_are_never_confident(
    held_out: tuple[HeldOut, KnowledgeBase, list[dict[str, Any]]],
) -> None:
    spec, kb, queries = held_out
    near = [q["text"] for q in queries if q["kind"] == "near_miss"]
    confident = [t for t in near if any(h.confident for h in kb.match(t))]
    assert len(confident) <= spec.confident_near_misses, confident


def test_heldout_homophones_find_their_entry(
    held_out: tuple[HeldOut, KnowledgeBase, list[dict[str, Any]]],
) -> None:
    _spec, kb, queries = held_out
    noisy = [q for q in queries if q["kind"] == "asr_noise"]
    missed = [
        q["text"] for q in noisy if [h.entry_id for h in kb.match(q["text"], k=1)] != [q["expected_kb_id"]]
    ]
    assert len(missed) <= 0.08 * len(noisy), missed


def test_heldout_emergencies_are_flagged_by_the_router_alone(
    held_out: tuple[HeldOut, KnowledgeBase, list[dict[str, Any]]],
) -> None:
    router = Router()
    missed = [
        (q["text"], category)
        for q in held_out[2]
        if q["expected_category"] in EMERGENCY
        and (category := router.classify(q["text"]).category) not in EMERGENCY
    ]
    assert len(missed) <= held_out[0].silent_emergencies, missed


@dataclass(frozen=True)
class EmergencySet:
    """A judge of emergencies alone (no knowledge base of its own: the demo one stands beside it)."""

    name: str
    queries: str
    min_recall: float  # exact service
    max_false_alarms: float  # of its alarming ordinary calls, filed as an emergency
    silent: tuple[str, ...]  # emergencies filed as an ordinary call (known, named)


EMERGENCY_SETS = [
    # Written before any emergency change of 2026-12-08 and never tuned on; heldout10's failures were
    # read before the seed corpora's labels were audited, heldout11 judged that audit: recall 0.942
    # and 0.967 (0.958 before it), false alarms 0.20 and 0.27. Most misses are people trapped (on a
    # roof in a flood, under a slipped hillside) sent to 应急处突 instead of 119.
    EmergencySet(
        "heldout10",
        "heldout10_queries.jsonl",
        0.92,
        0.25,
        ("高速收费站口几十辆大货车司机停车不走，把出口全堵死了，说是超限罚款不合理",),
    ),
    EmergencySet(
        "heldout11",
        "heldout11_queries.jsonl",
        0.94,
        0.32,
        ("我们村头那个废弃的养殖场，每天晚上聚一帮人在里面赌钱，一晚上输赢好几万，今天又开起来了",),
    ),
]


@pytest.mark.parametrize("spec", EMERGENCY_SETS, ids=[s.name for s in EMERGENCY_SETS])
def test_emergency_sets(spec: EmergencySet) -> None:
    from dispatch.triage import triage

    kb = KnowledgeBase.from_jsonl(DATA.parents[2] / "knowledge_base" / "demo_kb.jsonl")
    router = Router()
    queries = _load(DATA / spec.queries)
    filed = {q["text"]: triage(q["text"], kb, router, kb.answerable_threshold).category for q in queries}
    emergencies = [q for q in queries if q["expected_category"] in EMERGENCY]
    ordinary = [q for q in queries if q["expected_category"] not in EMERGENCY]
    assert len(emergencies) == 120 and len(ordinary) == 60
    recall = sum(filed[q["text"]] == q["expected_category"] for q in emergencies) / len(emergencies)
    silent = tuple(q["text"] for q in emergencies if filed[q["text"]] not in EMERGENCY)
    alarms = sum(filed[q["text"]] in EMERGENCY for q in ordinary) / len(ordinary)
    assert recall >= spec.min_recall, recall
    assert silent == spec.silent
    assert alarms <= spec.max_false_alarms, alarms
