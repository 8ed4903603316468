"""Knowledge base: entries the operator can read out, and the matcher that finds them on the spot."""

from knowledge_base.matcher import Entry, Hit, KnowledgeBase

__all__ = ["Entry", "Hit", "KnowledgeBase"]
