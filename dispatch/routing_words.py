"""Routing words added on the admin page: "this word means that sub-category (and department)".

They are merged into the router in front of the routing table's own routes (`Router(extra_routes=…)`),
so a word added by the dispatch desk wins a tie. The table file stays as it is.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    String,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.db import Base
from dispatch.models import SubCategory
from dispatch.routing import Router, RouteSpec, RoutingConfigError

Level = Literal["strong", "words", "weak"]
LEVEL_LABELS = {"strong": "强（2分）", "words": "普通（1分）", "weak": "弱（0.5分）"}


class RoutingWord(Base):
    __tablename__ = "routing_words"
    __table_args__ = (
        UniqueConstraint("word", "subcategory_id"),
        CheckConstraint("level IN ('strong', 'words', 'weak')", name="level_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    word: Mapped[str] = mapped_column(String(64))
    subcategory_id: Mapped[int] = mapped_column(ForeignKey("subcategories.id"))
    # Empty: the sub-category's department in the routing table / category tree.
    department_code: Mapped[str | None] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)

    subcategory: Mapped[SubCategory] = relationship(lazy="joined")


class RoutingWordError(ValueError):
    def __init__(self, message: str, zh: str, status: int = 422) -> None:
        super().__init__(message)
        self.zh, self.status = zh, status


def list_words(session: Session) -> list[RoutingWord]:
    return list(session.scalars(select(RoutingWord).order_by(RoutingWord.id.desc())))


def _route(row: RoutingWord) -> RouteSpec:
    words: dict[str, Any] = {row.level: [row.word]}
    return RouteSpec(
        category=row.subcategory.category.name,
        subcategory=row.subcategory.name,
        department=row.department_code or None,
        **words,
    )


def add_word(
    session: Session,
    word: str,
    subcategory_id: int,
    department: str | None,
    level: Level,
    by: str,
    now: datetime,
) -> RoutingWord:
    """Add a word; the router is rebuilt with it first, so a word it cannot use is refused here."""
    word = word.strip()
    if not word or len(word) > 64:
        raise RoutingWordError("the word must have 1-64 characters", "分派词须为 1-64 个字")
    if level not in LEVEL_LABELS:
        raise RoutingWordError(f"unknown level {level!r}", "权重须为强、普通或弱")
    sub = session.get(SubCategory, subcategory_id)
    if sub is None:
        raise RoutingWordError(f"no sub-category {subcategory_id}", "所选小类不存在", 404)
    if session.scalar(
        select(RoutingWord.id).where(RoutingWord.word == word, RoutingWord.subcategory_id == sub.id)
    ):
        raise RoutingWordError(
            f"{word!r} is already a word of {sub.name}", f"「{word}」已是「{sub.name}」的分派词"
        )
    row = RoutingWord(
        word=word,
        subcategory=sub,
        department_code=department or None,
        level=level,
        active=True,
        created_by=by,
        created_at=now,
    )
    try:
        Router(extra_routes=[_route(row)])
    except (RoutingConfigError, ValueError) as exc:
        raise RoutingWordError(
            str(exc), f"该分派词无法使用：「{sub.category.name}/{sub.name}」不能按词分派，或部门不在分派表中"
        ) from None
    session.add(row)
    session.flush()
    return row


def remove_word(session: Session, word_id: int) -> None:
    row = session.get(RoutingWord, word_id)
    if row is None:
        raise RoutingWordError(f"no routing word {word_id}", "该分派词不存在", 404)
    session.delete(row)
    session.flush()


_cache: dict[int, tuple[tuple[Any, ...], Router]] = {}
_lock = threading.Lock()


def router_for(session: Session) -> Router:
    """The router with the database's words; rebuilt only when the words change."""
    signature = tuple(session.execute(select(func.count(), func.max(RoutingWord.id))).one())
    key = id(session.get_bind())
    with _lock:
        cached = _cache.get(key)
        if cached and cached[0] == signature:
            return cached[1]
    rows = session.scalars(select(RoutingWord).where(RoutingWord.active).order_by(RoutingWord.id.desc()))
    router = Router(extra_routes=[_route(r) for r in rows])
    with _lock:
        _cache[key] = (signature, router)
    return router
