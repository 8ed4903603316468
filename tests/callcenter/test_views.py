"""The call-centre JSON API without the telephony running (both backends): seats, permissions,
figures, validation, and a clear refusal for live-call actions when the call centre is off."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent_ui.app import create_app
from callcenter.models import CallDirection, SeatState
from callcenter.runtime import start_call_centre
from callcenter.service import CallRecords, SeatService
from callcenter.testing.harness import loopback_settings
from core.accounts.service import issue_token
from hotline.context import HotlineContext
from tests.conftest import Staff


@pytest.fixture
def client(ctx: HotlineContext, staff: Staff) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    with ctx.unit_of_work() as session:
        SeatService(session, ctx.clock).ensure_seats(["1001", "1002"])
        headers = {
            name: {"Authorization": f"Bearer {issue_token(session, user, ctx.clock.now(), 'test')}"}
            for name, user in staff.users.items()
        }
    with TestClient(create_app(ctx)) as test_client:
        yield test_client, headers


def test_an_operator_signs_in_at_a_free_seat_and_another_cannot_take_it(client: tuple) -> None:
    http, who = client
    response = http.post("/api/seats/1001/state", json={"state": "ready"}, headers=who["op1"])
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "ready" and response.json()["state_label"] == "空闲"
    taken = http.post("/api/seats/1001/state", json={"state": "break"}, headers=who["op2"])
    assert taken.status_code == 403 and "已有其他话务员" in taken.json()["detail_zh"]
    seats = http.get("/api/seats", headers=who["sup"]).json()
    assert [(s["extension"], s["state"]) for s in seats] == [("1001", "ready"), ("1002", "logged_out")]


def test_liaisons_have_no_business_with_seats(client: tuple) -> None:
    http, who = client
    assert http.get("/api/seats", headers=who["sw1"]).status_code == 403
    assert http.post("/api/seats/1001/state", json={"state": "ready"}, headers=who["sw1"]).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [({"state": "talking"}, "state"), ({"state": "ready", "extra": 1}, "extra"), ({}, "state")],
)
def test_bad_seat_requests_name_the_field(client: tuple, body: dict, field: str) -> None:
    http, who = client
    response = http.post("/api/seats/1001/state", json=body, headers=who["op1"])
    assert response.status_code == 422
    assert field in {p["field"] for p in response.json()["problems"]}


def test_unknown_seat_is_404(client: tuple) -> None:
    http, who = client
    assert http.post("/api/seats/9999/state", json={"state": "ready"}, headers=who["op1"]).status_code == 404


def test_live_call_actions_say_the_call_centre_is_off(client: tuple) -> None:
    http, who = client
    response = http.post("/api/calls/w001-1-1/transfer", json={"target": "110"}, headers=who["sup"])
    assert response.status_code == 409 and response.json()["detail_zh"] == "呼叫中心未启用"
    assert (
        http.post("/api/calls/w001-1-1/transfer", json={"target": "911"}, headers=who["sup"]).status_code
        == 422
    )
    assert http.get("/api/callcenter/queue", headers=who["op1"]).json()["enabled"] is False


def test_an_operator_may_not_act_on_a_call_at_another_seat(client: tuple) -> None:
    http, who = client
    http.post("/api/seats/1001/state", json={"state": "ready"}, headers=who["op1"])
    response = http.post("/api/calls/w001-1-1/hangup", headers=who["op1"])
    assert response.status_code == 403 and "不在您的坐席" in response.json()["detail_zh"]


def test_queue_figures_of_an_empty_day(client: tuple) -> None:
    http, who = client
    figures = http.get("/api/callcenter/stats", headers=who["sup"]).json()
    assert figures["offered"] == 0 and figures["answer_rate"] is None
    bad = http.get("/api/callcenter/stats?start=2026-11-17T00:00&end=2026-11-16T00:00", headers=who["sup"])
    assert bad.status_code == 409 and "结束时间" in bad.json()["detail_zh"]


def test_unknown_call_records_are_404(client: tuple) -> None:
    http, who = client
    assert http.get("/api/calls/nope", headers=who["sup"]).status_code == 404
    assert http.get("/api/calls/nope/recording", headers=who["sup"]).status_code == 404
    assert http.get("/api/calls/nope/recording", headers=who["op1"]).status_code == 403


def test_status_says_why_the_call_centre_is_off(client: tuple) -> None:
    http, who = client
    status = http.get("/api/callcenter/status", headers=who["sup"]).json()
    assert status["enabled"] is False and "enabled = false" in status["reason"]


@pytest.mark.skipif(
    not shutil.which("espeak-ng") or not shutil.which("sox"), reason="needs espeak-ng and sox"
)
def test_a_missing_kamailio_stops_only_the_telephony_and_says_how_to_install_it(
    ctx: HotlineContext, tmp_path: Path
) -> None:
    cc = loopback_settings(
        1,
        ["1001"],
        kamailio_binary="no-such-kamailio",
        runtime_dir=tmp_path / "run",
        prompts_dir=tmp_path / "prompts",
        recordings_dir=tmp_path / "rec",
    )
    ctx.settings.callcenter = cc
    # A thread of its own: the browser tests' Playwright may own this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        centre, reason = pool.submit(asyncio.run, start_call_centre(ctx)).result(120)
    assert centre is None and reason is not None and "apt-get install kamailio" in reason


def test_the_console_links_the_call_to_the_ticket_it_became(client: tuple, ctx: HotlineContext) -> None:
    http, who = client
    http.post("/api/seats/1001/state", json={"state": "ready"}, headers=who["op1"])
    with ctx.unit_of_work() as session:
        CallRecords(session, ctx.clock).open(
            "w001-1-9", "13800138000", "12345", "w001", CallDirection.INBOUND
        )
        seats = SeatService(session, ctx.clock)
        seats.change("1001", SeatState.RINGING, by_queue=True, call_uid="w001-1-9")
        seats.change("1001", SeatState.TALKING, by_queue=True)
    first = http.post("/api/tickets", json={"content": "路灯不亮"}, headers=who["op1"]).json()["number"]
    second = http.post("/api/tickets", json={"content": "又一件事"}, headers=who["op1"]).json()["number"]
    linked = http.post("/api/calls/w001-1-9/ticket", json={"number": first}, headers=who["op1"])
    assert linked.status_code == 200 and linked.json()["ticket_id"] is not None
    again = http.post("/api/calls/w001-1-9/ticket", json={"number": second}, headers=who["op1"])
    assert again.status_code == 409 and "已关联其他工单" in again.json()["detail_zh"]
    other = http.post("/api/calls/w001-1-9/ticket", json={"number": first}, headers=who["op2"])
    assert other.status_code == 403
    bad = http.post("/api/calls/w001-1-9/ticket", json={"number": "not-a-number"}, headers=who["op1"])
    assert bad.status_code == 422
