"""The ticket life of DESIGN.md, driven through `TicketService.act` on both database backends.

Legal transitions: every action of `TRANSITIONS` from each of its source states by every role allowed
to take it, with the recorded event and the action's effects (deadlines checked against the calendar).
Illegal transitions, wrong roles and wrong departments: refused, and the ticket's row and events read
back in a new session are exactly as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from core.accounts.actor import Actor
from core.accounts.models import Role
from core.clock import ManualClock
from core.errors import HotlineError, NotFound, NotPermitted, RuleViolation
from dispatch import schemas
from dispatch.errors import IllegalTransition, TicketNotFound
from dispatch.models import Ticket, TicketEvent
from dispatch.state_machine import apply_transition, replay
from dispatch.states import OPEN_STATES, TRANSITIONS, Action, TicketState
from hotline.context import HotlineContext
from tests.conftest import MONDAY_9, Staff, subcategory_id
from tests.helpers import act, load, register, snapshot
from tests.helpers import dispatched as dispatch

S = TicketState
A = Action

# Dispatched Monday 2026-11-16 09:00 as 停水 (1 working day): due Tuesday at the end of office hours.
TUESDAY_END = datetime(2026, 11, 17, 17, 30)
ACTABLE = list(schemas.ACTION_BODIES)  # every action a person or job can ask the service for


# ---- helpers ------------------------------------------------------------------------------------


def sub_id(ctx: HotlineContext, name: str) -> int:
    with ctx.unit_of_work() as session:
        return subcategory_id(session, name)


def assert_refused(
    ctx: HotlineContext,
    number: str,
    actor: Actor,
    action: Action,
    body: BaseModel,
    error: type[HotlineError],
    also_unchanged: tuple[str, ...] = (),
) -> HotlineError:
    """`action` raises `error`, and the ticket (and `also_unchanged`) stay exactly as they were."""
    numbers = (number, *also_unchanged)
    before = [snapshot(ctx, n) for n in numbers]
    with pytest.raises(error) as info:
        act(ctx, number, actor, action, body)
    assert [snapshot(ctx, n) for n in numbers] == before
    return info.value


def actor_for_role(staff: Staff, role: Role) -> Actor:
    return {
        Role.OPERATOR: staff.operator,
        Role.SUPERVISOR: staff.supervisor,
        Role.ADMIN: staff.admin,
        Role.SYSTEM: Actor.system(),
        Role.LIAISON: staff.water,  # tickets below are dispatched to the water company (sw)
    }[role]


def default_actor(staff: Staff, action: Action) -> Actor:
    """Someone allowed to take `action`: hotline staff where they may, else the water liaison."""
    roles = TRANSITIONS[action].roles
    for role in (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, Role.SYSTEM, Role.LIAISON):
        if role in roles:
            return actor_for_role(staff, role)
    raise AssertionError(action)


def standard_body(
    ctx: HotlineContext, action: Action, into: str | None = None
) -> tuple[BaseModel, str | None]:
    """A valid body for `action` and the note its event should record."""
    if action == A.ANSWER_ON_SPOT:
        return schemas.AnswerOnSpotBody(answer="可携带身份证到政务服务中心补办", kb_entry_id="kb-17"), (
            "可携带身份证到政务服务中心补办"
        )
    if action == A.DISPATCH:
        body = schemas.DispatchBody(
            department="sw", subcategory_id=sub_id(ctx, "停水"), note="请尽快恢复供水"
        )
        return body, "请尽快恢复供水"
    if action == A.REDISPATCH:
        return schemas.RedispatchBody(department="cgj", note="改派城管局"), "改派城管局"
    if action == A.REPLY:
        return schemas.ReplyBody(result="管道已修复，供水已恢复"), "管道已修复，供水已恢复"
    if action == A.REQUEST_EXTENSION:
        return schemas.ExtensionBody(days=3, reason="需协调管网改造"), "需协调管网改造"
    if action == A.RECORD_CALLBACK:
        return schemas.CallbackBody(result="satisfied", solved=True, note="市民表示满意"), "市民表示满意"
    if action == A.MERGE:
        assert into is not None
        return schemas.MergeBody(into=into, note="同一事项重复来电"), "同一事项重复来电"
    if action == A.ADD_CALLER:
        said = "同一事项又一位市民来电"
        return schemas.AddCallerBody(content=said, caller_phone="13700002222"), said
    notes = {
        A.APPROVE_REPLY: "答复属实，同意回复市民",
        A.SIGN: "已签收",
        A.APPROVE_EXTENSION: "同意延期",
        A.SUPERVISE: "请加快办理",
        A.ARCHIVE: "回访无人接听，归档",
    }
    reasons = {
        A.RETURN: "不属于本单位职责",
        A.REFUSE_EXTENSION: "理由不充分",
        A.REOPEN: "市民反映问题未解决",
        A.REJECT_REPLY: "答复未写明恢复供水的时间",
    }
    if action in notes:
        return schemas.NoteBody(note=notes[action]), notes[action]
    return schemas.ReasonBody(reason=reasons[action]), reasons[action]


# How a ticket gets into each state (from registered), each step by its default actor.
PATH: dict[TicketState, list[Action]] = {
    S.REGISTERED: [],
    S.CLOSED: [A.ANSWER_ON_SPOT],
    S.DISPATCHED: [A.DISPATCH],
    S.IN_PROGRESS: [A.DISPATCH, A.SIGN],
    S.RETURNED: [A.DISPATCH, A.RETURN],
    S.REPLIED: [A.DISPATCH, A.SIGN, A.REPLY],
    S.ARCHIVED: [A.DISPATCH, A.SIGN, A.REPLY, A.RECORD_CALLBACK],
    S.MERGED: [A.DISPATCH, A.MERGE],
}


def make_ticket(ctx: HotlineContext, staff: Staff, state: TicketState) -> str:
    number = register(ctx, staff)
    for action in PATH[state]:
        into = register(ctx, staff, "同一小区停水") if action == A.MERGE else None
        act(ctx, number, default_actor(staff, action), action, standard_body(ctx, action, into)[0])
    assert load(ctx, number).state == state
    return number


def with_reply_under_review(ctx: HotlineContext, staff: Staff) -> str:
    """A replied ticket whose reply waits for the hotline's review (config dispatch.review_replies)."""
    number = make_ticket(ctx, staff, S.IN_PROGRESS)
    ctx.settings.dispatch.review_replies = True
    try:
        act(ctx, number, staff.water, A.REPLY, standard_body(ctx, A.REPLY)[0])
    finally:
        ctx.settings.dispatch.review_replies = False
    return number


def with_pending_extension(ctx: HotlineContext, staff: Staff, days: int = 3) -> str:
    number = make_ticket(ctx, staff, S.IN_PROGRESS)
    act(ctx, number, staff.water, A.REQUEST_EXTENSION, schemas.ExtensionBody(days=days, reason="需协调"))
    return number


# ---- every legal transition -----------------------------------------------------------------------

LEGAL = [
    (action, source)
    for action, transition in TRANSITIONS.items()
    if action in ACTABLE
    for source in sorted(transition.sources)
]


def check_effects(
    action: Action, before: Ticket, after: Ticket, now: datetime, body: BaseModel, into: str | None
) -> None:
    """What each action does besides the state (the clock stands on Monday 2026-11-16 morning)."""
    unchanged_deadline = after.deadline == before.deadline
    if action == A.ANSWER_ON_SPOT:
        assert isinstance(body, schemas.AnswerOnSpotBody)
        assert (after.reply_text, after.kb_entry_id, after.closed_at) == (body.answer, body.kb_entry_id, now)
        assert after.deadline is None and after.lead_department_id is None
    elif action == A.DISPATCH:
        assert after.lead_department is not None and after.lead_department.code == "sw"
        assert after.category is not None and after.category.name == "生活求助"
        assert after.subcategory is not None and after.subcategory.name == "停水"
        assert (after.dispatched_at, after.deadline, after.first_reply_due) == (now, TUESDAY_END, None)
        assert after.assisting_departments == []
    elif action == A.SIGN:
        assert after.signed_at == now and unchanged_deadline
    elif action == A.REPLY:
        assert (after.reply_text, after.replied_at) == ("管道已修复，供水已恢复", now)
        assert unchanged_deadline
    elif action == A.RETURN:
        assert (after.return_reason, after.returned_at) == ("不属于本单位职责", now)
        assert after.lead_department_id == before.lead_department_id
    elif action == A.REDISPATCH:
        assert after.lead_department is not None and after.lead_department.code == "cgj"
        assert after.subcategory_id == before.subcategory_id
        # Another department: a fresh deadline from now (停水, 1 working day).
        assert (after.dispatched_at, after.deadline) == (now, TUESDAY_END)
        assert after.signed_at is None and after.returned_at is None
    elif action == A.REQUEST_EXTENSION:
        assert (after.extension_requested_days, after.extension_reason) == (3, "需协调管网改造")
        assert unchanged_deadline
    elif action == A.APPROVE_EXTENSION:
        assert after.deadline == datetime(2026, 11, 20, 17, 30)  # Tuesday + 3 working days
        assert after.extension_days_granted == 3
        assert after.extension_requested_days is None and after.extension_reason is None
    elif action == A.REFUSE_EXTENSION:
        assert after.extension_requested_days is None and after.extension_reason is None
        assert unchanged_deadline and after.extension_days_granted == 0
    elif action == A.SUPERVISE:
        assert after.supervision_count == before.supervision_count + 1 and unchanged_deadline
    elif action == A.RECORD_CALLBACK:
        assert (after.callback_result, after.closed_at) == ("satisfied", now)
    elif action == A.REOPEN:
        assert after.reopen_count == before.reopen_count + 1
        assert after.deadline == TUESDAY_END  # fresh: 1 working day from now
        assert (after.reply_text, after.replied_at, after.closed_at, after.signed_at) == (
            None,
            None,
            None,
            now,
        )
        assert after.lead_department_id == before.lead_department_id
    elif action == A.ARCHIVE:
        assert after.closed_at == now and after.callback_result is None
    elif action == A.MERGE:
        assert after.merged_into is not None and after.merged_into.number == into
        assert after.closed_at == now
    elif action == A.APPROVE_REPLY:
        assert before.reply_approved_at is None and after.reply_approved_at == now
        assert after.reply_approved_by and after.reply_text == before.reply_text
    elif action == A.REJECT_REPLY:
        assert (after.reply_text, after.replied_at, after.reply_approved_at) == (None, None, None)
        assert unchanged_deadline
    elif action == A.ADD_CALLER:
        assert len(after.extra_callers) == len(before.extra_callers) + 1 and unchanged_deadline
        assert (after.extra_callers[-1].phone, after.extra_callers[-1].call_count) == ("13700002222", 1)
    else:  # pragma: no cover
        raise AssertionError(action)
    if action not in (A.SUPERVISE,):
        assert after.supervision_count == before.supervision_count
    if action not in (A.REOPEN,):
        assert after.reopen_count == before.reopen_count


@pytest.mark.parametrize(("action", "source"), LEGAL, ids=[f"{a.value}-from-{s.value}" for a, s in LEGAL])
def test_every_legal_transition(
    ctx: HotlineContext, staff: Staff, clock: ManualClock, action: Action, source: TicketState
) -> None:
    transition = TRANSITIONS[action]
    target = transition.target or source
    for role in sorted(transition.roles):
        actor = actor_for_role(staff, role)
        if action in (A.APPROVE_EXTENSION, A.REFUSE_EXTENSION):
            number = with_pending_extension(ctx, staff)
        elif action in (A.APPROVE_REPLY, A.REJECT_REPLY):
            number = with_reply_under_review(ctx, staff)
        else:
            number = make_ticket(ctx, staff, source)
        into = register(ctx, staff, "同一小区停水") if action == A.MERGE else None
        body, note = standard_body(ctx, action, into)
        clock.advance(timedelta(minutes=1))
        now = clock.now()
        before = load(ctx, number)

        act(ctx, number, actor, action, body)

        after = load(ctx, number)
        assert after.state == target, role
        assert len(after.events) == len(before.events) + 1
        event = after.events[-1]
        assert (event.seq, event.action, event.actor_name, event.actor_id) == (
            len(before.events) + 1,
            action.value,
            actor.name,
            actor.user_id,
        )
        assert (event.from_state, event.to_state, event.note, event.at) == (
            source.value,
            target.value,
            note,
            now,
        )
        assert [e.seq for e in after.events] == list(range(1, len(after.events) + 1))
        assert replay(after.events) == target
        assert after.updated_at == now
        check_effects(action, before, after, now, body, into)
        if action == A.MERGE:
            assert into is not None
            survivor = load(ctx, into)
            absorbed = survivor.events[-1]
            assert survivor.state == S.REGISTERED
            assert (absorbed.seq, absorbed.action, absorbed.actor_name) == (2, "absorb_duplicate", actor.name)
            assert (absorbed.from_state, absorbed.to_state, absorbed.note) == (
                "registered",
                "registered",
                note,
            )
            assert absorbed.data == {"duplicate": number}
            assert event.data == {"into": into}


# ---- dispatch -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "sub", "department", "category", "deadline", "first_reply"),
    [
        (MONDAY_9, "停水", "sw", "生活求助", datetime(2026, 11, 17, 17, 30), None),
        (MONDAY_9, "噪音扰民", "sthjj", "投诉建议", datetime(2026, 11, 23, 17, 30), None),
        (MONDAY_9, "违章建筑", "cgj", "投诉建议", datetime(2026, 11, 30, 17, 30), None),
        (MONDAY_9, "多部门职责交叉", "ddzx", "疑难复杂", datetime(2026, 12, 7, 17, 30), None),
        # Emergencies run on the clock: deadline = first reply due = dispatch + 60 min, day or night.
        (
            MONDAY_9,
            "道路塌陷",
            "ddzx",
            "应急处突",
            MONDAY_9 + timedelta(hours=1),
            MONDAY_9 + timedelta(hours=1),
        ),
        (
            datetime(2026, 11, 21, 23, 30),
            "燃气泄漏",
            "rqgs",
            "应急处突",
            datetime(2026, 11, 22, 0, 30),
            datetime(2026, 11, 22, 0, 30),
        ),
        # Dispatched on a Friday evening or a Saturday: day 1 is Monday.
        (datetime(2026, 11, 20, 18, 0), "停水", "sw", "生活求助", datetime(2026, 11, 23, 17, 30), None),
        (datetime(2026, 11, 21, 10, 0), "停水", "sw", "生活求助", datetime(2026, 11, 23, 17, 30), None),
        # Before National Day 2026 (10-01..10-07 off, Saturday 10-10 a make-up working day).
        (datetime(2026, 9, 30, 10, 0), "停水", "sw", "生活求助", datetime(2026, 10, 8, 17, 30), None),
        (datetime(2026, 9, 30, 10, 0), "噪音扰民", "sthjj", "投诉建议", datetime(2026, 10, 13, 17, 30), None),
    ],
)
def test_dispatch_sets_department_category_and_deadline(
    ctx: HotlineContext,
    staff: Staff,
    clock: ManualClock,
    at: datetime,
    sub: str,
    department: str,
    category: str,
    deadline: datetime,
    first_reply: datetime | None,
) -> None:
    clock.set(at)
    number = dispatch(ctx, staff, sub, department)
    ticket = load(ctx, number)
    assert ticket.state == S.DISPATCHED
    assert ticket.lead_department is not None and ticket.lead_department.code == department
    assert ticket.category is not None and ticket.category.name == category
    assert ticket.subcategory is not None and ticket.subcategory.name == sub
    assert (ticket.dispatched_at, ticket.deadline, ticket.first_reply_due) == (at, deadline, first_reply)
    event = ticket.events[-1]
    assert (event.seq, event.action, event.actor_name, event.from_state, event.to_state) == (
        2,
        "dispatch",
        staff.operator.name,
        "registered",
        "dispatched",
    )
    # the router's suggestion for the text is kept beside the operator's choice (建议采纳率)
    data = dict(event.data)
    assert set(data.pop("suggested")) == {"category", "subcategory", "department"}
    assert data == {"department": department, "assisting": [], "deadline": deadline.isoformat()}


def test_dispatch_with_assisting_departments(ctx: HotlineContext, staff: Staff) -> None:
    number = dispatch(ctx, staff, "多部门职责交叉", "ddzx", assisting=["cgj", "ddzx", "sthjj", "cgj"])
    ticket = load(ctx, number)
    # The lead is not its own helper, and a department named twice helps once.
    assert sorted(d.code for d in ticket.assisting_departments) == ["cgj", "sthjj"]
    assert ticket.events[-1].data["assisting"] == ["cgj", "sthjj"]


def test_dispatching_a_simple_query_is_refused(ctx: HotlineContext, staff: Staff) -> None:
    number = register(ctx, staff, "社保卡丢了去哪里补办？")
    body = schemas.DispatchBody(department="rsj", subcategory_id=sub_id(ctx, "办事指南"))
    error = assert_refused(ctx, number, staff.operator, A.DISPATCH, body, RuleViolation)
    assert "简单咨询" in str(error) and "简单咨询" in error.zh
    assert load(ctx, number).state == S.REGISTERED


def test_redispatching_into_a_simple_query_is_refused(ctx: HotlineContext, staff: Staff) -> None:
    number = make_ticket(ctx, staff, S.RETURNED)
    body = schemas.RedispatchBody(department="zwzx", subcategory_id=sub_id(ctx, "政策解读"))
    assert "简单咨询" in str(assert_refused(ctx, number, staff.operator, A.REDISPATCH, body, RuleViolation))


def test_dispatch_to_an_unknown_department_is_refused(ctx: HotlineContext, staff: Staff) -> None:
    number = register(ctx, staff)
    body = schemas.DispatchBody(department="nosuch", subcategory_id=sub_id(ctx, "停水"))
    assert "nosuch" in str(assert_refused(ctx, number, staff.operator, A.DISPATCH, body, NotFound))


def test_unknown_ticket(ctx: HotlineContext, staff: Staff) -> None:
    with pytest.raises(TicketNotFound, match="20261116-9999"):
        act(ctx, "20261116-9999", staff.operator, A.SUPERVISE, schemas.NoteBody())


# ---- sign, reply, return ----------------------------------------------------------------------------


def test_sign_reply_by_the_department(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    number = make_ticket(ctx, staff, S.DISPATCHED)
    clock.advance(timedelta(hours=1, minutes=5))
    act(ctx, number, staff.water2, A.SIGN, schemas.NoteBody())  # any liaison of the department
    ticket = load(ctx, number)
    assert (ticket.state, ticket.signed_at) == (S.IN_PROGRESS, datetime(2026, 11, 16, 10, 5))
    assert (ticket.events[-1].actor_name, ticket.events[-1].note) == ("sw2", None)
    clock.advance(timedelta(days=1))
    act(ctx, number, staff.water, A.REPLY, schemas.ReplyBody(result="  已更换阀门，恢复供水  "))
    ticket = load(ctx, number)
    assert (ticket.state, ticket.reply_text, ticket.replied_at) == (
        S.REPLIED,
        "已更换阀门，恢复供水",
        datetime(2026, 11, 17, 10, 5),
    )
    assert ticket.deadline == TUESDAY_END and ticket.signed_at == datetime(2026, 11, 16, 10, 5)


@pytest.mark.parametrize("source", [S.DISPATCHED, S.IN_PROGRESS])
@pytest.mark.parametrize(
    ("dispatched", "returned"),
    [
        (MONDAY_9, datetime(2026, 11, 16, 9, 30)),
        (MONDAY_9, datetime(2026, 11, 18, 17, 30)),  # the last minute of the 2 working days
        (datetime(2026, 9, 30, 10, 0), datetime(2026, 10, 9, 17, 0)),  # National Day does not count
    ],
)
def test_return_within_two_working_days(
    ctx: HotlineContext,
    staff: Staff,
    clock: ManualClock,
    source: TicketState,
    dispatched: datetime,
    returned: datetime,
) -> None:
    clock.set(dispatched)
    number = make_ticket(ctx, staff, source)
    clock.set(returned)
    act(ctx, number, staff.water, A.RETURN, schemas.ReasonBody(reason="用户表后管道，不属供水公司"))
    ticket = load(ctx, number)
    assert (ticket.state, ticket.return_reason, ticket.returned_at) == (
        S.RETURNED,
        "用户表后管道，不属供水公司",
        returned,
    )
    event = ticket.events[-1]
    assert (event.action, event.from_state, event.to_state, event.note, event.actor_name) == (
        "return",
        source.value,
        "returned",
        "用户表后管道，不属供水公司",
        "sw1",
    )


@pytest.mark.parametrize(
    ("dispatched", "too_late", "until"),
    [
        (MONDAY_9, datetime(2026, 11, 18, 17, 31), "2026-11-18 17:30"),
        (MONDAY_9, datetime(2026, 11, 23, 9, 0), "2026-11-18 17:30"),
        (datetime(2026, 9, 30, 10, 0), datetime(2026, 10, 10, 9, 0), "2026-10-09 17:30"),
    ],
)
def test_return_after_the_window_is_refused(
    ctx: HotlineContext,
    staff: Staff,
    clock: ManualClock,
    dispatched: datetime,
    too_late: datetime,
    until: str,
) -> None:
    clock.set(dispatched)
    number = make_ticket(ctx, staff, S.IN_PROGRESS)
    clock.set(too_late)
    body = schemas.ReasonBody(reason="不属于本单位")
    error = assert_refused(ctx, number, staff.water, A.RETURN, body, RuleViolation)
    assert "2 working days" in str(error) and until in str(error) and number in str(error)
    assert "2 个工作日" in error.zh and until in error.zh
    assert load(ctx, number).state == S.IN_PROGRESS


# ---- redispatch ---------------------------------------------------------------------------------------


def returned_ticket(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> str:
    """停水 dispatched to sw Monday 09:00 (due Tuesday 17:30), signed, returned Monday 10:00."""
    number = make_ticket(ctx, staff, S.IN_PROGRESS)
    clock.set(datetime(2026, 11, 16, 10, 0))
    act(ctx, number, staff.water, A.RETURN, schemas.ReasonBody(reason="不属于本单位"))
    return number


@pytest.mark.parametrize(
    ("sub", "redispatched", "deadline"),
    [
        (None, datetime(2026, 11, 18, 10, 0), datetime(2026, 11, 19, 17, 30)),  # 停水 kept: 1 day
        ("路灯损坏", datetime(2026, 11, 18, 10, 0), datetime(2026, 11, 23, 17, 30)),  # 3 days
        ("道路塌陷", datetime(2026, 11, 18, 10, 0), datetime(2026, 11, 18, 11, 0)),  # emergency
    ],
)
def test_redispatch_to_another_department_gives_a_fresh_deadline(
    ctx: HotlineContext,
    staff: Staff,
    clock: ManualClock,
    sub: str | None,
    redispatched: datetime,
    deadline: datetime,
) -> None:
    number = returned_ticket(ctx, staff, clock)
    clock.set(redispatched)
    body = schemas.RedispatchBody(
        department="cgj", subcategory_id=sub_id(ctx, sub) if sub else None, note="改派城管局"
    )
    act(ctx, number, staff.operator2, A.REDISPATCH, body)
    ticket = load(ctx, number)
    assert ticket.state == S.DISPATCHED
    assert ticket.lead_department is not None and ticket.lead_department.code == "cgj"
    assert ticket.subcategory is not None and ticket.subcategory.name == (sub or "停水")
    assert (ticket.dispatched_at, ticket.deadline) == (redispatched, deadline)
    assert ticket.first_reply_due == (deadline if sub == "道路塌陷" else None)
    assert (ticket.signed_at, ticket.returned_at) == (None, None)
    event = ticket.events[-1]
    assert (event.action, event.actor_name, event.from_state, event.to_state, event.note, event.data) == (
        "redispatch",
        "op2",
        "returned",
        "dispatched",
        "改派城管局",
        {"department": "cgj"},
    )
    # The new department can act on it, the old one no longer can.
    assert_refused(ctx, number, staff.water, A.SIGN, schemas.NoteBody(), NotPermitted)
    act(ctx, number, staff.city, A.SIGN, schemas.NoteBody())
    assert load(ctx, number).state == S.IN_PROGRESS


@pytest.mark.parametrize(
    ("redispatched", "deadline"),
    [
        # Returned Monday 10:00. Same day 16:00: 3.5 working hours back, Tue 17:30 -> Wed 12:00.
        (datetime(2026, 11, 16, 16, 0), datetime(2026, 11, 18, 12, 0)),
        (datetime(2026, 11, 18, 10, 0), datetime(2026, 11, 19, 17, 30)),  # 13 h = 2 working days back
        (datetime(2026, 11, 21, 10, 0), datetime(2026, 11, 24, 16, 0)),  # Saturday: 31 working hours back
        (datetime(2026, 11, 23, 10, 0), datetime(2026, 11, 24, 17, 30)),  # 32.5 working hours = 5 days
    ],
)
def test_redispatch_to_the_same_department_moves_the_deadline_by_the_working_time_spent_returned(
    ctx: HotlineContext,
    staff: Staff,
    clock: ManualClock,
    redispatched: datetime,
    deadline: datetime,
) -> None:
    number = returned_ticket(ctx, staff, clock)
    clock.set(redispatched)
    act(ctx, number, staff.operator, A.REDISPATCH, schemas.RedispatchBody(department="sw"))
    ticket = load(ctx, number)
    assert ticket.state == S.DISPATCHED and ticket.deadline == deadline
    assert ticket.lead_department is not None and ticket.lead_department.code == "sw"
    assert ticket.dispatched_at == MONDAY_9  # its clock keeps running from the first dispatch
    assert (ticket.signed_at, ticket.returned_at) == (None, None)


def test_redispatch_to_the_same_department_with_another_sub_category_is_fresh(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = returned_ticket(ctx, staff, clock)
    clock.set(datetime(2026, 11, 18, 10, 0))
    body = schemas.RedispatchBody(department="sw", subcategory_id=sub_id(ctx, "其他求助"))  # 5 days
    act(ctx, number, staff.operator, A.REDISPATCH, body)
    ticket = load(ctx, number)
    assert (ticket.deadline, ticket.dispatched_at) == (datetime(2026, 11, 25, 17, 30), clock.now())


def test_emergency_redispatched_to_the_same_department_is_not_overdue_at_once(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = dispatch(ctx, staff, "道路塌陷", "sw")  # due 10:00, on the clock
    clock.set(datetime(2026, 11, 16, 9, 30))
    act(ctx, number, staff.water, A.RETURN, schemas.ReasonBody(reason="应由督办中心处置"))
    clock.set(datetime(2026, 11, 16, 15, 0))
    act(ctx, number, staff.operator, A.REDISPATCH, schemas.RedispatchBody(department="sw"))
    ticket = load(ctx, number)
    assert ticket.deadline is not None and ticket.deadline > clock.now()


# ---- extensions -----------------------------------------------------------------------------------------


def test_extension_request_and_approval(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    number = make_ticket(ctx, staff, S.IN_PROGRESS)
    act(ctx, number, staff.water, A.REQUEST_EXTENSION, schemas.ExtensionBody(days=10, reason="需更换主管道"))
    ticket = load(ctx, number)
    assert (ticket.extension_requested_days, ticket.extension_reason, ticket.deadline) == (
        10,
        "需更换主管道",
        TUESDAY_END,
    )
    assert (ticket.events[-1].action, ticket.events[-1].data) == ("request_extension", {"days": 10})
    clock.advance(timedelta(hours=2))
    act(ctx, number, staff.admin, A.APPROVE_EXTENSION, schemas.NoteBody(note="同意"))
    ticket = load(ctx, number)
    # Tuesday 11-17 + 10 working days = Tuesday 12-01.
    assert ticket.deadline == datetime(2026, 12, 1, 17, 30)
    assert (ticket.extension_requested_days, ticket.extension_reason, ticket.extension_days_granted) == (
        None,
        None,
        10,
    )
    event = ticket.events[-1]
    assert (event.action, event.actor_name, event.note, event.data) == (
        "approve_extension",
        "adm",
        "同意",
        {"days": 10},
    )
    # A second request after the first was decided is fine, and the grants add up.
    act(ctx, number, staff.water, A.REQUEST_EXTENSION, schemas.ExtensionBody(days=2, reason="材料未到"))
    act(ctx, number, staff.supervisor, A.APPROVE_EXTENSION, schemas.NoteBody())
    ticket = load(ctx, number)
    assert (ticket.deadline, ticket.extension_days_granted) == (datetime(2026, 12, 3, 17, 30), 12)


def test_extension_refused_clears_the_request(ctx: HotlineContext, staff: Staff) -> None:
    number = with_pending_extension(ctx, staff, days=4)
    act(ctx, number, staff.supervisor, A.REFUSE_EXTENSION, schemas.ReasonBody(reason="可以按期办结"))
    ticket = load(ctx, number)
    assert (ticket.state, ticket.deadline, ticket.extension_days_granted) == (S.IN_PROGRESS, TUESDAY_END, 0)
    assert (ticket.extension_requested_days, ticket.extension_reason) == (None, None)
    assert (ticket.events[-1].action, ticket.events[-1].note) == ("refuse_extension", "可以按期办结")
    # Nothing pending any more: neither approve nor refuse has anything to decide.
    for action, body in (
        (A.APPROVE_EXTENSION, schemas.NoteBody()),
        (A.REFUSE_EXTENSION, schemas.ReasonBody(reason="x")),
    ):
        error = assert_refused(ctx, number, staff.supervisor, action, body, RuleViolation)
        assert "no extension request" in str(error)


def test_extension_over_ten_days_is_refused(ctx: HotlineContext, staff: Staff) -> None:
    number = make_ticket(ctx, staff, S.IN_PROGRESS)
    body = schemas.ExtensionBody(days=11, reason="工程量大")
    error = assert_refused(ctx, number, staff.water, A.REQUEST_EXTENSION, body, RuleViolation)
    assert "at most 10 working days" in str(error) and "11" in str(error)


def test_second_pending_extension_request_is_refused(ctx: HotlineContext, staff: Staff) -> None:
    number = with_pending_extension(ctx, staff, days=3)
    body = schemas.ExtensionBody(days=2, reason="再申请")
    error = assert_refused(ctx, number, staff.water2, A.REQUEST_EXTENSION, body, RuleViolation)
    assert "already has an extension request waiting" in str(error)
    assert load(ctx, number).extension_requested_days == 3


@pytest.mark.parametrize(
    ("action", "body"),
    [(A.REPLY, schemas.ReplyBody(result="已办结")), (A.RETURN, schemas.ReasonBody(reason="不属于本单位"))],
)
def test_reply_or_return_drops_a_pending_extension_request(
    ctx: HotlineContext, staff: Staff, action: Action, body: BaseModel
) -> None:
    number = with_pending_extension(ctx, staff)
    act(ctx, number, staff.water, action, body)
    ticket = load(ctx, number)
    assert (ticket.extension_requested_days, ticket.extension_reason, ticket.deadline) == (
        None,
        None,
        TUESDAY_END,
    )


# ---- supervision ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(OPEN_STATES))
def test_supervise_counts_on_every_open_state(ctx: HotlineContext, staff: Staff, state: TicketState) -> None:
    number = make_ticket(ctx, staff, state)
    before = load(ctx, number)
    for count, actor in enumerate((staff.supervisor, Actor.system("督办巡检"), staff.admin), start=1):
        act(ctx, number, actor, A.SUPERVISE, schemas.NoteBody(note=f"第{count}次督办"))
        ticket = load(ctx, number)
        assert (ticket.state, ticket.supervision_count) == (state, count)
        event = ticket.events[-1]
        assert (event.action, event.actor_name, event.from_state, event.to_state, event.note) == (
            "supervise",
            actor.name,
            state.value,
            state.value,
            f"第{count}次督办",
        )
    assert ticket.deadline == before.deadline


# ---- callback, archive, reopen ------------------------------------------------------------------------


@pytest.mark.parametrize("result", ["satisfied", "basically_satisfied"])
def test_callback_satisfied_archives(
    ctx: HotlineContext, staff: Staff, clock: ManualClock, result: str
) -> None:
    number = make_ticket(ctx, staff, S.REPLIED)
    clock.set(datetime(2026, 11, 17, 15, 0))
    body = schemas.CallbackBody.model_validate({"result": result, "solved": True})
    act(ctx, number, staff.operator2, A.RECORD_CALLBACK, body)
    ticket = load(ctx, number)
    assert (ticket.state, ticket.callback_result, ticket.closed_at, ticket.reopen_count) == (
        S.ARCHIVED,
        result,
        clock.now(),
        0,
    )
    assert ticket.reply_text == "管道已修复，供水已恢复"
    event = ticket.events[-1]
    assert (event.seq, event.action, event.actor_name, event.from_state, event.to_state, event.data) == (
        5,
        "record_callback",
        "op2",
        "replied",
        "archived",
        {"result": result, "solved": True},
    )


def test_dissatisfied_callback_reopens_automatically(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = make_ticket(ctx, staff, S.REPLIED)
    clock.set(datetime(2026, 11, 17, 10, 0))
    body = schemas.CallbackBody(result="dissatisfied", solved=False, note="仍然停水")
    act(ctx, number, Actor.system("回访机器人"), A.RECORD_CALLBACK, body)
    ticket = load(ctx, number)
    assert ticket.state == S.IN_PROGRESS and ticket.reopen_count == 1
    assert ticket.deadline == datetime(2026, 11, 18, 17, 30)  # fresh: 1 working day from Tuesday
    assert ticket.lead_department is not None and ticket.lead_department.code == "sw"
    assert (ticket.reply_text, ticket.replied_at, ticket.closed_at, ticket.signed_at) == (
        None,
        None,
        None,
        clock.now(),
    )
    assert ticket.callback_result == "dissatisfied"
    callback, reopen = ticket.events[-2:]
    assert (callback.seq, callback.action, callback.actor_name, callback.from_state, callback.to_state) == (
        5,
        "record_callback",
        "回访机器人",
        "replied",
        "archived",
    )
    assert (callback.note, callback.data) == ("仍然停水", {"result": "dissatisfied", "solved": False})
    assert (reopen.seq, reopen.action, reopen.actor_name, reopen.actor_id) == (6, "reopen", "系统", None)
    assert (reopen.from_state, reopen.to_state, reopen.note) == (
        "archived",
        "in_progress",
        "回访不满意，重新办理",
    )
    assert replay(ticket.events) == S.IN_PROGRESS
    # The department handles it again, replies, and a satisfied callback archives it for good.
    act(ctx, number, staff.water, A.REPLY, schemas.ReplyBody(result="已彻底修复"))
    act(ctx, number, staff.operator, A.RECORD_CALLBACK, schemas.CallbackBody(result="satisfied"))
    ticket = load(ctx, number)
    assert (ticket.state, ticket.reopen_count, ticket.callback_result) == (S.ARCHIVED, 1, "satisfied")


def test_archive_without_callback(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    number = make_ticket(ctx, staff, S.REPLIED)
    clock.set(datetime(2026, 11, 20, 9, 0))
    act(ctx, number, Actor.system(), A.ARCHIVE, schemas.NoteBody(note="三次回访未接通"))
    ticket = load(ctx, number)
    assert (ticket.state, ticket.closed_at, ticket.callback_result) == (S.ARCHIVED, clock.now(), None)
    assert (ticket.events[-1].action, ticket.events[-1].note) == ("archive", "三次回访未接通")


def test_reopen_by_a_supervisor(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    number = dispatch(ctx, staff, "占道经营", "cgj")  # 5 working days
    act(ctx, number, staff.city, A.SIGN, schemas.NoteBody())
    act(ctx, number, staff.city, A.REPLY, schemas.ReplyBody(result="已清理占道摊点"))
    act(ctx, number, staff.operator, A.RECORD_CALLBACK, schemas.CallbackBody(result="basically_satisfied"))
    clock.set(datetime(2026, 11, 25, 14, 0))
    act(ctx, number, staff.supervisor, A.REOPEN, schemas.ReasonBody(reason="市民反映摊点又回来了"))
    ticket = load(ctx, number)
    assert (ticket.state, ticket.reopen_count) == (S.IN_PROGRESS, 1)
    assert ticket.deadline == datetime(2026, 12, 2, 17, 30)  # Wednesday + 5 working days
    assert (ticket.closed_at, ticket.reply_text, ticket.signed_at) == (None, None, clock.now())
    event = ticket.events[-1]
    assert (event.action, event.actor_name, event.from_state, event.to_state, event.note) == (
        "reopen",
        "sup",
        "archived",
        "in_progress",
        "市民反映摊点又回来了",
    )


# ---- merge, answer on the spot --------------------------------------------------------------------------


@pytest.mark.parametrize("survivor_state", sorted(OPEN_STATES))
def test_merge_into_an_open_ticket(ctx: HotlineContext, staff: Staff, survivor_state: TicketState) -> None:
    survivor = make_ticket(ctx, staff, survivor_state)
    duplicate = make_ticket(ctx, staff, S.IN_PROGRESS)
    survivor_before = load(ctx, survivor)
    act(ctx, duplicate, staff.operator, A.MERGE, schemas.MergeBody(into=survivor, note="同一楼栋停水"))
    merged = load(ctx, duplicate)
    assert (
        merged.state == S.MERGED and merged.merged_into is not None and merged.merged_into.number == survivor
    )
    assert merged.closed_at == MONDAY_9
    assert (merged.events[-1].action, merged.events[-1].data) == ("merge", {"into": survivor})
    kept = load(ctx, survivor)
    assert kept.state == survivor_state and kept.merged_into is None
    assert len(kept.events) == len(survivor_before.events) + 1
    absorbed = kept.events[-1]
    assert (absorbed.action, absorbed.from_state, absorbed.to_state, absorbed.note, absorbed.data) == (
        "absorb_duplicate",
        survivor_state.value,
        survivor_state.value,
        "同一楼栋停水",
        {"duplicate": duplicate},
    )
    assert replay(kept.events) == survivor_state and replay(merged.events) == S.MERGED
    # A merged ticket takes no further action.
    assert_refused(ctx, duplicate, staff.water, A.REPLY, schemas.ReplyBody(result="x"), IllegalTransition)


@pytest.mark.parametrize("target_state", [S.CLOSED, S.ARCHIVED, S.MERGED])
def test_merge_into_a_finished_ticket_is_refused(
    ctx: HotlineContext, staff: Staff, target_state: TicketState
) -> None:
    target = make_ticket(ctx, staff, target_state)
    duplicate = register(ctx, staff)
    body = schemas.MergeBody(into=target)
    error = assert_refused(ctx, duplicate, staff.operator, A.MERGE, body, RuleViolation, (target,))
    assert target in str(error) and "open ticket" in str(error)


def test_merge_into_itself_or_nowhere_is_refused(ctx: HotlineContext, staff: Staff) -> None:
    number = make_ticket(ctx, staff, S.DISPATCHED)
    error = assert_refused(
        ctx, number, staff.operator, A.MERGE, schemas.MergeBody(into=number), RuleViolation
    )
    assert "itself" in str(error)
    assert_refused(
        ctx, number, staff.operator, A.MERGE, schemas.MergeBody(into="20261116-9999"), TicketNotFound
    )


def test_answer_on_the_spot_closes(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    number = register(ctx, staff, "社保卡丢了去哪里补办？")
    clock.advance(timedelta(minutes=4))
    body = schemas.AnswerOnSpotBody(answer="携带身份证到人社局窗口补办", kb_entry_id="kb-sbk-01")
    act(ctx, number, staff.operator, A.ANSWER_ON_SPOT, body)
    ticket = load(ctx, number)
    assert (ticket.state, ticket.reply_text, ticket.kb_entry_id, ticket.closed_at) == (
        S.CLOSED,
        "携带身份证到人社局窗口补办",
        "kb-sbk-01",
        clock.now(),
    )
    event = ticket.events[-1]
    assert (event.seq, event.action, event.from_state, event.to_state, event.note, event.data) == (
        2,
        "answer_on_spot",
        "registered",
        "closed",
        "携带身份证到人社局窗口补办",
        {"kb_entry_id": "kb-sbk-01"},
    )
    # Closed on the call: it can no longer be dispatched, merged or supervised.
    dispatch_body = schemas.DispatchBody(department="rsj", subcategory_id=sub_id(ctx, "社会保障政策"))
    assert_refused(ctx, number, staff.operator, A.DISPATCH, dispatch_body, IllegalTransition)


# ---- illegal transitions --------------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(TicketState))
def test_illegal_transitions_change_nothing(
    ctx: HotlineContext, staff: Staff, state: TicketState, subtests: pytest.Subtests
) -> None:
    number = make_ticket(ctx, staff, state)
    survivor = register(ctx, staff, "另一张工单")  # an open ticket to merge into
    lead = load(ctx, number).lead_department_id
    illegal = [a for a in ACTABLE if state not in TRANSITIONS[a].sources]
    assert illegal
    for action in illegal:
        with subtests.test(action=action.value):
            actor = default_actor(staff, action)
            body, _ = standard_body(ctx, action, survivor)
            if action == A.REDISPATCH:  # a complete body, so only the state can refuse it
                body = schemas.RedispatchBody(department="cgj", subcategory_id=sub_id(ctx, "停水"))
            if actor.role == Role.LIAISON and lead != actor.department_id:
                # A ticket no department holds (registered, answered on the spot) is invisible to a
                # liaison: that refusal comes first, and it changes nothing either.
                assert_refused(ctx, number, actor, action, body, NotPermitted, (survivor,))
                continue
            error = assert_refused(ctx, number, actor, action, body, IllegalTransition, (survivor,))
            message = str(error)
            assert number in message and f"is {state.value};" in message and f"'{action.value}'" in message
            assert number in error.zh
            assert isinstance(error, IllegalTransition)
            assert (error.number, error.state, error.action) == (number, state.value, action.value)


@pytest.mark.parametrize("state", [S.CLOSED, S.ARCHIVED, S.MERGED])
def test_absorbing_a_duplicate_needs_an_open_ticket(
    ctx: HotlineContext, staff: Staff, state: TicketState
) -> None:
    number = make_ticket(ctx, staff, state)
    before = snapshot(ctx, number)
    with pytest.raises(IllegalTransition, match=f"{number} is {state.value}"), ctx.unit_of_work() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        apply_transition(ticket, staff.operator, A.ABSORB_DUPLICATE, MONDAY_9, None, {"duplicate": "x"})
    assert snapshot(ctx, number) == before


def ticket_for(ctx: HotlineContext, staff: Staff, action: Action) -> str:
    if action in (A.APPROVE_EXTENSION, A.REFUSE_EXTENSION):
        return with_pending_extension(ctx, staff)
    # Prefer a source state a department holds, so department checks come into play too.
    sources = TRANSITIONS[action].sources
    for state in (S.IN_PROGRESS, S.DISPATCHED, S.RETURNED, S.REPLIED, S.ARCHIVED, S.REGISTERED):
        if state in sources:
            return make_ticket(ctx, staff, state)
    raise AssertionError(action)


@pytest.mark.parametrize("action", ACTABLE)
def test_roles_not_allowed_are_refused(
    ctx: HotlineContext, staff: Staff, action: Action, subtests: pytest.Subtests
) -> None:
    number = ticket_for(ctx, staff, action)
    survivor = register(ctx, staff, "另一张工单")
    body, _ = standard_body(ctx, action, survivor)
    wrong = [r for r in Role if r not in TRANSITIONS[action].roles]
    for role in wrong:
        with subtests.test(role=role.value):
            error = assert_refused(
                ctx, number, actor_for_role(staff, role), action, body, NotPermitted, (survivor,)
            )
            assert error.status == 403


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (S.DISPATCHED, A.SIGN),
        (S.DISPATCHED, A.RETURN),
        (S.IN_PROGRESS, A.REPLY),
        (S.IN_PROGRESS, A.RETURN),
        (S.IN_PROGRESS, A.REQUEST_EXTENSION),
    ],
)
def test_liaison_of_another_department_is_refused(
    ctx: HotlineContext, staff: Staff, state: TicketState, action: Action
) -> None:
    number = make_ticket(ctx, staff, state)
    body, _ = standard_body(ctx, action)
    error = assert_refused(ctx, number, staff.city, action, body, NotPermitted)
    assert number in str(error) and "another department" in str(error)


def test_assisting_department_sees_but_may_not_act(ctx: HotlineContext, staff: Staff) -> None:
    number = dispatch(ctx, staff, "停水", "sw", assisting=["cgj"])
    with ctx.unit_of_work() as session:
        assert ctx.tickets(session).get(number, staff.city).number == number
    error = assert_refused(ctx, number, staff.city, A.SIGN, schemas.NoteBody(), NotPermitted)
    assert "another department" in str(error)
    act(ctx, number, staff.water, A.SIGN, schemas.NoteBody())
    assert load(ctx, number).state == S.IN_PROGRESS


def test_setting_the_state_directly_is_refused(ctx: HotlineContext, staff: Staff) -> None:
    number = make_ticket(ctx, staff, S.DISPATCHED)
    before = snapshot(ctx, number)
    with pytest.raises(RuntimeError, match="state_machine"), ctx.unit_of_work() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        ticket.state = TicketState.ARCHIVED.value
    assert snapshot(ctx, number) == before
    with pytest.raises(RuntimeError, match="state_machine"):
        Ticket(number="x", state=TicketState.CLOSED.value)


def test_replay_checks_the_log(ctx: HotlineContext, staff: Staff) -> None:
    number = make_ticket(ctx, staff, S.ARCHIVED)
    events = load(ctx, number).events
    assert [e.action for e in events] == ["register", "dispatch", "sign", "reply", "record_callback"]
    assert replay(events) == S.ARCHIVED
    assert replay([]) is None
    forged = [
        TicketEvent(seq=1, action="register", from_state=None, to_state="registered"),
        TicketEvent(seq=2, action="sign", from_state="registered", to_state="in_progress"),
    ]
    with pytest.raises(ValueError, match="illegal"):
        replay(forged)
    gap = [
        TicketEvent(seq=1, action="register", from_state=None, to_state="registered"),
        TicketEvent(seq=2, action="sign", from_state="dispatched", to_state="in_progress"),
    ]
    with pytest.raises(ValueError, match="starts from"):
        replay(gap)
