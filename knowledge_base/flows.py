"""Work that crosses from the knowledge base into the other domains: what the call centre's speech
service asks through its `callcenter.context.Understanding` interface (knowledge-base suggestions
and the router's reading of a transcript)."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session

from core.clock import Clock
from dispatch.routing import Router
from knowledge_base.service import KnowledgeBase, cached_matcher


class Understanding:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._router: Router | None = None
        self._lock = threading.Lock()

    def knowledge_base(self, session: Session) -> KnowledgeBase:
        return cached_matcher(session, self.clock.now().date())

    def _the_router(self) -> Router:
        with self._lock:  # the routing table is loaded once, on first use
            if self._router is None:
                self._router = Router()
            return self._router

    def classify(self, text: str) -> dict[str, Any] | None:
        if not text:
            return None
        c = self._the_router().classify(text)
        return {
            "category": c.category,
            "subcategory": c.subcategory,
            "department": c.department,
            "transfer": c.transfer,
            "confidence": round(c.confidence, 4),
            "evidence": list(c.evidence),
        }
