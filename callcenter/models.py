"""Tables of the call centre: seats and their states, call-detail records, call events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class SeatState(StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RINGING = "ringing"
    TALKING = "talking"
    WRAP_UP = "wrap_up"
    BREAK = "break"  # not ready: a pause, or skipped after not answering


SEAT_STATE_LABELS = {
    SeatState.LOGGED_OUT: "未签入",
    SeatState.READY: "空闲",
    SeatState.RINGING: "振铃",
    SeatState.TALKING: "通话中",
    SeatState.WRAP_UP: "话后处理",
    SeatState.BREAK: "小休",
}


class CallDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"  # callbacks and survey calls placed by the hotline


class CallOutcome(StrEnum):
    """How a call ended, from the hotline's point of view."""

    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"  # a seat talked to the citizen
    ABANDONED = "abandoned"  # the citizen hung up while queued
    CALLBACK_REQUESTED = "callback_requested"  # queue full or too slow; citizen left a callback request
    REJECTED = "rejected"  # the queue was full and the citizen did not leave a callback request
    TRANSFERRED = "transferred"  # handed to 110/119/120
    FAILED = "failed"  # lost to a fault (a worker crash, a media error)
    NOT_REACHED = "not_reached"  # outbound: busy, no answer, unreachable
    COMPLETED = "completed"  # outbound: the far end answered and the call ran to its end


class HangupSide(StrEnum):
    CITIZEN = "citizen"
    OPERATOR = "operator"
    SYSTEM = "system"


class Seat(Base):
    """An operator position (坐席): a phone extension, the operator signed in at it, its state."""

    __tablename__ = "seats"
    __table_args__ = (
        CheckConstraint(
            "state IN ('logged_out', 'ready', 'ringing', 'talking', 'wrap_up', 'break')", name="state_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    extension: Mapped[str] = mapped_column(String(16), unique=True)
    label: Mapped[str] = mapped_column(String(32))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=SeatState.LOGGED_OUT.value)
    state_since: Mapped[datetime] = mapped_column(DateTime)
    # When the seat last became ready: the longest-idle ready seat gets the next call.
    idle_since: Mapped[datetime | None] = mapped_column(DateTime)
    # Why a seat is on break: "pause" (the operator's choice) or "no_answer" (skipped by the queue).
    reason: Mapped[str | None] = mapped_column(String(32))
    current_call_uid: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(default=True)


class SeatStateChange(Base):
    """Every state a seat went through, for occupancy reports and the wallboard's timers."""

    __tablename__ = "seat_state_changes"
    __table_args__ = (Index("ix_seat_state_changes_seat_at", "seat_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seat_id: Mapped[int] = mapped_column(ForeignKey("seats.id"))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime)


class CallRecord(Base):
    """The call-detail record (CDR) of one citizen call, inbound or outbound."""

    __tablename__ = "call_records"
    __table_args__ = (
        Index("ix_call_records_offered_at", "offered_at"),
        Index("ix_call_records_caller", "caller"),
        Index("ix_call_records_missed", "outcome", "callback_outcome", "offered_at"),
        CheckConstraint(
            "outcome IN ('in_progress', 'answered', 'abandoned', 'callback_requested', 'rejected', "
            "'transferred', 'failed', 'not_reached', 'completed')",
            name="outcome_known",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Our own id of the call, shared with the media worker over IPC.
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    direction: Mapped[str] = mapped_column(String(16), default=CallDirection.INBOUND.value)
    caller: Mapped[str] = mapped_column(String(64))
    callee: Mapped[str] = mapped_column(String(64))
    sip_call_id: Mapped[str | None] = mapped_column(String(128))
    worker: Mapped[str | None] = mapped_column(String(32))
    offered_at: Mapped[datetime] = mapped_column(DateTime)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime)
    queue_position: Mapped[int | None] = mapped_column(Integer)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    seat_id: Mapped[int | None] = mapped_column(ForeignKey("seats.id"), index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(24), default=CallOutcome.IN_PROGRESS.value)
    hangup_cause: Mapped[str | None] = mapped_column(String(128))
    hangup_side: Mapped[str | None] = mapped_column(String(16))
    transfer_target: Mapped[str | None] = mapped_column(String(128))
    recording_path: Mapped[str | None] = mapped_column(String(512))
    recording_bytes: Mapped[int | None] = mapped_column(Integer)
    recording_sha256: Mapped[str | None] = mapped_column(String(64))
    recording_seconds: Mapped[float | None] = mapped_column(Float)
    # Digits the far end pressed (outbound survey calls), in order.
    dtmf: Mapped[str | None] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # A missed call (abandoned, or a callback request): how the operator's callback (回拨) went.
    callback_outcome: Mapped[str | None] = mapped_column(String(16))
    called_back_at: Mapped[datetime | None] = mapped_column(DateTime)
    called_back_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CallEvent(Base):
    """What happened during a call, in order: queued, ringing seat 1003, answered, conference ..."""

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call_records.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ControllerLease(Base):
    """Which process is the active call-centre controller, and where web processes reach it.

    Exclusivity itself comes from a lock that dies with its holder (a PostgreSQL advisory lock, or a
    file lock on one box); this row only says who holds it and is refreshed while it does, so a web
    process can tell a controller that hangs from one that works."""

    __tablename__ = "controller_leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))  # host:pid
    address: Mapped[str] = mapped_column(String(128))  # host:port of its control listener
    since: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
