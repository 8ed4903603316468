"""Tables of the SLA package: warnings raised by the sweeps, and the record of the sweeps themselves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
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
