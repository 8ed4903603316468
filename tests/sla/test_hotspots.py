"""Hotspot early warning: a planted spike is alerted (once, growing), an ordinary week is not, a busy
place needs more than a quiet one, sensitive words raise an alert at once, leaders get one SMS, and
acknowledging and closing are audited and refused when wrong."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agent_ui.app import create_app
from core import audit
from core.clock import ManualClock
from core.errors import Conflict, NotPermitted, RuleViolation
from dispatch import schemas
from hotline.context import HotlineContext
from sla.hotspots import acknowledge, alerts, close, hotspot_sweep, poisson_tail
from sla.models import HotspotAlert
from sla.settings import HotspotSettings
from tests.conftest import MONDAY_9, PASSWORD, Staff, subcategory_id

PLACES = ["东风路", "河西路", "人民路", "茶园组", "龙潭水库", "育才路", "文化路", "滨河路"]
TOPICS = ["停水", "路灯损坏", "噪音扰民", "垃圾清运"]


def _call(
    ctx: HotlineContext, staff: Staff, clock: ManualClock, at: datetime, place: str, sub: str, text: str = ""
) -> str:
    clock.set(at)
    with ctx.unit_of_work() as session:
        body = schemas.TicketCreate(
            content=text or f"{place}这边{sub}了，请尽快处理",
            address=f"{place}{random.randint(1, 99)}号",
            caller_phone=f"139{random.randint(0, 99_999_999):08d}",
            subcategory_id=subcategory_id(session, sub),
        )
        return ctx.tickets(session).register(staff.operator, body).number


def _sweep(ctx: HotlineContext, clock: ManualClock, at: datetime) -> list[HotspotAlert]:
    clock.set(at)
    with ctx.unit_of_work() as session:
        changed = hotspot_sweep(session, ctx, at)
        assert changed is not None
        return changed


def _ordinary_weeks(
    ctx: HotlineContext, staff: Staff, clock: ManualClock, start: datetime, days: int
) -> None:
    """About three calls a day spread over places and topics, at random daytime hours."""
    rng = random.Random(7)
    for day in range(days):
        for _ in range(rng.randint(1, 5)):
            at = start + timedelta(days=day, hours=rng.uniform(0, 10))
            _call(ctx, staff, clock, at, rng.choice(PLACES), rng.choice(TOPICS))


def test_the_poisson_tail() -> None:
    assert poisson_tail(0, 1.0) == pytest.approx(1.0)
    assert poisson_tail(1, 1.0) == pytest.approx(1 - 0.36787944, rel=1e-6)
    assert poisson_tail(5, 0.05) < 1e-7


def test_a_planted_spike_is_alerted_once_and_grows(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    start = MONDAY_9 - timedelta(weeks=4)
    _ordinary_weeks(ctx, staff, clock, start, 28)
    burst = MONDAY_9 + timedelta(hours=1)
    numbers = [
        _call(ctx, staff, clock, burst + timedelta(minutes=12 * i), "东风路", "停水") for i in range(5)
    ]
    found = _sweep(ctx, clock, burst + timedelta(hours=1))
    spikes = [a for a in found if a.window_hours == 2]
    assert len(spikes) == 1
    alert = spikes[0]
    assert (alert.town_code, alert.community_code, alert.count) == ("binhe", "dongfeng", 5)
    assert alert.title.startswith("滨河街道东风社区 · 停水：2小时内5件") and sorted(alert.tickets) == sorted(
        numbers
    )
    assert alert.p_value is not None and alert.p_value < 0.001
    assert _sweep(ctx, clock, burst + timedelta(hours=1, minutes=5)) == []  # nothing new: no new alert
    _call(ctx, staff, clock, burst + timedelta(hours=1, minutes=10), "东风小区", "停水")
    grown = [a for a in _sweep(ctx, clock, burst + timedelta(hours=1, minutes=15)) if a.window_hours == 2]
    assert [(a.id, a.count) for a in grown] == [(alert.id, 6)]
    with ctx.unit_of_work() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(HotspotAlert).where(HotspotAlert.window_hours == 2)
            )
            == 1
        )


def test_an_ordinary_week_raises_nothing(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    start = MONDAY_9 - timedelta(weeks=5)
    _ordinary_weeks(ctx, staff, clock, start, 35)
    raised = []
    for hours in range(0, 7 * 24, 6):  # sweep through the last week every six hours
        raised += _sweep(ctx, clock, start + timedelta(weeks=4, hours=hours))
    assert raised == []


def test_a_busy_place_needs_more_than_a_quiet_one(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    ctx.settings.sla.hotspots = HotspotSettings(baseline_weeks=1)
    for day in range(7):  # 人民路 has ten noise complaints a day, 茶园组 none
        for i in range(10):
            _call(ctx, staff, clock, MONDAY_9 - timedelta(days=7 - day, hours=-i), "人民路", "噪音扰民")
    for place in ("人民路", "茶园组"):
        for i in range(4):
            _call(ctx, staff, clock, MONDAY_9 + timedelta(minutes=20 * i), place, "噪音扰民")
    titles = [a.title for a in _sweep(ctx, clock, MONDAY_9 + timedelta(hours=1, minutes=30))]
    assert len(titles) == 1 and titles[0].startswith("东山镇茶园村 · 噪音扰民：2小时内4件")


def test_sensitive_words_raise_an_alert_at_once(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    seen: list[tuple[str, dict[str, object]]] = []
    ctx.events.publish = lambda topic, payload: seen.append((topic, payload))  # type: ignore[method-assign]
    ctx.__dict__.pop("watchers", None)  # rebuilt with the publisher above
    number = _call(
        ctx, staff, clock, MONDAY_9, "人民路", "噪音扰民", "楼下烧烤店太吵，再不管我们就去县政府集体上访"
    )
    with ctx.unit_of_work() as session:
        [alert] = alerts(session)
        assert (alert.kind, alert.words, alert.tickets) == ("sensitive", ["集体上访", "上访"], [number])
        assert "城关街道人民路社区 · 敏感诉求" in alert.title
    assert [t for t, _ in seen if t == "sla.hotspot"] == ["sla.hotspot"]  # announced after the commit
    calm = _call(ctx, staff, clock, MONDAY_9, "人民路", "噪音扰民", "楼下烧烤店太吵")
    with ctx.unit_of_work() as session:
        assert [a.tickets for a in alerts(session)] == [[number]] and calm


def test_acknowledge_close_audit_and_refusals(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    number = _call(ctx, staff, clock, MONDAY_9, "河西路", "停水", "河西路有人说要跳楼")
    now = clock.now()
    with ctx.unit_of_work() as session:
        alert_id = alerts(session)[0].id
    with ctx.unit_of_work() as session, pytest.raises(NotPermitted):
        acknowledge(session, staff.operator, alert_id, None, now)
    with ctx.unit_of_work() as session, pytest.raises(RuleViolation) as no_note:
        close(session, staff.supervisor, alert_id, "  ", now)
    assert "处置情况" in no_note.value.zh
    with ctx.unit_of_work() as session:
        acknowledge(session, staff.supervisor, alert_id, "已通知河西镇", now)
    with ctx.unit_of_work() as session, pytest.raises(Conflict):
        acknowledge(session, staff.supervisor, alert_id, None, now)
    with ctx.unit_of_work() as session:
        close(session, staff.supervisor, alert_id, "派出所和镇政府到场劝解，人已安全", now)
    with ctx.unit_of_work() as session, pytest.raises(Conflict):
        close(session, staff.supervisor, alert_id, "再次", now)
    with ctx.unit_of_work() as session:
        actions = [e.action for e in audit.entries(session, ticket_number=number)]
        assert alerts(session) == []
    assert {"hotspot.acknowledge", "hotspot.close"} <= set(actions)


def test_a_closed_spike_comes_back_only_with_new_calls(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    for i in range(4):
        _call(ctx, staff, clock, MONDAY_9 + timedelta(minutes=10 * i), "龙潭水库", "停水")
    [alert] = [a for a in _sweep(ctx, clock, MONDAY_9 + timedelta(hours=1)) if a.window_hours == 2]
    with ctx.unit_of_work() as session:
        close(session, staff.supervisor, alert.id, "水厂检修，已恢复", clock.now())
    assert _sweep(ctx, clock, MONDAY_9 + timedelta(hours=1, minutes=10)) == []
    _call(ctx, staff, clock, MONDAY_9 + timedelta(hours=1, minutes=20), "龙潭水库", "停水")
    again = [a for a in _sweep(ctx, clock, MONDAY_9 + timedelta(hours=1, minutes=30)) if a.window_hours == 2]
    assert len(again) == 1 and again[0].id != alert.id and again[0].count == 5


def test_leaders_get_one_sms_per_alert(
    ctx: HotlineContext, staff: Staff, clock: ManualClock, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    outbox = tmp_path / "sms.jsonl"
    ctx.settings.callbacks.sms.file = outbox
    ctx.settings.sla.hotspots = HotspotSettings(notify_phones=["13800001111", "13800002222"])
    _call(ctx, staff, clock, MONDAY_9, "文化路", "噪音扰民", "文化广场有人拉横幅")
    _sweep(ctx, clock, MONDAY_9 + timedelta(minutes=1))
    _sweep(ctx, clock, MONDAY_9 + timedelta(minutes=2))
    sent = [json.loads(line) for line in outbox.read_text("utf-8").splitlines()]
    assert sorted(m["phone"] for m in sent) == ["13800001111", "13800002222"]
    assert all("敏感诉求" in m["text"] and "拉横幅" in m["text"] for m in sent)
    with pytest.raises(ValueError, match="not a mobile"):
        HotspotSettings(notify_phones=["12345"])


def test_hotspot_api(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    _call(ctx, staff, clock, MONDAY_9, "人民路", "噪音扰民", "有人在人民广场聚集闹事")
    client = TestClient(create_app(ctx))
    listed = client.get("/api/hotspots", auth=("op1", PASSWORD))
    assert listed.status_code == 200 and listed.json()[0]["kind_label"] == "敏感诉求"
    assert client.get("/api/hotspots", auth=("sw1", PASSWORD)).status_code == 403
    alert_id = listed.json()[0]["id"]
    refused = client.post(f"/api/hotspots/{alert_id}/close", json={}, auth=("sup", PASSWORD))
    assert refused.status_code == 422 and "处置情况" in refused.json()["detail_zh"]
    done = client.post(f"/api/hotspots/{alert_id}/close", json={"note": "已劝离"}, auth=("sup", PASSWORD))
    assert done.status_code == 200 and done.json()["state_label"] == "已处置"
    assert client.get("/api/hotspots", auth=("sup", PASSWORD)).json() == []
    assert len(client.get("/api/hotspots?state=all", auth=("sup", PASSWORD)).json()) == 1
    assert client.post("/api/hotspots/sweep", auth=("op1", PASSWORD)).status_code == 403
    assert client.post("/api/hotspots/sweep", auth=("sup", PASSWORD)).json()["swept"] is True
