"""Appeals (申诉) against a 三率 rating or an overdue: a unit's liaison disputes one failed rating of one
ticket with a reason and evidence; a supervisor accepts or rejects it, once. An accepted appeal takes
the ticket out of that figure of that unit's month (sla.evaluation); every step is in the audit log."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.accounts.actor import Actor
from core.accounts.models import Role
from core.errors import Conflict, NotFound, NotPermitted, RuleViolation
from dispatch.models import Ticket
from sla.calendar import WorkCalendar
from sla.evaluation import month_facts, month_range
from sla.models import Appeal
from sla.settings import FIGURE_LABELS, EvaluationSettings

AppealState = Literal["pending", "accepted", "rejected"]
APPEAL_STATE_LABELS = {"pending": "待审核", "accepted": "已采纳", "rejected": "已驳回"}
DECIDERS = (Role.SUPERVISOR, Role.ADMIN)


def appeal_deadline(first: date, settings: EvaluationSettings) -> datetime:
    return month_range(first)[1] + timedelta(days=settings.appeal_days)


def file_appeal(
    session: Session,
    settings: EvaluationSettings,
    calendar: WorkCalendar,
    actor: Actor,
    number: str,
    figure: str,
    first: date,
    reason: str,
    evidence: str | None,
    now: datetime,
) -> Appeal:
    """A liaison appeals a failed rating of their own unit's ticket in the month starting `first`."""
    if actor.role != Role.LIAISON or actor.department_id is None:
        raise NotPermitted("only a unit's liaison may appeal its ratings", "仅承办单位联络员可以申诉")
    if figure not in FIGURE_LABELS:
        raise RuleViolation(f"unknown figure {figure!r}", "申诉的考核指标不存在")
    if now > appeal_deadline(first, settings):
        raise RuleViolation(
            f"appeals for {first:%Y-%m} closed {settings.appeal_days} days after the month",
            f"{first:%Y年%m月}的申诉期已过（月末后{settings.appeal_days}天内）",
        )
    ticket = session.scalar(select(Ticket).where(Ticket.number == number))
    if ticket is None:
        raise NotFound(f"ticket {number} does not exist", "工单不存在")
    failed = [
        f
        for f in month_facts(session, settings, calendar, first, now, [ticket.id])
        if f.figure == figure and f.department_id == actor.department_id and not f.passed
    ]
    if not failed:
        raise RuleViolation(
            f"ticket {number} has no failed {figure} rating of your unit in {first:%Y-%m}",
            f"工单{number}在{first:%Y年%m月}没有本单位未达标的{FIGURE_LABELS[figure]}记录，无需申诉",
        )
    month = f"{first:%Y-%m}"
    existing = session.scalar(
        select(Appeal).where(
            Appeal.ticket_id == ticket.id,
            Appeal.figure == figure,
            Appeal.month == month,
            Appeal.department_id == actor.department_id,
        )
    )
    if existing is not None:
        raise Conflict(
            f"this rating was already appealed (appeal {existing.id}, {existing.state})",
            f"该记录已申诉过（{APPEAL_STATE_LABELS[existing.state]}），不能重复申诉",
        )
    appeal = Appeal(
        ticket_id=ticket.id,
        department_id=actor.department_id,
        figure=figure,
        month=month,
        reason=reason,
        evidence=evidence,
        state="pending",
        created_at=now,
        created_by=actor.name,
    )
    session.add(appeal)
    session.flush()
    _audit(session, actor, "appeal.file", ticket.number, appeal, now)
    return appeal


def decide_appeal(
    session: Session, actor: Actor, appeal_id: int, accept: bool, note: str | None, now: datetime
) -> tuple[Appeal, str]:
    """Accept or reject a pending appeal; returns it with its ticket's number."""
    if actor.role not in DECIDERS:
        raise NotPermitted("only supervisors decide appeals", "仅督办员可以审核申诉")
    appeal = session.get(Appeal, appeal_id, with_for_update=True)
    if appeal is None:
        raise NotFound(f"appeal {appeal_id} does not exist", "申诉不存在")
    if appeal.state != "pending":
        raise Conflict(
            f"appeal {appeal_id} was already decided ({appeal.state})",
            f"该申诉已审核（{APPEAL_STATE_LABELS[appeal.state]}），不能再次审核",
        )
    if not accept and not (note or "").strip():
        raise RuleViolation("a rejection needs a reason", "驳回申诉须填写理由")
    appeal.state = "accepted" if accept else "rejected"
    appeal.decided_at, appeal.decided_by, appeal.decision_note = now, actor.name, note
    session.flush()
    number = session.scalar(select(Ticket.number).where(Ticket.id == appeal.ticket_id))
    _audit(session, actor, "appeal.accept" if accept else "appeal.reject", number, appeal, now)
    return appeal, number or ""


def _audit(
    session: Session, actor: Actor, action: str, number: str | None, appeal: Appeal, now: datetime
) -> None:
    audit.record(
        session,
        at=now,
        action=action,
        username=actor.name,
        user_id=actor.user_id,
        role=actor.role.value,
        ticket_number=number,
        detail={"appeal": appeal.id, "figure": appeal.figure, "month": appeal.month, "state": appeal.state},
    )


def appeals(
    session: Session, state: AppealState | None = None, department_id: int | None = None, limit: int = 200
) -> list[tuple[Appeal, str]]:
    """Appeals with their ticket numbers, newest first; a liaison sees their own unit's only."""
    query = select(Appeal, Ticket.number).join(Ticket, Ticket.id == Appeal.ticket_id)
    if state:
        query = query.where(Appeal.state == state)
    if department_id is not None:
        query = query.where(Appeal.department_id == department_id)
    return [
        (a, n)
        for a, n in session.execute(query.order_by(Appeal.created_at.desc(), Appeal.id.desc()).limit(limit))
    ]


audit.register_labels({"appeal.file": "提出申诉", "appeal.accept": "采纳申诉", "appeal.reject": "驳回申诉"})
