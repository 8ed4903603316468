"""The ticket life of DESIGN.md as data: states, actions, and which action leads where.

```
 registered ──answer_on_spot──▶ closed
     └─dispatch──▶ dispatched ──sign──▶ in_progress ──reply──▶ replied ──record_callback──▶ archived
                    │   ▲                 │    ▲                                           │
                    │   └──redispatch───┐ │    └────────────── reopen ◀────────────────────┘
                    └──return──────▶ returned ◀──return──┘
 request/approve/refuse_extension, supervise: the state stays; merge: an open ticket ▶ merged
```
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

from core import audit
from core.accounts.models import Role


class TicketState(StrEnum):
    REGISTERED = "registered"  # 已登记
    CLOSED = "closed"  # 直接答复办结
    DISPATCHED = "dispatched"  # 已派单
    IN_PROGRESS = "in_progress"  # 办理中 (signed for)
    RETURNED = "returned"  # 已退单
    REPLIED = "replied"  # 已答复, awaiting the callback
    ARCHIVED = "archived"  # 已归档
    MERGED = "merged"  # 已并单 into another ticket


STATE_LABELS = {
    TicketState.REGISTERED: "已登记",
    TicketState.CLOSED: "直接答复",
    TicketState.DISPATCHED: "已派单",
    TicketState.IN_PROGRESS: "办理中",
    TicketState.RETURNED: "已退单",
    TicketState.REPLIED: "已答复",
    TicketState.ARCHIVED: "已归档",
    TicketState.MERGED: "已并单",
}

OPEN_STATES = frozenset(
    {
        TicketState.REGISTERED,
        TicketState.DISPATCHED,
        TicketState.IN_PROGRESS,
        TicketState.RETURNED,
        TicketState.REPLIED,
    }
)
# States in which a department holds the ticket and its deadline runs.
AT_DEPARTMENT = frozenset({TicketState.DISPATCHED, TicketState.IN_PROGRESS})


class Action(StrEnum):
    REGISTER = "register"
    ANSWER_ON_SPOT = "answer_on_spot"
    DISPATCH = "dispatch"
    SIGN = "sign"
    REPLY = "reply"
    RETURN = "return"
    REDISPATCH = "redispatch"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    REFUSE_EXTENSION = "refuse_extension"
    SUPERVISE = "supervise"
    RECORD_CALLBACK = "record_callback"
    REOPEN = "reopen"
    ARCHIVE = "archive"
    MERGE = "merge"
    ABSORB_DUPLICATE = "absorb_duplicate"  # the surviving ticket of a merge notes what it took in
    APPROVE_REPLY = "approve_reply"  # the hotline's review lets the department's reply out
    REJECT_REPLY = "reject_reply"  # … or sends it back to the department to answer again
    ADD_CALLER = "add_caller"  # another citizen called about the same matter (附加来电)


ACTION_LABELS = {
    Action.REGISTER: "登记",
    Action.ANSWER_ON_SPOT: "直接答复",
    Action.DISPATCH: "派单",
    Action.SIGN: "签收",
    Action.REPLY: "答复",
    Action.RETURN: "退单",
    Action.REDISPATCH: "重新派单",
    Action.REQUEST_EXTENSION: "延期申请",
    Action.APPROVE_EXTENSION: "同意延期",
    Action.REFUSE_EXTENSION: "不同意延期",
    Action.SUPERVISE: "督办",
    Action.RECORD_CALLBACK: "回访",
    Action.REOPEN: "重办",
    Action.ARCHIVE: "归档",
    Action.MERGE: "并单",
    Action.ABSORB_DUPLICATE: "并入重复工单",
    Action.APPROVE_REPLY: "审核通过答复",
    Action.REJECT_REPLY: "退回答复",
    Action.ADD_CALLER: "附加来电",
}

HOTLINE_STAFF = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN})
SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
DEPARTMENT = frozenset({Role.LIAISON})
SYSTEM = frozenset({Role.SYSTEM})


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[TicketState]
    target: TicketState | None  # None: the state stays as it is
    roles: frozenset[Role]


def _t(
    action: Action, sources: set[TicketState], target: TicketState | None, roles: frozenset[Role]
) -> Transition:
    return Transition(action, frozenset(sources), target, roles)


S = TicketState
TRANSITIONS: dict[Action, Transition] = {
    t.action: t
    for t in (
        _t(Action.ANSWER_ON_SPOT, {S.REGISTERED}, S.CLOSED, HOTLINE_STAFF),
        _t(Action.DISPATCH, {S.REGISTERED}, S.DISPATCHED, HOTLINE_STAFF | SYSTEM),
        _t(Action.SIGN, {S.DISPATCHED}, S.IN_PROGRESS, DEPARTMENT),
        _t(Action.REPLY, {S.IN_PROGRESS}, S.REPLIED, DEPARTMENT),
        _t(Action.RETURN, {S.DISPATCHED, S.IN_PROGRESS}, S.RETURNED, DEPARTMENT),
        _t(Action.REDISPATCH, {S.RETURNED}, S.DISPATCHED, HOTLINE_STAFF),
        _t(Action.REQUEST_EXTENSION, {S.IN_PROGRESS}, None, DEPARTMENT),
        _t(Action.APPROVE_EXTENSION, {S.IN_PROGRESS}, None, SUPERVISORS),
        _t(Action.REFUSE_EXTENSION, {S.IN_PROGRESS}, None, SUPERVISORS),
        _t(Action.SUPERVISE, set(OPEN_STATES), None, SUPERVISORS | SYSTEM),
        _t(Action.RECORD_CALLBACK, {S.REPLIED}, S.ARCHIVED, HOTLINE_STAFF | SYSTEM),
        _t(Action.REOPEN, {S.ARCHIVED}, S.IN_PROGRESS, SUPERVISORS | SYSTEM),
        _t(Action.ARCHIVE, {S.REPLIED}, S.ARCHIVED, SUPERVISORS | SYSTEM),
        _t(
            Action.MERGE,
            {S.REGISTERED, S.DISPATCHED, S.IN_PROGRESS, S.RETURNED},
            S.MERGED,
            HOTLINE_STAFF,
        ),
        _t(Action.ABSORB_DUPLICATE, set(OPEN_STATES), None, HOTLINE_STAFF),
        _t(Action.APPROVE_REPLY, {S.REPLIED}, None, HOTLINE_STAFF),
        _t(Action.REJECT_REPLY, {S.REPLIED}, S.IN_PROGRESS, HOTLINE_STAFF),
        _t(Action.ADD_CALLER, set(OPEN_STATES), None, HOTLINE_STAFF),
    )
}

_state_door_open: ContextVar[bool] = ContextVar("ticket_state_door_open", default=False)


def state_change_allowed() -> bool:
    return _state_door_open.get()


@contextmanager
def state_door() -> Iterator[None]:
    """Opened only by the state machine while it applies a transition."""
    token = _state_door_open.set(True)
    try:
        yield
    finally:
        _state_door_open.reset(token)


# The audit log shows a ticket action by its Chinese name.
audit.register_labels({f"ticket.{action.value}": label for action, label in ACTION_LABELS.items()})
