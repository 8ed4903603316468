"""Tables of the dispatch package: departments, the category tree, tickets and their events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import (
    false as sa_false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from core.db import Base
from core.departments import Department
from dispatch.states import TicketState, state_change_allowed


class Channel(StrEnum):
    PHONE = "phone"
    WEB = "web"
    APP = "app"
    POLICE_110 = "110"
    OPEN311 = "open311"


CHANNEL_LABELS = {
    Channel.PHONE: "电话",
    Channel.WEB: "网上信箱",
    Channel.APP: "移动应用",
    Channel.POLICE_110: "110联动",
    Channel.OPEN311: "Open311",
}


class Category(Base):
    """A top-level ticket category (政策咨询, 生活求助 …) with its allowed deadline range."""

    __tablename__ = "categories"
    __table_args__ = (CheckConstraint("min_days <= max_days", name="range_ordered"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    # "on_the_spot": closed on the call; "department"; "supervision_centre"; "emergency"
    handling: Mapped[str] = mapped_column(String(24))
    min_days: Mapped[int] = mapped_column(Integer)
    max_days: Mapped[int] = mapped_column(Integer)
    default_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    subcategories: Mapped[list[SubCategory]] = relationship(
        back_populates="category", order_by="SubCategory.sort_order"
    )
    default_department: Mapped[Department | None] = relationship()


class SubCategory(Base):
    """A sub-category with its deadline in working days (停水 1 day, 噪音扰民 5 days …)."""

    __tablename__ = "subcategories"
    __table_args__ = (
        UniqueConstraint("category_id", "name"),
        CheckConstraint("deadline_days >= 0", name="deadline_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    deadline_days: Mapped[int] = mapped_column(Integer)
    default_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    category: Mapped[Category] = relationship(back_populates="subcategories", lazy="joined")
    default_department: Mapped[Department | None] = relationship()


ticket_assisting_departments = Table(
    "ticket_assisting_departments",
    Base.metadata,
    Column("ticket_id", ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", ForeignKey("departments.id"), primary_key=True, index=True),
)


class Ticket(Base):
    """A citizen's request (工单). Its `state` changes only through `dispatch.state_machine`."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_state_deadline", "state", "deadline"),
        Index("ix_tickets_department_state", "lead_department_id", "state"),
        Index("ix_tickets_created_at", "created_at"),
        Index("ix_tickets_caller_phone", "caller_phone"),
        # Hotspots and duplicates count the tickets of one place over a window of time.
        Index("ix_tickets_community_created", "community_code", "created_at"),
        Index("ix_tickets_town_community_created", "town_code", "community_code", "created_at"),
        # Covering indexes for the monthly KPIs: the aggregates read only the index (see sla.kpi).
        Index(
            "ix_tickets_replied_kpi",
            "replied_at",
            "lead_department_id",
            "category_id",
            "deadline",
            "handling_minutes",
        ),
        Index("ix_tickets_deadline_kpi", "deadline", "lead_department_id", "category_id", "state"),
        CheckConstraint(
            "state IN ('registered', 'closed', 'dispatched', 'in_progress', 'returned', "
            "'replied', 'archived', 'merged')",
            name="state_known",
        ),
        CheckConstraint("channel IN ('phone', 'web', 'app', '110', 'open311')", name="channel_known"),
        CheckConstraint("reopen_count >= 0", name="reopen_count_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    caller_phone: Mapped[str | None] = mapped_column(String(32))
    caller_name: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(256))
    # Where the matter is, by the gazetteer (dispatch.gazetteer): town and, when known, community.
    town_code: Mapped[str | None] = mapped_column(String(32))
    community_code: Mapped[str | None] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    subcategory_id: Mapped[int | None] = mapped_column(ForeignKey("subcategories.id"))
    lead_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    state: Mapped[str] = mapped_column(String(16))
    deadline: Mapped[datetime | None] = mapped_column(DateTime)
    # 应急处突: the first progress reply is due within an hour of dispatch.
    first_reply_due: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime)
    returned_at: Mapped[datetime | None] = mapped_column(DateTime)
    signed_at: Mapped[datetime | None] = mapped_column(DateTime)
    replied_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    reply_text: Mapped[str | None] = mapped_column(Text)  # 办理结果
    # Working minutes from dispatch to reply, kept at reply so KPIs can average it in SQL.
    handling_minutes: Mapped[int | None] = mapped_column(Integer)
    return_reason: Mapped[str | None] = mapped_column(Text)
    kb_entry_id: Mapped[str | None] = mapped_column(String(64))  # 直接答复: the entry read out
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    supervision_count: Mapped[int] = mapped_column(Integer, default=0)  # 督办 raised so far
    extension_requested_days: Mapped[int | None] = mapped_column(Integer)  # pending 延期申请
    extension_reason: Mapped[str | None] = mapped_column(Text)
    extension_days_granted: Mapped[int] = mapped_column(Integer, default=0)
    callback_result: Mapped[str | None] = mapped_column(String(24))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    private: Mapped[bool] = mapped_column(Boolean, default=False)  # never publicly disclosed
    # The citizen agreed that the matter and its result may be published (办理公开); asked on every
    # channel (the operator asks on the phone). Without it the ticket never appears in public.
    disclosure_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    # The hotline's review of the department's reply: until approved it reaches neither the citizen
    # (look-up, callback survey) nor the public pages.
    reply_approved_at: Mapped[datetime | None] = mapped_column(DateTime)
    reply_approved_by: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Optimistic lock: an UPDATE that finds another version changed nothing (see state_machine).
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    category: Mapped[Category | None] = relationship(lazy="joined")
    subcategory: Mapped[SubCategory | None] = relationship(lazy="joined")
    lead_department: Mapped[Department | None] = relationship(lazy="joined")
    assisting_departments: Mapped[list[Department]] = relationship(
        secondary=ticket_assisting_departments, lazy="selectin"
    )
    merged_into: Mapped[Ticket | None] = relationship(remote_side=[id])
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.seq", cascade="all, delete-orphan"
    )
    # Further citizens who called about the same matter (附加来电), each called back in turn.
    extra_callers: Mapped[list[TicketCaller]] = relationship(
        back_populates="ticket", order_by="TicketCaller.id", cascade="all, delete-orphan", lazy="selectin"
    )

    @validates("state")
    def _guard_state(self, _key: str, value: str) -> str:
        # The state machine is the only door: any other code setting `state` is a bug.
        if not state_change_allowed():
            raise RuntimeError("Ticket.state may only be changed by dispatch.state_machine")
        return TicketState(value).value

    @property
    def state_enum(self) -> TicketState:
        return TicketState(self.state)


class TicketEvent(Base):
    """One transition of a ticket: who, when, from which state to which, and why."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        UniqueConstraint("ticket_id", "seq"),
        Index("ix_ticket_events_action_at", "action", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(24), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(64))
    # The department holding the ticket when the event happened (returns and extensions per department).
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class TicketCaller(Base):
    """A further call about a ticket's matter (附加来电): linked instead of a new dispatch."""

    __tablename__ = "ticket_callers"
    __table_args__ = (
        Index("ix_ticket_callers_ticket_id", "ticket_id"),
        Index("ix_ticket_callers_phone", "phone"),  # a number's earlier calls (duplicates)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    phone: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)  # what this caller said
    call_uid: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(DateTime)
    by: Mapped[str] = mapped_column(String(64))  # the operator who linked it
    # How many times this number has now called about the matter (the ticket's own call counts);
    # REPEAT_CALLS or more is flagged (重复来电).
    call_count: Mapped[int] = mapped_column(Integer, default=1)

    ticket: Mapped[Ticket] = relationship(back_populates="extra_callers")


class TicketCounter(Base):
    """The last serial given out per day, for human-readable numbers like 20261121-0001."""

    __tablename__ = "ticket_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)
