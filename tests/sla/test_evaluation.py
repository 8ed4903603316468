"""三率 evaluation: response, resolution, satisfaction and on-time ratings per unit and per town, the
combined score and ranks, the drill-down, and appeals that change a score only when accepted."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agent_ui.app import create_app
from core import audit
from core.clock import ManualClock
from core.errors import Conflict, NotPermitted, RuleViolation
from dispatch import schemas
from dispatch.states import Action
from hotline.context import HotlineContext
from sla.appeals import decide_appeal, file_appeal
from sla.evaluation import League, Score, league_tables, parse_month, unit_facts
from sla.models import Appeal
from sla.settings import EvaluationSettings
from tests.conftest import MONDAY_9, PASSWORD, Staff
from tests.helpers import act, dispatched

NOV = date(2026, 11, 1)


def _league(ctx: HotlineContext, view: str = "unit", first: date = NOV) -> dict[str, Score]:
    towns = {t.code: t.name for t in ctx.gazetteer.towns}
    with ctx.unit_of_work() as session:
        leagues: list[League] = league_tables(
            session,
            ctx.settings.sla.evaluation,
            ctx.calendar,
            first,
            ctx.clock.now(),
            view,
            towns,  # type: ignore[arg-type]
        )
    return {s.key: s for lg in leagues for s in lg.rows}


def _callback(ctx: HotlineContext, staff: Staff, number: str, result: str, solved: bool) -> None:
    body = schemas.CallbackBody(result=result, solved=solved)  # type: ignore[arg-type]
    act(ctx, number, staff.operator, Action.RECORD_CALLBACK, body)


def _scenario(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> dict[str, str]:
    """Water (sw): one ticket right in everything, one wrong in everything. 城管 (cgj): one returned at
    once (an answer), one never signed."""
    good = dispatched(ctx, staff, "停水", "sw")
    slow = dispatched(ctx, staff, "停水", "sw")
    returned = dispatched(ctx, staff, "路灯损坏", "cgj")
    ignored = dispatched(ctx, staff, "路灯损坏", "cgj")
    clock.set(MONDAY_9 + timedelta(minutes=30))
    act(ctx, good, staff.water, Action.SIGN, schemas.NoteBody())
    act(ctx, returned, staff.city, Action.RETURN, schemas.ReasonBody(reason="不属于本部门职责"))
    clock.set(MONDAY_9 + timedelta(days=1))  # Tue 09:00: 6.5 working hours after dispatch
    act(ctx, slow, staff.water, Action.SIGN, schemas.NoteBody())
    act(ctx, good, staff.water, Action.REPLY, schemas.ReplyBody(result="已恢复供水"))
    clock.set(MONDAY_9 + timedelta(days=3))  # Thu: past the 1-day deadline of 停水
    act(ctx, slow, staff.water, Action.REPLY, schemas.ReplyBody(result="已恢复供水"))
    _callback(ctx, staff, good, "satisfied", True)
    _callback(ctx, staff, slow, "dissatisfied", False)
    clock.set(MONDAY_9 + timedelta(days=10))
    return {"good": good, "slow": slow, "returned": returned, "ignored": ignored}


def test_three_rates_score_rank_and_tier(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    _scenario(ctx, staff, clock)
    scores = _league(ctx)
    water, city = scores["sw"], scores["cgj"]
    assert water.counts == {
        "response": (1, 2),
        "on_time": (1, 2),
        "satisfaction": (1, 2),
        "resolution": (1, 2),
    }
    # 0.2 × 50 % + 0.4 × 50 % + 0.4 × 50 % (on-time weighs 0 by default)
    assert water.score == 50.0 and water.tickets == 2
    # a return within the limit is an answer, a dispatch nobody signed is not
    assert city.counts == {"response": (1, 2)} and city.score == 50.0
    # two tickets each: below min_tickets (3), scored but not ranked
    assert (water.rank, water.tier, city.rank) == (None, None, None)
    ctx.settings.sla.evaluation = EvaluationSettings(min_tickets=2)
    scores = _league(ctx)
    assert (scores["sw"].rank, scores["sw"].tier, scores["cgj"].rank) == (1, "较差", 1)
    # a department without any rating is listed, unscored
    assert scores["rsj"].score is None and scores["rsj"].rank is None
    # weights are config: on-time counting as much as the rest changes nothing here (also 50 %)
    assert water.previous_score is None and water.score_change is None


def test_weights_and_tiers_come_from_config(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    _scenario(ctx, staff, clock)
    ctx.settings.sla.evaluation = EvaluationSettings(
        weights={"response": 1.0}, min_tickets=1, satisfied_results=["satisfied", "dissatisfied"]
    )
    scores = _league(ctx)
    assert scores["sw"].score == 50.0 and scores["cgj"].score == 50.0
    assert scores["sw"].rate("satisfaction") == 1.0  # dissatisfied counted as satisfied by this config
    # each is first of its own group: the water company among enterprises, 城管 among departments
    assert (scores["sw"].rank, scores["cgj"].rank) == (1, 1)
    with pytest.raises(ValueError, match="tiers must run"):
        EvaluationSettings.model_validate({"groups": [{"name": "x", "kinds": ["department"], "tiers": []}]})
    with pytest.raises(ValueError, match="at least one must be above 0"):
        EvaluationSettings.model_validate({"weights": {"response": 0}})


def test_drill_down_lists_the_tickets_behind_each_figure(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    tickets = _scenario(ctx, staff, clock)
    with ctx.unit_of_work() as session:
        args = (session, ctx.settings.sla.evaluation, ctx.calendar, NOV, ctx.clock.now())
        water = unit_facts(*args, "sw")
        response = unit_facts(*args, "cgj", "unit", "response")
    failed = [(f.number, f.figure) for f in water if not f.passed]
    assert sorted(failed) == sorted(
        (tickets["slow"], f) for f in ("response", "resolution", "satisfaction", "on_time")
    )
    assert all(f.passed for f in water[len(failed) :])  # failed first
    assert {(f.number, f.passed) for f in response} == {
        (tickets["returned"], True),
        (tickets["ignored"], False),
    }
    assert "未签收" in next(f.detail for f in response if not f.passed)


def test_a_dispatch_still_within_its_limit_is_not_rated(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    dispatched(ctx, staff, "停水", "sw")
    clock.set(MONDAY_9 + timedelta(hours=1))
    assert _league(ctx)["sw"].counts == {}
    clock.set(MONDAY_9 + timedelta(hours=3))  # 09:00 + 2 working hours = 11:00
    assert _league(ctx)["sw"].counts == {"response": (0, 1)}


def test_towns_are_rated_by_where_the_matter_is(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    with ctx.unit_of_work() as session:
        body = schemas.TicketCreate(content="路灯坏了", address="幸福路12号", caller_phone="13900001111")
        number = ctx.tickets(session).register(staff.operator, body).number
    with ctx.unit_of_work() as session:
        from tests.conftest import subcategory_id

        dispatch = schemas.DispatchBody(department="cgj", subcategory_id=subcategory_id(session, "路灯损坏"))
    act(ctx, number, staff.operator, Action.DISPATCH, dispatch)
    act(ctx, number, staff.city, Action.SIGN, schemas.NoteBody())
    towns = _league(ctx, "town")
    assert towns["chengguan"].counts == {"response": (1, 1)} and towns["chengguan"].name == "城关街道"
    assert towns["hexi"].counts == {}


def test_change_against_last_month(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    clock.set(datetime(2026, 10, 12, 9, 0))  # a Monday in October: nobody signs
    for _ in range(3):
        dispatched(ctx, staff, "停水", "sw")
    clock.set(MONDAY_9)
    for _ in range(3):
        number = dispatched(ctx, staff, "停水", "sw")
        act(ctx, number, staff.water, Action.SIGN, schemas.NoteBody())
    clock.set(MONDAY_9 + timedelta(days=1))
    water = _league(ctx)["sw"]
    assert (water.previous_score, water.previous_rank, water.score, water.rank) == (0.0, 1, 100.0, 1)
    assert (water.score_change, water.rank_change) == (100.0, 0)


def test_an_appeal_changes_the_score_only_when_accepted(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    tickets = _scenario(ctx, staff, clock)
    ctx.settings.sla.evaluation = EvaluationSettings(min_tickets=1)
    settings, now = ctx.settings.sla.evaluation, ctx.clock.now()
    with ctx.unit_of_work() as session:
        first = file_appeal(
            session,
            settings,
            ctx.calendar,
            staff.water,
            tickets["slow"],
            "response",
            NOV,
            "系统故障，市民来电时已电话联系",
            "通话记录 2026-11-16 09:40",
            now,
        )
        second = file_appeal(
            session,
            settings,
            ctx.calendar,
            staff.water,
            tickets["slow"],
            "satisfaction",
            NOV,
            "市民误评",
            None,
            now,
        )
        first_id, second_id = first.id, second.id
    assert _league(ctx)["sw"].score == 50.0  # pending: nothing changes
    with ctx.unit_of_work() as session:
        decide_appeal(session, staff.supervisor, second_id, False, "无证据", now)
    assert _league(ctx)["sw"].score == 50.0  # rejected: nothing changes
    with ctx.unit_of_work() as session:
        decide_appeal(session, staff.supervisor, first_id, True, "核实属实", now)
    water = _league(ctx)["sw"]
    assert water.counts["response"] == (1, 1) and water.appealed == 1
    assert water.score == 60.0  # 0.2 × 100 % + 0.4 × 50 % + 0.4 × 50 %
    with ctx.unit_of_work() as session:
        actions = [e.action for e in audit.entries(session, ticket_number=tickets["slow"])]
        states = dict(session.execute(select(Appeal.id, Appeal.state)).all())
    assert {"appeal.file", "appeal.accept", "appeal.reject"} <= set(actions)
    assert states == {first_id: "accepted", second_id: "rejected"}


def test_appeals_refused(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    tickets = _scenario(ctx, staff, clock)
    settings, now = ctx.settings.sla.evaluation, ctx.clock.now()

    def appeal(actor: object, number: str, figure: str = "response", when: datetime = now) -> Appeal:
        with ctx.unit_of_work() as session:
            return file_appeal(
                session, settings, ctx.calendar, actor, number, figure, NOV, "理由", None, when
            )  # type: ignore[arg-type]

    with pytest.raises(RuleViolation) as passed:
        appeal(staff.water, tickets["good"])  # nothing failed there
    assert "无需申诉" in passed.value.zh
    with pytest.raises(RuleViolation):
        appeal(staff.city, tickets["slow"])  # another unit's rating
    with pytest.raises(NotPermitted):
        appeal(staff.operator, tickets["slow"])
    with pytest.raises(RuleViolation) as late:
        appeal(staff.water, tickets["slow"], when=datetime(2026, 12, 20))
    assert "申诉期已过" in late.value.zh
    made = appeal(staff.water, tickets["slow"])
    with pytest.raises(Conflict):
        appeal(staff.water2, tickets["slow"])  # the same rating twice
    with ctx.unit_of_work() as session, pytest.raises(NotPermitted):
        decide_appeal(session, staff.water, made.id, True, None, now)
    with ctx.unit_of_work() as session, pytest.raises(RuleViolation) as reason:
        decide_appeal(session, staff.supervisor, made.id, False, " ", now)
    assert "理由" in reason.value.zh
    with ctx.unit_of_work() as session:
        decide_appeal(session, staff.supervisor, made.id, True, None, now)
    with ctx.unit_of_work() as session, pytest.raises(Conflict):
        decide_appeal(session, staff.supervisor, made.id, False, "改主意", now)


def test_evaluation_api(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    tickets = _scenario(ctx, staff, clock)
    client = TestClient(create_app(ctx))
    sup, water = ("sup", PASSWORD), ("sw1", PASSWORD)
    league = client.get("/api/evaluation?month=2026-11", auth=sup).json()
    rows = {r["key"]: r for g in league["groups"] for r in g["rows"]}
    assert rows["sw"]["score"] == 50.0 and rows["sw"]["figures"]["response"] == {
        "passed": 1,
        "rated": 2,
        "rate": 0.5,
    }
    assert [g["name"] for g in league["groups"]] == ["职能部门", "公共服务企业", "街乡镇"]
    bad = client.get("/api/evaluation?month=2026-13", auth=sup)
    assert bad.status_code == 422 and "YYYY-MM" in bad.text
    assert client.get("/api/evaluation/cgj?month=2026-11", auth=water).status_code == 403
    own = client.get("/api/evaluation/sw?month=2026-11&figure=response", auth=water).json()
    assert [(f["ticket"], f["passed"]) for f in own] == [(tickets["slow"], False), (tickets["good"], True)]
    body = {"ticket": tickets["slow"], "figure": "response", "month": "2026-11", "reason": "系统故障"}
    made = client.post("/api/appeals", json=body, auth=water)
    assert made.status_code == 201 and made.json()["state"] == "pending"
    again = client.post("/api/appeals", json=body, auth=water)
    assert again.status_code == 409 and "重复申诉" in again.json()["detail_zh"]
    assert client.post("/api/appeals", json={**body, "reason": " "}, auth=water).status_code == 422
    decided = client.post(f"/api/appeals/{made.json()['id']}/decision", json={"accept": True}, auth=sup)
    assert decided.status_code == 200 and decided.json()["state_label"] == "已采纳"
    assert [a["state"] for a in client.get("/api/appeals", auth=water).json()] == ["accepted"]
    assert parse_month("2026-02") == date(2026, 2, 1)
