"""What to do with what a citizen said: answer on the spot, dispatch, or transfer at once.

Combines the router (categories, departments, emergencies) with the knowledge base (answers):

1. an emergency (110/119/120 or 应急处突) always wins: a missed emergency is the worst error;
2. a confident knowledge-base answer makes it 简单咨询, answered from that entry;
3. a question that the knowledge base probably answers is 简单咨询 too: the operator checks the
   suggestion and answers on the spot. "Probably" means the first hit scores at least the calibrated
   `answerable_threshold` (a probability learned from data, knowledge_base.ranker), the lexical and
   the dense retrievers agree on it, the caller asks for nothing the entry does not cover, and the
   router reads a question: 简单咨询 or 政策咨询, or a call it files
   under a complaint, a help request or nothing at all whose wording is a question ("的士夜里怎么收费"
   names a complaint topic but asks how things are);
4. otherwise the router's category, sub-category and department (a 简单咨询 the knowledge base does
   not answer becomes a 政策咨询 of its department); but when the first hit is close to
   what was asked (relevance at least NEAR_TOPIC) though it does not answer it, and the knowledge
   base is surer of its topic than the router of its department, the entry's department takes it: a
   complaint that the ID card takes too long sits beside the ID-card entry, and goes to its department.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dispatch.routing import Classification, Router

ON_THE_SPOT = "简单咨询"
EMERGENCY_CATEGORIES = frozenset({"应急处突", "转110", "转119", "转120"})
QUESTION_CATEGORIES = frozenset({"简单咨询", "政策咨询"})
# Categories a call may be filed under by its topic while its wording asks a question.
ASKED_CATEGORIES = frozenset({"投诉建议", "生活求助", "无法判定"})


NEAR_TOPIC = 0.5
ORDINARY = frozenset({"政策咨询", "生活求助", "投诉建议"})


class _Hit(Protocol):
    entry_id: str
    score: float
    confident: bool
    needs_unmet: frozenset[str]
    relevance: float
    agreed: bool


class _Entry(Protocol):
    department: str | None


class _KnowledgeBase(Protocol):
    by_id: dict[str, _Entry]

    def match(self, text: str, k: int = 3) -> list[_Hit]: ...  # type: ignore[empty-body]


@dataclass(frozen=True)
class Triage:
    category: str
    subcategory: str | None
    department: str | None
    transfer: str | None
    kb_entry_id: str | None  # the entry to read out, when the category is 简单咨询
    answer_confident: bool  # the entry may be read out as it is
    classification: Classification
    hits: tuple[_Hit, ...]


def is_answerable(
    hit: _Hit | None,
    classification: Classification,
    answerable_threshold: float,
    entry_department: str | None = None,
) -> bool:
    if hit is None:
        return False
    if hit.confident:
        return True
    if hit.score < answerable_threshold or hit.needs_unmet or not hit.agreed:
        return False
    return classification.category in QUESTION_CATEGORIES or (
        classification.asking and classification.category in ASKED_CATEGORIES
    )


def triage(text: str, kb: _KnowledgeBase, router: Router, answerable_threshold: float) -> Triage:
    classification = router.classify(text)
    hits = tuple(kb.match(text, k=3))
    top = hits[0] if hits else None
    department = kb.by_id[top.entry_id].department if top is not None else None
    if classification.category not in EMERGENCY_CATEGORIES and is_answerable(
        top, classification, answerable_threshold, department
    ):
        assert top is not None
        return Triage(ON_THE_SPOT, None, department, None, top.entry_id, top.confident, classification, hits)
    classification = classification.unanswered()  # a simple query with no answer here: a department's
    if (
        top is not None
        and department is not None
        and classification.category in ORDINARY
        and top.relevance >= max(NEAR_TOPIC, classification.confidence)
        and department != classification.department
    ):
        classification = router.with_department(classification, department)
    return Triage(
        classification.category,
        classification.subcategory,
        classification.department,
        classification.transfer,
        None,
        False,
        classification,
        hits,
    )
