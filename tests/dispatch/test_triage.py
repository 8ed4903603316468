"""Triage: emergencies first, then knowledge-base answers, then the router's department."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dispatch.routing import Router
from dispatch.triage import triage
from knowledge_base import Hit, KnowledgeBase

DEMO_KB = Path(__file__).resolve().parents[2] / "knowledge_base" / "demo_kb.jsonl"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.from_jsonl(DEMO_KB)


@pytest.fixture(scope="module")
def router() -> Router:
    return Router()


def test_confident_answer_is_answered_on_the_spot(kb: KnowledgeBase, router: Router) -> None:
    decided = triage("那个我想问一下就是户口簿找不着了咋整", kb, router, kb.answerable_threshold)
    assert decided.category == "简单咨询" and decided.answer_confident
    assert decided.kb_entry_id == "demo-007"
    assert decided.department == kb.by_id[decided.kb_entry_id].department


def test_an_entry_for_a_narrower_case_is_not_read_out(kb: KnowledgeBase, router: Router) -> None:
    # the demo knowledge base only answers replacing an ID card in another place (demo-009)
    decided = triage("那个我想问一下就是身份证丢了咋整", kb, router, kb.answerable_threshold)
    assert not decided.answer_confident and decided.kb_entry_id is None
    assert decided.category == "政策咨询" and decided.department == "gaj"
    # the router alone reads a simple query; unanswered here, it goes to the department as a policy one
    assert router.classify("那个我想问一下就是身份证丢了咋整").category == "简单咨询"
    # still offered to the operator (the dense retriever puts 户口本丢了 first: they disagree, so
    # neither is taken as the answer)
    assert "demo-009" in [h.entry_id for h in decided.hits]
    said_where = triage("我在外地上班，身份证丢了能在这边补吗", kb, router, kb.answerable_threshold)
    assert said_where.answer_confident and said_where.kb_entry_id == "demo-009"


def test_complaint_about_the_same_topic_goes_to_the_department(kb: KnowledgeBase, router: Router) -> None:
    decided = triage("我身份证补办了一个月还没拿到，太慢了，我要投诉", kb, router, kb.answerable_threshold)
    assert decided.category == "投诉建议" and decided.kb_entry_id is None and not decided.answer_confident
    assert decided.department == "gaj"


def test_an_emergency_wins_over_any_answer(kb: KnowledgeBase, router: Router) -> None:
    decided = triage("身份证丢了，刚才有人抢了我的包，他还在追我", kb, router, kb.answerable_threshold)
    assert (decided.category, decided.transfer, decided.department) == ("转110", "110", None)


@dataclass
class _Entry:
    department: str | None


class _FixedKnowledgeBase:
    """Hits chosen by the test, to pin the rule for a likely but not confident answer."""

    def __init__(self, hit: Hit) -> None:
        self.hit = hit
        self.by_id = {hit.entry_id: _Entry("rsj")}

    def match(self, text: str, k: int = 3) -> list[Hit]:
        return [self.hit]


QUESTION = "我今年五十八了，交了十二年养老保险，到了退休年龄能领多少，要补交吗"


@pytest.mark.parametrize(
    ("hit", "category"),
    [
        (Hit("e1", 0.50, False), "简单咨询"),  # a likely answer to a question: the operator reads it
        (Hit("e1", 0.30, False), "政策咨询"),  # too weak: the department answers
        (Hit("e1", 0.50, False, frozenset({"delay"})), "政策咨询"),  # asks for more than the entry says
    ],
)
def test_a_likely_answer_to_a_policy_question(router: Router, hit: Hit, category: str) -> None:
    assert router.classify(QUESTION).category == "政策咨询"
    decided = triage(QUESTION, _FixedKnowledgeBase(hit), router, answerable_threshold=0.45)
    assert decided.category == category
    assert decided.kb_entry_id == ("e1" if category == "简单咨询" else None)
    if category == "简单咨询":
        assert decided.department == "rsj" and not decided.answer_confident
