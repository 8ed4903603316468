"""Property test of the ticket life: random sequences of actions by random people at random times.

Each example registers fresh tickets (the database is not reset between examples) and applies up to
25 steps, each in its own unit of work. A refused step (any HotlineError) must leave the ticket exactly
as it was; after every step the stored ticket must agree with its own event log.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import select

from core.accounts.actor import Actor
from core.accounts.models import Role
from core.clock import ManualClock
from core.departments import Department
from core.errors import HotlineError
from dispatch import schemas
from dispatch.models import TicketEvent
from dispatch.state_machine import replay
from dispatch.states import AT_DEPARTMENT, TRANSITIONS, Action, TicketState
from hotline.context import HotlineContext
from tests.conftest import MONDAY_9, Staff, subcategory_id
from tests.helpers import Snapshot, act, register, snapshot

S = TicketState
A = Action

PEOPLE = ["operator", "operator2", "supervisor", "admin", "water", "water2", "city", "system"]
# "auto": someone the transition table allows (the department's own liaison for department actions).
ACTORS = [*PEOPLE, *["auto"] * 10]
# "progress": the next step of the main line for the ticket's state; "absorb": merge a new ticket in.
ACTIONS = [*schemas.ACTION_BODIES, *["progress"] * 14, "absorb"]
PROGRESS = {
    S.REGISTERED: A.DISPATCH,
    S.DISPATCHED: A.SIGN,
    S.IN_PROGRESS: A.REPLY,
    S.RETURNED: A.REDISPATCH,
    S.REPLIED: A.RECORD_CALLBACK,  # refused while the reply waits for review: then APPROVE_REPLY
    S.ARCHIVED: A.REOPEN,
    S.CLOSED: A.SUPERVISE,
    S.MERGED: A.SUPERVISE,
}
DEPARTMENTS = ["sw", "sw", "cgj", "sthjj"]  # sthjj has no liaison among the staff
SUBCATEGORIES = ["停水", "路灯损坏", "噪音扰民", "道路塌陷", "办事指南"]  # 办事指南: simple query
STARTS = [
    MONDAY_9,
    datetime(2026, 9, 29, 16, 0),  # just before National Day
    datetime(2026, 11, 20, 17, 0),  # Friday evening
    datetime(2026, 11, 21, 23, 50),  # Saturday night
]

minutes = st.one_of(st.just(0), st.integers(1, 180), st.integers(181, 6 * 24 * 60))
step = st.fixed_dictionaries(
    {
        "action": st.sampled_from(ACTIONS),
        "actor": st.sampled_from(ACTORS),
        "pick": st.integers(0, 7),
        "department": st.sampled_from(DEPARTMENTS),
        "subcategory": st.sampled_from(SUBCATEGORIES),
        "keep_subcategory": st.booleans(),
        "days": st.integers(1, 12),  # above 10 is refused
        "result": st.sampled_from(["satisfied", "basically_satisfied", "dissatisfied"]),
        "into": st.sampled_from(["partner", "partner", "self", "closed"]),
        "minutes": minutes,
        "review": st.booleans(),  # config dispatch.review_replies, switched between steps
    }
)


def check_invariants(snap: Snapshot) -> None:
    row, events, _ = snap
    state = TicketState(row["state"])  # one of the known states
    log = [
        TicketEvent(seq=e["seq"], action=e["action"], from_state=e["from_state"], to_state=e["to_state"])
        for e in events
    ]
    assert replay(log) == state
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    if state in AT_DEPARTMENT:
        assert row["lead_department_id"] is not None and row["deadline"] is not None
    counts = Counter(e["action"] for e in events)
    assert row["reopen_count"] == counts["reopen"]
    assert row["supervision_count"] == counts["supervise"]
    assert row["extension_days_granted"] == sum(
        e["data"]["days"] for e in events if e["action"] == "approve_extension"
    )
    assert (row["merged_into_id"] is not None) == (state == S.MERGED)
    assert row["extension_requested_days"] is None or 1 <= row["extension_requested_days"] <= 10
    if state == S.CLOSED:
        assert row["lead_department_id"] is None and row["reply_text"]
    if state in (S.ARCHIVED, S.CLOSED):  # nothing reached the citizen unreviewed
        assert row["reply_approved_at"] is not None or row["reply_text"] is None
    if state in (S.IN_PROGRESS, S.DISPATCHED):
        assert row["reply_approved_at"] is None


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(start=st.sampled_from(STARTS), steps=st.lists(step, min_size=5, max_size=25))
def test_random_ticket_lives_keep_their_invariants(
    ctx: HotlineContext,
    staff: Staff,
    clock: ManualClock,
    start: datetime,
    steps: list[dict[str, Any]],
) -> None:
    clock.set(start)
    with ctx.unit_of_work() as session:
        sub_ids = {name: subcategory_id(session, name) for name in SUBCATEGORIES}
        codes = {d.id: d.code for d in session.scalars(select(Department))}
    people: dict[str, Actor] = {
        "operator": staff.operator,
        "operator2": staff.operator2,
        "supervisor": staff.supervisor,
        "admin": staff.admin,
        "water": staff.water,
        "water2": staff.water2,
        "city": staff.city,
        "system": Actor.system(),
    }
    liaisons = {"sw": [staff.water, staff.water2], "cgj": [staff.city]}

    number = register(ctx, staff, "河西路18号小区停水")
    partner = register(ctx, staff, "河西路18号小区又停水了")  # an open ticket to merge into
    closed = register(ctx, staff, "社保卡怎么补办")
    act(ctx, closed, staff.operator, A.ANSWER_ON_SPOT, schemas.AnswerOnSpotBody(answer="到人社局补办"))
    merge_targets = {"partner": partner, "self": number, "closed": closed}

    current = snapshot(ctx, number)
    check_invariants(current)
    for params in steps:
        clock.advance(timedelta(minutes=params["minutes"]))
        ctx.settings.dispatch.review_replies = params["review"]
        row = current[0]
        state = TicketState(row["state"])
        choice = params["action"]
        action = PROGRESS[state] if choice == "progress" else A.MERGE if choice == "absorb" else A(choice)

        if params["actor"] == "auto":
            roles = TRANSITIONS[action].roles
            allowed = [a for a in people.values() if a.role in roles and a.role != Role.LIAISON]
            if Role.LIAISON in roles:
                allowed += liaisons.get(codes.get(row["lead_department_id"], ""), [staff.water])
            actor = allowed[params["pick"] % len(allowed)]
        else:
            actor = people[params["actor"]]

        body = make_body(action, params, sub_ids, merge_targets, number)
        acting_on = number
        if choice == "absorb":  # a new duplicate merged into our ticket
            acting_on = register(ctx, staff, "重复来电")
            body = schemas.MergeBody(into=number, note="并入")
        try:
            act(ctx, acting_on, actor, action, body)
        except HotlineError:
            after = snapshot(ctx, number)
            assert after == current, f"refused {action.value} by {actor.name} changed the ticket"
        else:
            after = snapshot(ctx, number)
            added = [e["action"] for e in after[1][len(current[1]) :]]
            if choice == "absorb":
                assert added == ["absorb_duplicate"]
            elif action == A.RECORD_CALLBACK and params["result"] == "dissatisfied":
                assert added == ["record_callback", "reopen"]
                assert after[0]["state"] == S.IN_PROGRESS
            else:
                assert added == [action.value]
            assert after[1][: len(current[1])] == current[1], "earlier events were rewritten"
        check_invariants(after)
        current = after
    event(f"steps: {len(steps) // 5 * 5}+")
    event(f"events: {len(current[1]) // 4 * 4}+")
    for name in sorted({e["action"] for e in current[1]}):
        event(f"did {name}")
    event(f"ended {current[0]['state']}")


def make_body(
    action: Action,
    params: dict[str, Any],
    sub_ids: dict[str, int],
    merge_targets: dict[str, str],
    number: str,
) -> BaseModel:
    """A well-formed body for `action` from the drawn parameters (rules may still refuse it)."""
    sub = sub_ids[params["subcategory"]]
    if action == A.ANSWER_ON_SPOT:
        return schemas.AnswerOnSpotBody(answer="已当场答复", kb_entry_id="kb-1")
    if action == A.DISPATCH:
        return schemas.DispatchBody(department=params["department"], subcategory_id=sub, assisting=["cgj"])
    if action == A.REDISPATCH:
        keep = params["keep_subcategory"]
        return schemas.RedispatchBody(department=params["department"], subcategory_id=None if keep else sub)
    if action == A.REPLY:
        return schemas.ReplyBody(result="已处理完毕")
    if action == A.REQUEST_EXTENSION:
        return schemas.ExtensionBody(days=params["days"], reason="需协调")
    if action == A.RECORD_CALLBACK:
        return schemas.CallbackBody(result=params["result"])
    if action == A.MERGE:
        return schemas.MergeBody(into=merge_targets[params["into"]])
    if action == A.ADD_CALLER:
        return schemas.AddCallerBody(content="同一事项又一位市民来电", caller_phone="13700002222")
    if schemas.ACTION_BODIES[action] is schemas.ReasonBody:
        return schemas.ReasonBody(reason="理由")
    return schemas.NoteBody(note=f"{action.value} {number}")
