"""Tables of the knowledge base: entries and every version of every entry."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base


class KbEntry(Base):
    """One answer an operator may read out on the call (简单咨询)."""

    __tablename__ = "kb_entries"
    __table_args__ = (Index("ix_kb_entries_active_topic", "active", "topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)  # e.g. "kbs-001"
    question: Mapped[str] = mapped_column(Text)
    alternatives: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Code of the department that owns the answer (dispatch.models.Department.code).
    department_code: Mapped[str | None] = mapped_column(String(32), index=True)
    topic: Mapped[str | None] = mapped_column(String(64))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)
    hit_count: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    versions: Mapped[list[KbEntryVersion]] = relationship(
        back_populates="entry", order_by="KbEntryVersion.version", cascade="all, delete-orphan"
    )


class KbEntryVersion(Base):
    """A full snapshot of an entry as it was after one change: who, when, why."""

    __tablename__ = "kb_entry_versions"
    __table_args__ = (UniqueConstraint("entry_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("kb_entries.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    changed_by: Mapped[str | None] = mapped_column(String(128))
    changed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(DateTime)
    note: Mapped[str | None] = mapped_column(Text)

    entry: Mapped[KbEntry] = relationship(back_populates="versions")


class KbEntryVector(Base):
    """An entry's sentence embeddings for one embedding model, made from one version of the entry:
    a new version, or another model (core.semantics), makes them again."""

    __tablename__ = "kb_entry_vectors"
    __table_args__ = (UniqueConstraint("entry_id", "model"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("kb_entries.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)  # the entry version they were made from
    model: Mapped[str] = mapped_column(String(96))
    dim: Mapped[int] = mapped_column(Integer)
    phrasings: Mapped[bytes] = mapped_column(LargeBinary)  # float32, (1 + alternatives) x dim
    created_at: Mapped[datetime] = mapped_column(DateTime)
