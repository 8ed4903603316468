"""How tickets are shown: urgency colours, the action forms a user may fill in, select options.

Presentation only: whether an action is allowed is asked of the state machine (`check_allowed`), how
urgent a ticket is of the SLA (`sla.urgency`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from agent_ui.context import UiContext
from core.accounts.actor import Actor
from core.accounts.models import ROLE_LABELS, Role
from core.departments import Department
from core.errors import HotlineError
from dispatch import catalog
from dispatch.models import Category, Ticket
from dispatch.state_machine import check_allowed
from dispatch.states import ACTION_LABELS, STATE_LABELS, Action, TicketState
from sla.urgency import Urgency
from sla.urgency import urgency as sla_urgency


def urgency(ticket: Ticket, now: datetime, ctx: UiContext) -> Urgency:
    """The SLA's urgency of a ticket, for its colour on screen."""
    return sla_urgency(ticket, now, ctx.calendar, ctx.settings.sla.warnings)


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: Literal["text", "textarea", "number", "department", "subcategory", "callback", "check"] = "text"
    required: bool = True
    placeholder: str = ""


@dataclass(frozen=True)
class ActionForm:
    action: Action
    fields: tuple[FormField, ...] = ()
    style: str = "primary"
    confirm: str = ""

    @property
    def label(self) -> str:
        return ACTION_LABELS[self.action]


NOTE = FormField("note", "备注", required=False, placeholder="可不填")
FORMS: dict[Action, ActionForm] = {
    f.action: f
    for f in (
        ActionForm(Action.SIGN, (NOTE,), "ok"),
        ActionForm(
            Action.REPLY, (FormField("result", "办理结果", "textarea", placeholder="写明办理过程和结果"),)
        ),
        ActionForm(
            Action.RETURN,
            (
                FormField(
                    "reason", "退单原因", "textarea", placeholder="说明为何不属本部门职责，建议改派哪个部门"
                ),
            ),
            "warn",
        ),
        ActionForm(
            Action.REQUEST_EXTENSION,
            (FormField("days", "延期工作日数", "number"), FormField("reason", "延期理由", "textarea")),
            "",
        ),
        ActionForm(Action.APPROVE_EXTENSION, (NOTE,), "ok"),
        ActionForm(Action.REFUSE_EXTENSION, (FormField("reason", "不同意的理由", "textarea"),), "warn"),
        ActionForm(
            Action.DISPATCH,
            (
                FormField("subcategory_id", "小类", "subcategory"),
                FormField("department", "承办部门", "department"),
                NOTE,
            ),
        ),
        ActionForm(
            Action.REDISPATCH,
            (
                FormField("department", "改派部门", "department"),
                FormField("subcategory_id", "小类（不改可不选）", "subcategory", required=False),
                NOTE,
            ),
        ),
        ActionForm(Action.ANSWER_ON_SPOT, (FormField("answer", "答复内容", "textarea"),), "ok"),
        ActionForm(Action.SUPERVISE, (FormField("note", "督办意见", "textarea", required=False),), "warn"),
        ActionForm(
            Action.RECORD_CALLBACK,
            (
                FormField("result", "回访结果", "callback"),
                FormField("solved", "问题已解决", "check", False),
                NOTE,
            ),
        ),
        ActionForm(Action.APPROVE_REPLY, (FormField("note", "审核意见", required=False),), "ok"),
        ActionForm(
            Action.REJECT_REPLY,
            (
                FormField(
                    "reason", "退回理由", "textarea", placeholder="说明答复哪里不符合要求，部门须重新答复"
                ),
            ),
            "warn",
        ),
        ActionForm(
            Action.ADD_CALLER,
            (
                FormField("content", "来电人所述", "textarea", placeholder="同一诉求的又一位来电人说了什么"),
                FormField("caller_phone", "来电号码", required=False, placeholder="办结后回访此号码"),
                FormField("caller_name", "来电人", required=False),
            ),
            "",
        ),
        ActionForm(Action.REOPEN, (FormField("reason", "重办原因", "textarea"),), "warn"),
        ActionForm(Action.ARCHIVE, (NOTE,), ""),
        ActionForm(
            Action.MERGE,
            (FormField("into", "并入工单号", placeholder="如 20261116-0001"), NOTE),
            "",
            "并单后本工单将关闭，确定吗？",
        ),
    )
}


def allowed_forms(ticket: Ticket, actor: Actor) -> list[ActionForm]:
    """The action forms `actor` may use on `ticket` now, in the order of FORMS."""
    out = []
    for action, form in FORMS.items():
        try:
            check_allowed(ticket, actor, action)
        except HotlineError:
            continue
        out.append(form)
    return out


@dataclass
class Catalogue:
    """Departments and the category tree for the pages' select boxes."""

    departments: list[Department] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)


def catalogue(session: Session) -> Catalogue:
    return Catalogue(catalog.departments(session, active_only=True), catalog.categories(session))


# ---- the audit log, for people -------------------------------------------------------------------

AUDIT_KEYS = {
    "numbers": "工单", "department": "部门", "subcategory_id": "小类", "note": "备注", "reason": "原因",
    "result": "结果", "solved": "是否解决", "days": "天数", "channel": "渠道", "username": "用户名",
    "role": "角色", "call": "通话", "call_uid": "通话", "external_id": "外部编号", "answer": "答复",
    "kb_entry_id": "知识库条目", "state": "状态", "text": "内容", "caller_phone": "来电号码",
    "active": "启用", "kind": "类型", "day": "日期", "name": "名称", "code": "代码", "phone": "电话",
    "outcome": "结果", "display_name": "姓名", "user_id": "用户编号", "level": "级别", "word": "词语",
    "category": "大类", "overdue": "已超期", "limit": "条数", "offset": "起始",
}  # fmt: skip


def audit_detail(detail: dict[str, object] | None, departments: dict[str, str]) -> str:
    """An audit entry's details as a line a person reads: Chinese names, department names for codes,
    是/否 for booleans, lists joined — never raw JSON."""
    if not detail:
        return ""
    parts = []
    for key, value in detail.items():
        if value is None or value == "" or value == []:
            continue
        parts.append(f"{AUDIT_KEYS.get(key, key)}：{_audit_value(key, value, departments)}")
    return "；".join(parts)


def _audit_value(key: str, value: object, departments: dict[str, str]) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(_audit_value(key, v, departments) for v in value)
    if isinstance(value, dict):
        return audit_detail(value, departments)
    if key == "department" and isinstance(value, str):
        return departments.get(value, value)
    if key == "role" and isinstance(value, str) and value in Role.__members__.values():
        return ROLE_LABELS[Role(value)]
    if key == "state" and isinstance(value, str) and value in TicketState.__members__.values():
        return STATE_LABELS[TicketState(value)]
    return str(value)
