"""How tickets are shown: urgency colours, the action forms a user may fill in, select options.

Presentation only: whether an action is allowed is asked of the state machine (`check_allowed`), the
"due soon" threshold is the SLA's own warning level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_ui.context import UiContext
from core.accounts.actor import Actor
from core.errors import HotlineError
from dispatch.models import Category, Department, Ticket
from dispatch.state_machine import check_allowed
from dispatch.states import ACTION_LABELS, AT_DEPARTMENT, Action, TicketState

Urgency = Literal["overdue", "soon", "normal", "none"]
URGENCY_LABELS = {"overdue": "已超期", "soon": "即将到期", "normal": "正常", "none": ""}


def due_soon_window(ctx: UiContext) -> timedelta:
    """Working time before the deadline at which the SLA warns "即将到期" (config sla.warnings)."""
    for level in ctx.settings.sla.warnings:
        if level.kind == "due_within" and level.working_hours:
            return timedelta(hours=level.working_hours)
    return timedelta(hours=7)


def urgency(ticket: Ticket, now: datetime, ctx: UiContext) -> Urgency:
    if ticket.deadline is None or TicketState(ticket.state) not in AT_DEPARTMENT:
        return "none"
    if ticket.deadline < now:
        return "overdue"
    if ctx.calendar.working_time_between(now, ticket.deadline) <= due_soon_window(ctx):
        return "soon"
    return "normal"


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
    departments = list(session.scalars(select(Department).where(Department.active).order_by(Department.id)))
    categories = list(session.scalars(select(Category).order_by(Category.sort_order)).unique())
    return Catalogue(departments, categories)
