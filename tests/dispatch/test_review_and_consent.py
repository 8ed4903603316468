"""The hotline reviews a department's reply before it reaches the citizen (config
dispatch.review_replies), and nothing is published without the citizen's consent, on every channel
(both databases, through the JSON API as the pages use it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_ui.app import create_app
from dispatch import schemas
from dispatch.callbacks.service import callbacks_of
from dispatch.states import Action
from hotline.context import HotlineContext
from tests.conftest import PASSWORD, Staff
from tests.helpers import act, dispatched, load

REPLY = "已派人疏通管道，今日下午恢复供水。联系人李建国电话13800001111。"


@pytest.fixture
def client(ctx: HotlineContext, staff: Staff) -> Iterator[TestClient]:
    ctx.settings.dispatch.review_replies = True  # as the shipped config.toml has it
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


def basic(username: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()}


def look_up(client: TestClient, number: str) -> dict[str, Any]:
    response = client.post("/api/public/status", json={"number": number, "phone_last4": "1111"})
    assert response.status_code == 200, response.text
    return response.json()


def replied(ctx: HotlineContext, staff: Staff, consent: bool = False) -> str:
    number = dispatched(ctx, staff, "停水", "sw")
    if consent:
        with ctx.unit_of_work() as session:
            ticket = ctx.tickets(session).get(number, staff.operator)
            ticket.disclosure_consent = True
    act(ctx, number, staff.water, Action.SIGN, schemas.NoteBody())
    act(ctx, number, staff.water, Action.REPLY, schemas.ReplyBody(result=REPLY))
    return number


def queued(ctx: HotlineContext) -> int:
    with ctx.unit_of_work() as session:
        return callbacks_of(ctx, session).enqueue_replied()


def test_a_reply_reaches_the_citizen_only_after_the_hotline_approves_it(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    number = replied(ctx, staff)
    assert load(ctx, number).reply_approved_at is None
    status = look_up(client, number)
    assert (status["state_label"], status["reply"]) == ("办理中（答复审核中）", None)
    assert queued(ctx) == 0  # no survey call about a reply nobody reviewed
    refused = client.post(
        f"/api/tickets/{number}/record_callback", json={"result": "satisfied"}, headers=basic("op1")
    )
    assert refused.status_code == 422 and "尚未审核" in refused.json()["detail_zh"]
    assert client.post(f"/api/tickets/{number}/archive", json={}, headers=basic("sup")).status_code == 422

    # Sent back: the department answers again; the first answer stays in the log.
    back = client.post(
        f"/api/tickets/{number}/reject_reply",
        json={"reason": "请写明恢复供水的具体时间"},
        headers=basic("op1"),
    )
    assert back.status_code == 200 and back.json()["state"] == "in_progress"
    assert back.json()["reply_text"] is None
    assert (
        client.post(f"/api/tickets/{number}/approve_reply", json={}, headers=basic("op1")).status_code == 409
    )
    act(ctx, number, staff.water, Action.REPLY, schemas.ReplyBody(result="管道已修复，下午三点恢复供水。"))

    approved = client.post(
        f"/api/tickets/{number}/approve_reply", json={"note": "属实"}, headers=basic("sup")
    )
    assert approved.status_code == 200
    assert approved.json()["reply_approved_at"] and approved.json()["reply_approved_by"] == "sup"
    again = client.post(f"/api/tickets/{number}/approve_reply", json={}, headers=basic("sup"))
    assert again.status_code == 422 and "已审核" in again.json()["detail_zh"]
    status = look_up(client, number)
    assert (status["state_label"], status["reply"]) == ("已答复，待回访", "管道已修复，下午三点恢复供水。")
    assert queued(ctx) == 1
    events = [e.action for e in load(ctx, number).events]
    assert events[-4:] == ["reply", "reject_reply", "reply", "approve_reply"]


def test_liaisons_cannot_approve_their_own_reply(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    number = replied(ctx, staff)
    response = client.post(f"/api/tickets/{number}/approve_reply", json={}, headers=basic("sw1"))
    assert response.status_code == 403
    assert load(ctx, number).reply_approved_at is None


def test_without_the_review_replies_go_out_as_they_come(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    ctx.settings.dispatch.review_replies = False
    number = replied(ctx, staff)
    ticket = load(ctx, number)
    assert ticket.reply_approved_at is not None and ticket.reply_approved_by == "无需审核"
    assert look_up(client, number)["reply"] == REPLY
    assert queued(ctx) == 1


def test_nothing_is_published_without_the_citizens_consent(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    asked_no = replied(ctx, staff, consent=False)
    asked_yes = replied(ctx, staff, consent=True)
    for number in (asked_no, asked_yes):
        act(ctx, number, staff.operator, Action.APPROVE_REPLY, schemas.NoteBody())
        act(ctx, number, staff.operator, Action.RECORD_CALLBACK, schemas.CallbackBody(result="satisfied"))
    assert client.get("/api/public/disclosure").json()["total"] == 1  # only the one who agreed
    open311 = [r["service_request_id"] for r in client.get("/open311/v2/requests.json").json()]
    assert asked_yes in open311 and asked_no not in open311
    [shown] = client.get(f"/open311/v2/requests/{asked_yes}.json").json()
    notes = shown["status_notes"] or ""
    assert notes and "李建国" not in notes and "13800001111" not in notes


def test_the_console_records_the_consent_the_operator_asked_for(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    numbers = {}
    for consent in (True, False):
        body = {
            "ticket": {
                "content": "小区门口路灯不亮",
                "caller_phone": "13900001111",
                "disclosure_consent": consent,
            }
        }
        response = client.post("/api/console/tickets", json=body, headers=basic("op1"))
        assert response.status_code == 201, response.text
        numbers[consent] = response.json()["number"]
        assert response.json()["disclosure_consent"] is consent
    private = {"ticket": {"content": "家里漏水", "private": True, "disclosure_consent": True}}
    kept = client.post("/api/console/tickets", json=private, headers=basic("op1")).json()
    assert kept["disclosure_consent"] is False  # private wins over consent


def test_an_open_ticket_shows_no_reply_to_apps(client: TestClient, ctx: HotlineContext, staff: Staff) -> None:
    number = replied(ctx, staff, consent=True)
    act(ctx, number, staff.operator, Action.APPROVE_REPLY, schemas.NoteBody())
    [row] = client.get(f"/open311/v2/requests/{number}.json").json()
    assert row["status"] == "closed" and row["status_notes"]  # replied and approved: shown, scrubbed
    act(ctx, number, staff.operator, Action.RECORD_CALLBACK, schemas.CallbackBody(result="dissatisfied"))
    [row] = client.get(f"/open311/v2/requests/{number}.json").json()
    assert row["status"] == "open" and row["status_notes"] is None  # reopened: no reply until the next
