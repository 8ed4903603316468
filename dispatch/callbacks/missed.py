"""Missed calls (回拨): citizens who hung up in the queue or left a callback request when it was full.

Operators call them back from the seat console, oldest first; how it went is written on the call
record itself (`callback_outcome`, when, by whom) and as a call event.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callcenter.models import CallDirection, CallEvent, CallOutcome, CallRecord
from core.clock import Clock
from dispatch.callbacks.service import CallbackError, CallbackNotFound

MISSED = (CallOutcome.ABANDONED.value, CallOutcome.CALLBACK_REQUESTED.value)


class MissedOutcome(StrEnum):
    REACHED = "reached"  # talked to the citizen
    NOT_REACHED = "not_reached"  # no answer, busy, switched off
    NOT_NEEDED = "not_needed"  # called again meanwhile, wrong number …


MISSED_OUTCOME_LABELS = {
    MissedOutcome.REACHED: "已回拨接通",
    MissedOutcome.NOT_REACHED: "回拨未接通",
    MissedOutcome.NOT_NEEDED: "无需回拨",
}


def missed_calls(session: Session, limit: int = 100) -> list[CallRecord]:
    """Missed calls not yet called back, oldest first."""
    return list(
        session.scalars(
            select(CallRecord)
            .where(
                CallRecord.direction == CallDirection.INBOUND.value,
                CallRecord.outcome.in_(MISSED),
                CallRecord.callback_outcome.is_(None),
            )
            .order_by(CallRecord.offered_at, CallRecord.id)
            .limit(limit)
        )
    )


def missed_call(session: Session, uid: str) -> CallRecord:
    record = session.scalar(select(CallRecord).where(CallRecord.uid == uid))
    if record is None or record.outcome not in MISSED or record.direction != CallDirection.INBOUND.value:
        raise CallbackNotFound(f"no missed call {uid}", f"未找到未接来电 {uid}")
    return record


def record_missed_outcome(
    session: Session, clock: Clock, uid: str, outcome: MissedOutcome, user_id: int, note: str | None = None
) -> CallRecord:
    """Write the callback's outcome on the call record (once: a second operator gets a clear refusal)."""
    record = missed_call(session, uid)
    now = clock.now()
    done = session.execute(
        update(CallRecord)
        .where(CallRecord.id == record.id, CallRecord.callback_outcome.is_(None))
        .values(callback_outcome=outcome.value, called_back_at=now, called_back_by_id=user_id)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise CallbackError(f"missed call {uid} was already called back", "该未接来电已由他人回拨处理")
    detail: dict[str, Any] = {"outcome": outcome.value, "user_id": user_id, "note": note}
    session.add(CallEvent(call_id=record.id, at=now, kind="called_back", detail=detail))
    session.refresh(record)
    return record
