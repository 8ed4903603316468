"""The router alone on the held-out utterances that no knowledge-base entry answers
(tests/knowledge_base/data/heldout*_queries*.jsonl): complaints, help requests, policy questions,
complex matters, emergencies and calls without a request. Written for the project, never tuned on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dispatch.routing import Router

DATA = Path(__file__).resolve().parents[1] / "knowledge_base" / "data"
QUERIES = ("heldout_queries.jsonl", "heldout_queries_2.jsonl", "heldout3_queries.jsonl")
EMERGENCY = ("应急处突", "转110", "转119", "转120")


@pytest.fixture(scope="module")
def router() -> Router:
    return Router()


@pytest.fixture(scope="module")
def unanswered() -> list[dict[str, Any]]:
    rows = [
        json.loads(line)
        for name in QUERIES
        for line in (DATA / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return [q for q in rows if q["expected_kb_id"] is None]


def test_category_and_department_floor(router: Router, unanswered: list[dict[str, Any]]) -> None:
    results = [(q, router.classify(q["text"])) for q in unanswered]
    category = sum(c.category == q["expected_category"] for q, c in results) / len(results)
    department = sum(c.department == q["expected_department"] for q, c in results) / len(results)
    wrong = [
        (q["text"], c.category, c.department) for q, c in results if c.category != q["expected_category"]
    ]
    assert category >= 0.92, wrong
    assert department >= 0.92


def test_every_emergency_is_recognised_exactly(router: Router, unanswered: list[dict[str, Any]]) -> None:
    emergencies = [q for q in unanswered if q["expected_category"] in EMERGENCY]
    assert len(emergencies) >= 25
    missed = [
        (q["text"], router.classify(q["text"]).category)
        for q in emergencies
        if router.classify(q["text"]).category != q["expected_category"]
    ]
    assert missed == []


def test_no_false_alarm_on_ordinary_calls(router: Router, unanswered: list[dict[str, Any]]) -> None:
    ordinary = [q for q in unanswered if q["expected_category"] not in EMERGENCY]
    alarms = [q["text"] for q in ordinary if router.classify(q["text"]).category in EMERGENCY]
    assert alarms == []
