"""KPIs from the ticket records: on-time rate, overdue, returns, extensions, handling time."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from agent_ui.app import create_app
from core.clock import ManualClock
from dispatch import schemas
from dispatch.states import Action
from hotline.context import HotlineContext
from sla.kpi import KpiRow, compute_kpis, league_table
from tests.conftest import MONDAY_9, PASSWORD, Staff
from tests.helpers import act, dispatched

NOV = (datetime(2026, 11, 1), datetime(2026, 12, 1))


def _kpis(ctx: HotlineContext, group_by: str = "department") -> dict[str | None, KpiRow]:
    with ctx.unit_of_work() as session:
        minutes = ctx.calendar.working_day_length.total_seconds() / 60
        rows = compute_kpis(session, *NOV, ctx.clock.now(), minutes, group_by)  # type: ignore[arg-type]
    return {r.key: r for r in rows}


def _scenario(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    """Water: one on time (1 working day), one late; 城管: one returned, one extended and still open."""
    on_time = dispatched(ctx, staff, "停水", "sw")  # due Tue 17:30
    late = dispatched(ctx, staff, "停水", "sw")
    returned = dispatched(ctx, staff, "路灯损坏", "cgj")
    extended = dispatched(ctx, staff, "占道经营", "cgj")
    act(ctx, on_time, staff.water, Action.SIGN, schemas.NoteBody())
    act(ctx, late, staff.water, Action.SIGN, schemas.NoteBody())
    act(ctx, extended, staff.city, Action.SIGN, schemas.NoteBody())
    clock.set(MONDAY_9 + timedelta(days=1))  # Tue 09:00
    act(ctx, on_time, staff.water, Action.REPLY, schemas.ReplyBody(result="已恢复供水"))
    act(ctx, returned, staff.city, Action.RETURN, schemas.ReasonBody(reason="不属于本部门职责"))
    act(ctx, extended, staff.city, Action.REQUEST_EXTENSION, schemas.ExtensionBody(days=2, reason="需协调"))
    act(ctx, extended, staff.supervisor, Action.APPROVE_EXTENSION, schemas.NoteBody())
    clock.set(MONDAY_9 + timedelta(days=2))  # Wed 09:00: the second water ticket is late
    act(ctx, late, staff.water, Action.REPLY, schemas.ReplyBody(result="已恢复供水"))
    clock.set(
        MONDAY_9 + timedelta(days=10)
    )  # Thu 26th: the extended ticket (due Mon 23rd + 2 days) is overdue


def test_kpis_per_department(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    _scenario(ctx, staff, clock)
    rows = _kpis(ctx)
    water, city = rows["sw"], rows["cgj"]
    assert (water.due, water.closed, water.closed_on_time, water.on_time_rate) == (2, 2, 1, 0.5)
    # Mon 09:00 -> Tue 09:00 is 6.5 working hours, Mon 09:00 -> Wed 09:00 is 13; a day has 6.5.
    assert water.avg_handling_working_days == round((6.5 * 60 + 13 * 60) / 2 / 390, 2) == 1.5
    assert (city.closed, city.on_time_rate, city.returns, city.extensions) == (0, None, 1, 1)
    assert city.overdue_open == 1  # the extended ticket, past its moved deadline, still open
    assert city.due == 2  # the returned ticket's and the extended ticket's deadlines fall in November
    # 派单准确率: the water company signed both; 城管 returned one of its two
    assert (water.dispatched, water.dispatch_accuracy) == (2, 1.0)
    assert (city.dispatched, city.dispatched_right, city.dispatch_accuracy) == (2, 1, 0.5)


def test_dispatch_accuracy_charges_each_dispatch_to_its_department(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    _scenario(ctx, staff, clock)
    returned = dispatched(ctx, staff, "路灯损坏", "cgj")
    act(ctx, returned, staff.city, Action.RETURN, schemas.ReasonBody(reason="不属于本部门职责"))
    act(ctx, returned, staff.operator, Action.REDISPATCH, schemas.RedispatchBody(department="sw"))
    rows = _kpis(ctx)
    # the re-dispatch is not settled yet: it counts for nobody
    assert (rows["sw"].dispatched, rows["cgj"].dispatched, rows["cgj"].dispatch_accuracy) == (
        2,
        3,
        round(1 / 3, 4),
    )
    act(ctx, returned, staff.water, Action.SIGN, schemas.NoteBody())
    rows = _kpis(ctx)
    assert (rows["sw"].dispatched, rows["sw"].dispatched_right) == (3, 3)
    overall = _kpis(ctx, "all")[None]
    assert (overall.dispatched, overall.dispatched_right) == (6, 4)


def test_agreement_with_the_router_suggestion(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    from dispatch.routing import Router

    _scenario(ctx, staff, clock)
    rows = _kpis(ctx)
    router = Router()
    # every first dispatch keeps what the router suggested for the ticket's text (re-dispatches not)
    for code, sub, count in (("sw", "停水", 2), ("cgj", "路灯损坏", 1)):
        followed = router.classify(f"{sub}的诉求").department == code
        assert rows[code].suggested >= count
        assert rows[code].suggestion_followed >= (count if followed else 0)
    overall = _kpis(ctx, "all")[None]
    assert overall.suggested == 4
    assert overall.suggestion_agreement == round(overall.suggestion_followed / 4, 4)


def test_kpis_per_category_and_overall(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    _scenario(ctx, staff, clock)
    by_category = _kpis(ctx, "category")
    assert by_category["生活求助"].closed == 2 and by_category["生活求助"].returns == 1
    assert by_category["投诉建议"].extensions == 1 and by_category["投诉建议"].overdue_open == 1
    overall = _kpis(ctx, "all")
    assert list(overall) == [None]
    total = overall[None]
    assert (total.due, total.closed, total.closed_on_time, total.returns, total.extensions) == (4, 2, 1, 1, 1)


def test_kpi_endpoint_scopes_liaisons(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    _scenario(ctx, staff, clock)
    client = TestClient(create_app(ctx))
    everyone = client.get("/api/kpis?start=2026-11-01&end=2026-12-01", auth=("sup", PASSWORD))
    assert everyone.status_code == 200
    assert {r["key"] for r in everyone.json()["rows"]} >= {"sw", "cgj"}
    own = client.get("/api/kpis?start=2026-11-01&end=2026-12-01", auth=("sw1", PASSWORD)).json()
    assert [r["key"] for r in own["rows"]] == ["sw"]
    assert own["rows"][0]["on_time_rate"] == 0.5
    bad = client.get("/api/kpis?start=2026-12-01&end=2026-11-01", auth=("sup", PASSWORD))
    assert bad.status_code == 422 and "end must be after start" in bad.text
    assert client.get("/api/kpis?group_by=street", auth=("sup", PASSWORD)).status_code == 422


def test_warnings_endpoint_and_manual_sweep(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    water = dispatched(ctx, staff, "停水", "sw")
    dispatched(ctx, staff, "路灯损坏", "cgj")
    clock.advance(timedelta(days=30))
    client = TestClient(create_app(ctx))
    assert client.post("/api/sla/sweep", auth=("sw1", PASSWORD)).status_code == 403
    swept = client.post("/api/sla/sweep", auth=("sup", PASSWORD)).json()
    assert swept["swept"] is True and swept["raised"]["overdue"] == 2 and swept["supervised"] == 2
    mine = client.get("/api/sla/warnings", auth=("sw1", PASSWORD)).json()
    assert [(w["ticket"], w["level"]) for w in mine] == [(water, "overdue")]
    assert len(client.get("/api/sla/warnings", auth=("sup", PASSWORD)).json()) == 2
    status = client.get("/api/sla/status", auth=("sup", PASSWORD)).json()
    assert status["last_raised"] == 2 and status["uncovered_years"] == []


def test_the_league_ranks_departments_with_no_rate_last() -> None:
    rows = [
        KpiRow(key="new", name="乙部门"),  # nothing replied yet: no rate
        KpiRow(key="half", name="丙部门", closed=2, closed_on_time=1),
        KpiRow(key=None, name="未分派", closed=5, closed_on_time=5),
        KpiRow(key="all", name="甲部门", closed=3, closed_on_time=3),
        KpiRow(key="idle", name="丁部门", due=1),
    ]
    assert [r.key for r in league_table(rows)] == ["all", "half", "idle", "new"]
