"""Queue figures as SQL over the call-detail records: 接通率, speed of answer, share within 15 s."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.orm import Session

from callcenter.models import CallDirection, CallOutcome, CallRecord
from core.figures import ratio

# Seconds between two timestamps, in either dialect (SQLite has no interval type).
_SECONDS_PER_DAY = 86400.0


def _seconds(session: Session, later: Any, earlier: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * _SECONDS_PER_DAY
    return func.extract("epoch", later - earlier)


@dataclass
class QueueFigures:
    offered: int
    answered: int
    abandoned: int
    callback_requested: int
    answer_rate: float | None  # 接通率: answered / offered
    average_speed_of_answer_seconds: float | None  # from offered to a seat answering
    answered_within_15s_rate: float | None  # share of answered calls answered within 15 s of offer
    longest_wait_seconds: float | None  # longest time a caller waited, answered or not

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue_figures(
    session: Session, start: datetime, end: datetime, within_seconds: float = 15
) -> QueueFigures:
    """Inbound calls offered in [start, end)."""
    wait_to_answer = _seconds(session, CallRecord.answered_at, CallRecord.offered_at)
    waited = _seconds(
        session, func.coalesce(CallRecord.answered_at, CallRecord.ended_at), CallRecord.offered_at
    )
    answered = CallRecord.answered_at.is_not(None)
    row = session.execute(
        select(
            func.count(),
            func.count().filter(answered),
            func.count().filter(CallRecord.outcome == CallOutcome.ABANDONED.value),
            func.count().filter(CallRecord.outcome == CallOutcome.CALLBACK_REQUESTED.value),
            func.avg(case((answered, cast(wait_to_answer, Float)))),
            func.count().filter(and_(answered, wait_to_answer <= within_seconds)),
            func.max(cast(waited, Float)),
        ).where(
            CallRecord.direction == CallDirection.INBOUND.value,
            CallRecord.offered_at >= start,
            CallRecord.offered_at < end,
        )
    ).one()
    offered, n_answered, abandoned, callbacks, asa, within, longest = row
    return QueueFigures(
        offered=offered,
        answered=n_answered,
        abandoned=abandoned,
        callback_requested=callbacks,
        answer_rate=ratio(n_answered, offered),
        average_speed_of_answer_seconds=round(asa, 2) if asa is not None else None,
        answered_within_15s_rate=ratio(within, n_answered),
        longest_wait_seconds=round(longest, 2) if longest is not None else None,
    )
