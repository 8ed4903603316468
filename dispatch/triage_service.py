"""Triage for the seat console: what the router and the knowledge base make of a text, with the
deadline it would get if dispatched now."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import semantics
from core.departments import Department
from dispatch.deadlines import DeadlinePolicy
from dispatch.models import Category, SubCategory
from dispatch.router_model import RouterModelError, current_model_path, lexical_twin, load_cached
from dispatch.routing_words import router_for
from dispatch.triage import triage
from knowledge_base.schemas import MatchOut, match_out
from knowledge_base.service import cached_matcher


class TriageOut(BaseModel):
    category: str
    subcategory: str | None
    subcategory_id: int | None
    department: str | None
    department_name: str | None
    assisting: list[str]
    transfer: str | None
    emergency: bool
    # an emergency the trained model suspects and no rule confirmed: the console asks 转120？是/否
    confirm_emergency: str | None = None
    confidence: float
    evidence: list[str]
    on_the_spot: bool  # 简单咨询: answer from `kb_entry_id`
    kb_entry_id: str | None
    answer_confident: bool
    deadline_days: int | None
    deadline: datetime | None  # if dispatched now
    first_reply_due: datetime | None
    suggestions: list[MatchOut]


def _subcategory(session: Session, category: str, name: str | None) -> SubCategory | None:
    if name is None:
        return None
    return session.scalar(
        select(SubCategory).join(Category).where(Category.name == category, SubCategory.name == name)
    )


def triage_text(session: Session, text: str, rules: DeadlinePolicy, now: datetime) -> TriageOut:
    """What the console shows for a text: the triage, the sub-category's deadline if dispatched
    now, and the knowledge base's suggestions with the same confidence the triage used."""
    kb = cached_matcher(session, now.date())
    decided = triage(text, kb, router_for(session), kb.answerable_threshold)
    sub = _subcategory(session, decided.category, decided.subcategory)
    deadline = first_reply = None
    if sub is not None and sub.category.handling != "on_the_spot":
        deadline, first_reply = rules.at_dispatch(
            sub.deadline_days, sub.category.handling == "emergency", now
        )
    department = (
        session.scalar(select(Department).where(Department.code == decided.department))
        if decided.department
        else None
    )
    suggestions = [match_out(kb, hit, digits=3) for hit in decided.hits]
    return TriageOut(
        category=decided.category,
        subcategory=decided.subcategory,
        subcategory_id=sub.id if sub else None,
        department=decided.department,
        department_name=department.name if department else None,
        assisting=list(decided.classification.assisting),
        transfer=decided.transfer,
        emergency=decided.transfer is not None or decided.category == "应急处突",
        confirm_emergency=decided.classification.possible_emergency,
        confidence=decided.classification.confidence,
        evidence=list(decided.classification.evidence),
        on_the_spot=decided.kb_entry_id is not None,
        kb_entry_id=decided.kb_entry_id,
        answer_confident=decided.answer_confident,
        deadline_days=sub.deadline_days if sub else None,
        deadline=deadline,
        first_reply_due=first_reply,
        suggestions=suggestions,
    )


def understanding_status() -> dict[str, str]:
    """For /api/health: "ok", or "degraded" and why (the embedding model missing or off, the
    router's model missing or broken); in either case the lexical paths keep serving."""
    encoder = semantics.status()
    path = current_model_path()
    if encoder.state != "ok":
        path = lexical_twin(path)
    try:
        load_cached(path)
    except RouterModelError as exc:
        return {"state": "degraded", "reason": f"{exc}；只按规则分派"}
    if encoder.state != "ok":
        return {
            "state": "degraded",
            "reason": f"语义模型不可用（{encoder.reason}），知识库与分派只用词面特征",
        }
    return {"state": "ok", "reason": ""}
