"""Tables of the SLA package: warnings raised by the sweeps, and the record of the sweeps themselves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class SlaWarning(Base):
    """A notification for the department and the supervisors (即将到期, 已超期 …).

    Unique per ticket, level and the deadline it refers to: repeated sweeps, restarts and a second
    process never raise it twice, while an extended or reopened ticket can be warned again.
    """

    __tablename__ = "sla_warnings"
    __table_args__ = (
        UniqueConstraint("ticket_id", "level", "reference_at"),
        Index("ix_sla_warnings_department_created", "department_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(24))
    # The deadline (or dispatch time, for not_signed) the warning is about.
    reference_at: Mapped[datetime] = mapped_column(DateTime)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    message: Mapped[str] = mapped_column(Text)
    read_by_department_at: Mapped[datetime | None] = mapped_column(DateTime)
    read_by_supervisor_at: Mapped[datetime | None] = mapped_column(DateTime)


class SweepRun(Base):
    """The last SLA sweep; its row is also the lock that lets only one process sweep at a time."""

    __tablename__ = "sla_sweeps"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    raised: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)


class Appeal(Base):
    """A unit disputes one rating of its 三率 (申诉): one ticket, one figure, one month. Accepted, the
    ticket leaves that figure of that unit's month; rejected, the rating stands. Decided once."""

    __tablename__ = "appeals"
    __table_args__ = (
        UniqueConstraint("ticket_id", "figure", "month", "department_id"),
        Index("ix_appeals_state_created", "state", "created_at"),
        CheckConstraint("state IN ('pending', 'accepted', 'rejected')", name="appeal_state_known"),
        CheckConstraint(
            "figure IN ('response', 'resolution', 'satisfaction', 'on_time')", name="appeal_figure_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    figure: Mapped[str] = mapped_column(String(16))
    month: Mapped[str] = mapped_column(String(7))  # 2026-11
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)  # what proves it: a call, a document, a photo
    state: Mapped[str] = mapped_column(String(12), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_note: Mapped[str | None] = mapped_column(Text)


class HotspotAlert(Base):
    """A hotspot early warning (热点预警): many tickets of one place and topic in a short time
    (kind "spike"), or words that must reach the leaders at once (kind "sensitive"). Open until a
    supervisor acknowledges it (已知悉) and closes it with a note (已处置); both audited."""

    __tablename__ = "hotspot_alerts"
    __table_args__ = (
        Index("ix_hotspot_alerts_state_created", "state", "created_at"),
        Index("ix_hotspot_alerts_key", "key"),
        CheckConstraint("kind IN ('spike', 'sensitive')", name="hotspot_kind_known"),
        CheckConstraint("state IN ('open', 'acknowledged', 'closed')", name="hotspot_state_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    # What makes two sweeps' findings the same alert: kind, place, topic and window (or the ticket).
    key: Mapped[str] = mapped_column(String(160))
    state: Mapped[str] = mapped_column(String(12), default="open")
    town_code: Mapped[str | None] = mapped_column(String(32))
    community_code: Mapped[str | None] = mapped_column(String(32))
    subcategory_id: Mapped[int | None] = mapped_column(ForeignKey("subcategories.id"))
    title: Mapped[str] = mapped_column(String(200))  # 滨河街道东风社区 · 停水：2小时内5件
    window_hours: Mapped[float | None] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)
    expected: Mapped[float | None] = mapped_column(Float)  # the baseline's count for the window
    p_value: Mapped[float | None] = mapped_column(Float)
    words: Mapped[list[str]] = mapped_column(JSON, default=list)
    tickets: Mapped[list[str]] = mapped_column(JSON, default=list)  # ticket numbers behind it
    first_at: Mapped[datetime] = mapped_column(DateTime)
    last_at: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    notified_at: Mapped[datetime | None] = mapped_column(DateTime)  # SMS to the leaders handed over
