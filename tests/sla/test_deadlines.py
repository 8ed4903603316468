"""Deadline rules with a controllable clock: dispatch, emergencies, returns, extensions, reopening."""

from __future__ import annotations

from datetime import datetime

import pytest

from core.accounts.actor import Actor
from core.clock import ManualClock
from core.errors import RuleViolation
from dispatch import schemas
from dispatch.states import Action
from hotline.context import HotlineContext
from sla.calendar import WorkCalendar
from sla.deadlines import DeadlineRules
from sla.settings import CalendarSettings
from tests.conftest import MONDAY_9, Staff
from tests.helpers import act, dispatched

RULES = DeadlineRules(WorkCalendar())


def test_dispatch_deadline_counts_working_days_across_national_day() -> None:
    deadline, first_reply = RULES.at_dispatch(3, emergency=False, at=datetime(2025, 9, 30, 10, 0))
    assert deadline == datetime(2025, 10, 11, 17, 30) and first_reply is None


def test_dispatch_on_a_holiday_starts_counting_on_the_next_working_day() -> None:
    deadline, _ = RULES.at_dispatch(1, emergency=False, at=datetime(2025, 10, 3, 11, 0))
    assert deadline == datetime(2025, 10, 9, 17, 30)


def test_emergency_runs_on_the_clock_day_and_night() -> None:
    saturday_night = datetime(2026, 11, 21, 23, 30)
    deadline, first_reply = RULES.at_dispatch(0, emergency=True, at=saturday_night)
    assert deadline == first_reply == datetime(2026, 11, 22, 0, 30)


def test_local_holiday_from_config_moves_deadlines() -> None:
    local = DeadlineRules(WorkCalendar(CalendarSettings(extra_holidays=["2026-11-17"])))
    deadline, _ = local.at_dispatch(1, emergency=False, at=MONDAY_9)
    assert deadline == datetime(2026, 11, 18, 17, 30)


def test_return_window_is_two_working_days() -> None:
    friday = datetime(2026, 11, 20, 16, 0)
    assert RULES.return_deadline(friday) == datetime(2026, 11, 24, 17, 30)
    assert RULES.return_allowed(friday, datetime(2026, 11, 24, 17, 30))
    assert not RULES.return_allowed(friday, datetime(2026, 11, 24, 17, 31))


def test_configured_limits_are_used(ctx: HotlineContext) -> None:
    assert ctx.rules.return_window_working_days == 2
    assert ctx.rules.max_extension_working_days == 10
    assert ctx.rules.emergency_first_reply_minutes == 60


def _deadline(ctx: HotlineContext, number: str) -> datetime | None:
    with ctx.unit_of_work() as session:
        return ctx.tickets(session).get(number, Actor.system()).deadline


def test_return_after_the_window_is_refused_with_the_limit(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = dispatched(ctx, staff, "路灯损坏", "cgj")
    clock.set(datetime(2026, 11, 18, 18, 0))  # Wednesday evening: past Wednesday 17:30
    with pytest.raises(RuleViolation, match=r"within 2 working days of dispatch \(until 2026-11-18 17:30\)"):
        act(ctx, number, staff.city, Action.RETURN, schemas.ReasonBody(reason="非本部门职责"))
    clock.set(datetime(2026, 11, 18, 17, 0))
    act(ctx, number, staff.city, Action.RETURN, schemas.ReasonBody(reason="非本部门职责"))


def test_time_at_the_hotline_does_not_count_against_the_department(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = dispatched(ctx, staff, "路灯损坏", "cgj")  # 3 days: Thursday 11-19 17:30
    assert _deadline(ctx, number) == datetime(2026, 11, 19, 17, 30)
    clock.set(datetime(2026, 11, 17, 10, 0))
    act(ctx, number, staff.city, Action.RETURN, schemas.ReasonBody(reason="地址不清"))
    clock.set(datetime(2026, 11, 19, 10, 0))  # two working days at the hotline
    act(
        ctx,
        number,
        staff.operator,
        Action.REDISPATCH,
        schemas.RedispatchBody(department="cgj", note="地址已补充"),
    )
    assert _deadline(ctx, number) == datetime(2026, 11, 23, 17, 30)


def test_redispatch_elsewhere_gets_a_fresh_deadline(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = dispatched(ctx, staff, "路灯损坏", "cgj")
    clock.set(datetime(2026, 11, 17, 10, 0))
    act(ctx, number, staff.city, Action.RETURN, schemas.ReasonBody(reason="属供电公司"))
    act(ctx, number, staff.operator, Action.REDISPATCH, schemas.RedispatchBody(department="gdj"))
    assert _deadline(ctx, number) == datetime(2026, 11, 20, 17, 30)


def test_extension_limit_and_approved_extension(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = dispatched(ctx, staff, "路灯损坏", "cgj")
    act(ctx, number, staff.city, Action.SIGN, schemas.NoteBody())
    with pytest.raises(RuleViolation, match="at most 10 working days"):
        act(ctx, number, staff.city, Action.REQUEST_EXTENSION, schemas.ExtensionBody(days=11, reason="备料"))
    act(ctx, number, staff.city, Action.REQUEST_EXTENSION, schemas.ExtensionBody(days=10, reason="备料"))
    act(ctx, number, staff.supervisor, Action.APPROVE_EXTENSION, schemas.NoteBody())
    assert _deadline(ctx, number) == datetime(2026, 12, 3, 17, 30)  # 11-19 + 10 working days


def test_reopened_ticket_gets_a_fresh_deadline(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    number = dispatched(ctx, staff, "停水", "sw")
    act(ctx, number, staff.water, Action.SIGN, schemas.NoteBody())
    act(ctx, number, staff.water, Action.REPLY, schemas.ReplyBody(result="已修复"))
    clock.set(datetime(2026, 11, 25, 10, 0))
    act(ctx, number, staff.operator, Action.RECORD_CALLBACK, schemas.CallbackBody(result="dissatisfied"))
    assert _deadline(ctx, number) == datetime(2026, 11, 26, 17, 30)
