"""The audit log: who looked at which ticket's personal data, and who did what, from pages and the API.

Rows are only ever added. `record` writes into the caller's transaction, so an action and its audit
row are committed together or not at all; `record_now` commits on its own, for refusals (a denied
view, a failed login) whose request is rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.db import Base, unit_of_work

# What an entry says happened (the action column); ticket actions are "ticket.<action>".
ACTION_LABELS = {
    "ticket.attachment.add": "上传附件",
    "ticket.attachment.view": "查看附件",
    "ticket.phone.reveal": "查看完整来电号码",
    "ticket.print": "打印工单",
    "ticket.export": "导出工单",
    "dashboard.export": "导出督办看板",
    "login": "登录",
    "login.failed": "登录失败",
    "login.locked": "登录被锁定",
    "logout": "退出登录",
    "ticket.view": "查看工单",
    "ticket.view.denied": "越权查看工单（已拒绝）",
    "ticket.list": "查询工单列表",
    "ticket.register": "登记工单",
    "user.create": "新建用户",
    "user.update": "修改用户",
    "calendar.change": "修改工作日历",
    "routing.change": "修改分派词",
    "department.change": "修改部门",
    "category.change": "修改分类时限",
    "seat.state": "坐席状态",
    "callback.list": "查看回访列表",
    "callback.view": "查看回访",
    "callback.dial": "拨打回访电话",
    "callback.result": "录入回访结果",
    "callback.link": "发送回访链接",
    "callback.opt_out": "登记拒绝回访号码",
    "missed_call.list": "查看未接来电",
    "missed_call.dial": "回拨未接来电",
    "missed_call.outcome": "录入回拨结果",
    "police.transfer": "登记转110移交",
}


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_ticket_at", "ticket_number", "at"),
        Index("ix_audit_log_user_at", "user_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(48))
    ticket_number: Mapped[str | None] = mapped_column(String(20))
    # "page" (the web pages) or "api" (the JSON API, whoever calls it)
    via: Mapped[str] = mapped_column(String(8))
    ip: Mapped[str | None] = mapped_column(String(64))
    # How many tickets a list showed, the numbers shown, the body's non-personal fields …
    count: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def register_labels(labels: dict[str, str]) -> None:
    """Domains name their own audited actions on screen (e.g. dispatch: "ticket.sign" → 签收)."""
    for action, label in labels.items():
        ACTION_LABELS.setdefault(action, label)


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action, action)


def record(
    session: Session,
    *,
    at: datetime,
    action: str,
    username: str,
    user_id: int | None = None,
    role: str | None = None,
    ticket_number: str | None = None,
    via: str = "api",
    ip: str | None = None,
    count: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=at,
        user_id=user_id,
        username=username[:64],
        role=role,
        action=action,
        ticket_number=ticket_number,
        via=via,
        ip=(ip or None) and ip[:64],
        count=count,
        detail=detail or {},
    )
    session.add(entry)
    return entry


def record_now(factory: sessionmaker[Session], **fields: Any) -> None:
    """Record in a transaction of its own (committed even when the request is refused)."""
    with unit_of_work(factory) as session:
        record(session, **fields)


def entries(
    session: Session,
    *,
    ticket_number: str | None = None,
    username: str | None = None,
    actions: Sequence[str] = (),
    limit: int = 200,
) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    if ticket_number:
        query = query.where(AuditEntry.ticket_number == ticket_number)
    if username:
        query = query.where(AuditEntry.username == username)
    if actions:
        query = query.where(AuditEntry.action.in_(list(actions)))
    return list(session.scalars(query))
