"""Tables of the callback surveys: the callback queue, its attempts, opted-out numbers, web survey
links and the SMS outbox. The queue is the one truth: a process that dies loses nothing."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base
from dispatch.models import Ticket


class CallbackState(StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    CALLING = "calling"  # claimed by a process that is calling right now
    DONE = "done"  # the citizen answered the survey (result recorded on the ticket)
    UNREACHABLE = "unreachable"  # every attempt failed: a supervisor decides
    OPTED_OUT = "opted_out"  # the number asked not to be called
    CANCELLED = "cancelled"  # the ticket left `replied` another way (archived by a supervisor …)


class CallbackMode(StrEnum):
    AUTO = "auto"  # the survey call of the call centre
    PERSON = "person"  # an operator calls (emergency and complex tickets)


class AttemptOutcome(StrEnum):
    CALLING = "calling"
    ANSWERED = "answered"  # a valid key (or an operator's result)
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    NO_INPUT = "no_input"  # answered, pressed nothing (twice)
    INVALID_INPUT = "invalid_input"  # answered, pressed only wrong keys
    HUNG_UP = "hung_up"  # answered and hung up before choosing
    FAILED = "failed"  # the call could not be placed (no worker, a fault)
    INTERRUPTED = "interrupted"  # the process placing it stopped; never dialled again for this attempt


CALLBACK_STATE_LABELS = {
    CallbackState.PENDING: "待回访",
    CallbackState.CALLING: "回访中",
    CallbackState.DONE: "已回访",
    CallbackState.UNREACHABLE: "联系不上",
    CallbackState.OPTED_OUT: "拒绝回访",
    CallbackState.CANCELLED: "已取消",
}
RESULT_LABELS = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}


def _known(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Callback(Base):
    """One callback survey of one replied ticket (a reopened and replied-again ticket gets another)."""

    __tablename__ = "callbacks"
    __table_args__ = (
        # The claim reads this index only: the oldest due pending callback of a mode.
        Index("ix_callbacks_due", "state", "mode", "next_attempt_at", "id"),
        Index("ix_callbacks_phone", "phone"),
        Index("ix_callbacks_finished_at", "finished_at"),
        UniqueConstraint("ticket_id", "round", "extra_caller_id"),
        CheckConstraint(_known("state", CallbackState), name="state_known"),
        CheckConstraint(_known("mode", CallbackMode), name="mode_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    # 1 for the first reply, 2 after a reopen and a second reply …
    round: Mapped[int] = mapped_column(Integer, default=1)
    # 0: the ticket's own caller, whose answer settles the ticket; else the ticket_callers row of a
    # further caller (附加来电), whose answer is kept on the callback only.
    extra_caller_id: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    phone: Mapped[str | None] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    result: Mapped[str | None] = mapped_column(String(24))
    solved: Mapped[bool | None] = mapped_column()
    channel: Mapped[str | None] = mapped_column(String(8))  # phone (machine), manual (operator), web
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    ticket: Mapped[Ticket] = relationship(lazy="selectin")


class CallbackAttempt(Base):
    """One attempt to reach the citizen. (callback, number) is unique: written when the attempt is
    claimed, before anyone dials, so a second process or a restart cannot place the same attempt."""

    __tablename__ = "callback_attempts"
    __table_args__ = (
        UniqueConstraint("callback_id", "number"),
        CheckConstraint(_known("outcome", AttemptOutcome), name="outcome_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    callback_id: Mapped[int] = mapped_column(ForeignKey("callbacks.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(8))  # phone, manual
    claimed_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    call_uid: Mapped[str | None] = mapped_column(String(40))
    digits: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class PhoneOptOut(Base):
    """A number that asked not to be called back (never dialled by the survey)."""

    __tablename__ = "phone_opt_outs"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str | None] = mapped_column(Text)


class SurveyLink(Base):
    """A web survey link: single use, expiring. Only the token's SHA-256 is stored."""

    __tablename__ = "survey_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    callback_id: Mapped[int] = mapped_column(ForeignKey("callbacks.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class SmsMessage(Base):
    """Every SMS handed to the gateway, with what the gateway said."""

    __tablename__ = "sms_outbox"
    __table_args__ = (CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    callback_id: Mapped[int | None] = mapped_column(ForeignKey("callbacks.id", ondelete="SET NULL"))
