"""The figures of the wall display: the day's top topics and the recent supervision alerts (both
databases)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from core.clock import ManualClock
from hotline.context import HotlineContext
from sla.reports import recent_alerts, top_topics
from sla.supervision import run_sweep
from tests.conftest import MONDAY_9, Staff
from tests.helpers import dispatched, register


def test_the_days_top_topics_count_its_tickets_by_sub_category(ctx: HotlineContext, staff: Staff) -> None:
    for _ in range(3):
        dispatched(ctx, staff, "停水", "sw")
    dispatched(ctx, staff, "路灯损坏", "cgj")
    register(ctx, staff, "还没分类的来电")
    today = datetime.combine(MONDAY_9.date(), time())
    with ctx.unit_of_work() as session:
        topics = top_topics(session, today, today + timedelta(days=1))
        tomorrow = top_topics(session, today + timedelta(days=1), today + timedelta(days=2))
    assert [(t.name, t.count) for t in topics] == [("停水", 3), ("未分类", 1), ("路灯损坏", 1)]
    assert tomorrow == []


def test_recent_alerts_are_the_sweeps_warnings_newest_first(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    dispatched(ctx, staff, "停水", "sw")  # due Tuesday 17:30
    clock.set(MONDAY_9 + timedelta(days=1, hours=8))  # Tuesday 17:00: due soon
    run_sweep(ctx.sessions, ctx.settings.sla.warnings, ctx.calendar, clock)
    clock.set(MONDAY_9 + timedelta(days=2))  # Wednesday 09:00: overdue
    run_sweep(ctx.sessions, ctx.settings.sla.warnings, ctx.calendar, clock)
    with ctx.unit_of_work() as session:
        alerts = recent_alerts(session, MONDAY_9)
        later = recent_alerts(session, clock.now() + timedelta(minutes=1))
    assert [a.message for a in alerts] == ["已超期", "即将到期"]
    assert alerts[0].department == "演示县供水有限公司"
    assert later == []
