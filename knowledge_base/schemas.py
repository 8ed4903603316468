"""What the knowledge base answers with, on every screen and API that shows suggestions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class MatchOut(BaseModel):
    id: str
    question: str
    answer: str
    department: str | None
    score: float
    confident: bool


def match_out(kb: Any, hit: Any, digits: int | None = None) -> MatchOut:
    """One hit of `KnowledgeBase.match` with its entry; `digits` rounds the score."""
    entry = kb.by_id[hit.entry_id]
    return MatchOut(
        id=entry.id,
        question=entry.question,
        answer=entry.answer,
        department=entry.department,
        score=round(hit.score, digits) if digits is not None else hit.score,
        confident=hit.confident,
    )
