"""The JSON API of the callbacks and the web survey page (FastAPI TestClient, SQLite and PostgreSQL):
an operator's callback (claim, call, result), the missed-call list, survey links by SMS, opt-outs,
the figures, role guards, calling hours and bad input."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agent_ui.app import create_app
from callcenter.models import CallDirection, CallOutcome
from callcenter.service import CallRecords, SeatService
from core.audit import AuditEntry
from core.clock import ManualClock
from dispatch.callbacks.models import Callback
from dispatch.callbacks.service import callbacks_of
from dispatch.callbacks.sms import FileSms
from hotline.context import HotlineContext
from tests.agent_ui.conftest import SECRET, csrf_of, page_login
from tests.conftest import PASSWORD, Staff
from tests.dispatch.test_callbacks import callback_of, replied
from tests.helpers import load


def basic(username: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()}


@pytest.fixture
def client(ctx: HotlineContext, staff: Staff, tmp_path: Path) -> Iterator[TestClient]:
    ctx.settings.auth.session_secret = SECRET
    ctx.settings.callbacks.sms.file = tmp_path / "sms.jsonl"
    with ctx.unit_of_work() as session:
        SeatService(session, ctx.clock).ensure_seats(["1001"])
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


def enqueue(ctx: HotlineContext) -> None:
    with ctx.unit_of_work() as session:
        callbacks_of(ctx, session).enqueue_replied()


def test_operator_takes_a_person_callback_and_enters_the_result(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    number = replied(ctx, staff, "燃气泄漏", "rqgs")
    enqueue(ctx)
    listed = client.get("/api/callbacks", params={"mode": "person"}, headers=basic("op1"))
    assert listed.status_code == 200
    (item,) = listed.json()
    assert (item["ticket_number"], item["state"], item["mode"], item["due"]) == (
        number,
        "pending",
        "person",
        True,
    )

    placed = client.post(f"/api/callbacks/{item['id']}/dial", headers=basic("op1"))
    assert placed.status_code == 200, placed.text
    assert (placed.json()["attempt"], placed.json()["call_uid"]) == (1, None)  # no call centre: dial by hand
    assert callback_of(ctx, number).claimed_by == "console:op1"
    # another operator cannot take it meanwhile, nor enter its result
    assert client.post(f"/api/callbacks/{item['id']}/dial", headers=basic("op2")).status_code == 409
    other = client.post(
        f"/api/callbacks/{item['id']}/result", json={"result": "satisfied"}, headers=basic("op2")
    )
    assert other.status_code == 409 and "他人" in other.json()["detail_zh"]

    bad = client.post(
        f"/api/callbacks/{item['id']}/result", json={"outcome": "answered"}, headers=basic("op1")
    )
    assert bad.status_code == 422 and "回访结果" in bad.json()["detail_zh"]
    assert callback_of(ctx, number).state == "calling"  # nothing lost: still the operator's call
    wrong = client.post(f"/api/callbacks/{item['id']}/result", json={"result": "great"}, headers=basic("op1"))
    assert wrong.status_code == 422

    done = client.post(
        f"/api/callbacks/{item['id']}/result",
        json={"result": "dissatisfied", "solved": False, "note": "燃气公司未上门"},
        headers=basic("op1"),
    )
    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["result"]) == ("done", "dissatisfied")
    ticket = load(ctx, number)
    assert (ticket.state, ticket.reopen_count) == ("in_progress", 1)
    assert [e.action for e in ticket.events[-2:]] == ["record_callback", "reopen"]
    again = client.post(
        f"/api/callbacks/{item['id']}/result", json={"result": "satisfied"}, headers=basic("op1")
    )
    assert again.status_code == 409
    with ctx.unit_of_work() as session:
        logged = list(session.scalars(select(AuditEntry.action).where(AuditEntry.ticket_number == number)))
        listed_numbers = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "callback.list")
        )
        assert any(number in (d or {}).get("numbers", []) for d in listed_numbers)
    assert {"callback.dial", "callback.result"} <= set(logged)


def test_an_unanswered_manual_attempt_counts_and_roles_are_checked(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    number = replied(ctx, staff, "多部门职责交叉", "ddzx")
    enqueue(ctx)
    cb = callback_of(ctx, number)
    answer = client.post(
        f"/api/callbacks/{cb.id}/result", json={"outcome": "no_answer"}, headers=basic("op1")
    )
    assert (
        answer.status_code == 200 and answer.json()["attempts"] == 1 and answer.json()["state"] == "pending"
    )
    assert client.get("/api/callbacks", headers=basic("sw1")).status_code == 403
    assert client.post(f"/api/callbacks/{cb.id}/dial", headers=basic("sw1")).status_code == 403
    assert (
        client.get(f"/api/callbacks/{cb.id}", headers=basic("op1")).json()["attempts_made"][0]["outcome"]
        == "no_answer"
    )
    assert client.get("/api/callbacks/99999", headers=basic("op1")).status_code == 404


def test_no_calls_outside_the_calling_hours(
    client: TestClient, ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = replied(ctx, staff, "燃气泄漏", "rqgs")
    enqueue(ctx)
    clock.set(datetime(2026, 11, 16, 21, 0))
    refused = client.post(f"/api/callbacks/{callback_of(ctx, number).id}/dial", headers=basic("op1"))
    assert refused.status_code == 422 and "09:00-20:00" in refused.json()["detail_zh"]
    assert callback_of(ctx, number).state == "pending" and callback_of(ctx, number).attempts == 0


def test_missed_calls_oldest_first_and_their_outcome(
    client: TestClient, ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    with ctx.unit_of_work() as session:
        records = CallRecords(session, clock)
        for uid, outcome in (("m-new", CallOutcome.ABANDONED), ("m-old", CallOutcome.CALLBACK_REQUESTED)):
            records.open(uid, "13900002222", "12345", "w1", CallDirection.INBOUND)
            records.close(uid, outcome, "ended", "citizen")
        records.get("m-old").offered_at = clock.now() - timedelta(hours=2)
    listed = client.get("/api/missed-calls", headers=basic("op1")).json()
    assert [m["uid"] for m in listed] == ["m-old", "m-new"]
    assert listed[0]["outcome_label"] == "留言回电"
    dial = client.post("/api/missed-calls/m-old/dial", headers=basic("op1"))
    assert dial.status_code == 200 and dial.json()["call_uid"] is None
    bad = client.post("/api/missed-calls/m-old/outcome", json={"outcome": "maybe"}, headers=basic("op1"))
    assert bad.status_code == 422
    ok = client.post(
        "/api/missed-calls/m-old/outcome", json={"outcome": "reached", "note": "已说明"}, headers=basic("op1")
    )
    assert ok.status_code == 200 and ok.json()["callback_outcome"] == "reached"
    twice = client.post(
        "/api/missed-calls/m-old/outcome", json={"outcome": "not_reached"}, headers=basic("op2")
    )
    assert twice.status_code == 409
    assert [m["uid"] for m in client.get("/api/missed-calls", headers=basic("op1")).json()] == ["m-new"]
    assert (
        client.post(
            "/api/missed-calls/nope/outcome", json={"outcome": "reached"}, headers=basic("op1")
        ).status_code
        == 404
    )


def test_figures_for_supervisors_only(client: TestClient, ctx: HotlineContext, staff: Staff) -> None:
    number = replied(ctx, staff)
    enqueue(ctx)
    cb = callback_of(ctx, number)
    client.post(f"/api/callbacks/{cb.id}/result", json={"result": "satisfied"}, headers=basic("op1"))
    params = {"start": "2026-11-01T00:00:00", "end": "2026-12-01T00:00:00", "group_by": "department"}
    assert client.get("/api/callbacks/stats", params=params, headers=basic("op1")).status_code == 403
    figures = client.get("/api/callbacks/stats", params=params, headers=basic("sup")).json()
    (row,) = figures["rows"]
    assert (row["key"], row["due"], row["called_back"], row["satisfaction_rate"], row["callback_rate"]) == (
        "sw", 1, 1, 1.0, 1.0,
    )  # fmt: skip
    backwards = client.get(
        "/api/callbacks/stats", params={**params, "end": "2026-10-01T00:00:00"}, headers=basic("sup")
    )
    assert backwards.status_code == 422
    page_login(client, "sup", PASSWORD)
    page = client.get("/dashboard")
    assert page.status_code == 200
    figures_html = page.text[page.text.index('id="callback-figures"') :]
    assert "100.0%" in figures_html and "回访率" in figures_html


def survey_token(sms_file: Path) -> str:
    (message,) = FileSms(sms_file).messages()
    match = re.search(r"/s/(\S+)", str(message["text"]))
    assert match
    return match.group(1)


def test_web_survey_link_by_sms_valid_reused_expired(
    client: TestClient, ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = replied(ctx, staff)
    enqueue(ctx)
    cb = callback_of(ctx, number)
    sent = client.post(f"/api/callbacks/{cb.id}/link", headers=basic("op1"))
    assert sent.status_code == 200 and sent.json()["status"] == "sent"
    token = survey_token(ctx.settings.callbacks.sms.file)

    page = client.get(f"/s/{token}")
    assert page.status_code == 200 and number in page.text and "已抢修恢复供水" in page.text
    csrf = csrf_of(page.text)
    missing = client.post(f"/s/{token}", data={"csrf_token": csrf, "solved": "yes"})
    assert missing.status_code == 422 and "请选择" in missing.text  # nothing spent
    assert client.post(f"/s/{token}", data={"result": "satisfied"}).status_code == 403  # no CSRF token
    done = client.post(
        f"/s/{token}", data={"csrf_token": csrf, "result": "basically_satisfied", "solved": "yes"}
    )
    assert done.status_code == 200 and "感谢" in done.text
    ticket = load(ctx, number)
    assert (ticket.state, ticket.callback_result) == ("archived", "basically_satisfied")
    assert ticket.events[-1].data == {"result": "basically_satisfied", "solved": True}
    reused = client.post(f"/s/{token}", data={"csrf_token": csrf, "result": "dissatisfied"})
    assert reused.status_code == 410 and "已使用" in reused.text
    assert load(ctx, number).callback_result == "basically_satisfied"
    assert client.get("/s/not-a-real-token").status_code == 410

    other = replied(ctx, staff)
    enqueue(ctx)
    ctx.settings.callbacks.sms.file.unlink()
    client.post(f"/api/callbacks/{callback_of(ctx, other).id}/link", headers=basic("op1"))
    late = survey_token(ctx.settings.callbacks.sms.file)
    clock.advance(timedelta(hours=73))
    expired = client.get(f"/s/{late}")
    assert expired.status_code == 410 and "过期" in expired.text
    assert load(ctx, other).state == "replied"


def test_opt_out_closes_open_callbacks(client: TestClient, ctx: HotlineContext, staff: Staff) -> None:
    number = replied(ctx, staff)
    enqueue(ctx)
    bad = client.post("/api/callbacks/opt-outs", json={"phone": "call me"}, headers=basic("op1"))
    assert bad.status_code == 422
    ok = client.post(
        "/api/callbacks/opt-outs", json={"phone": "13900001111", "reason": "不需要回访"}, headers=basic("op1")
    )
    assert ok.status_code == 201 and ok.json()["closed_callbacks"] == 1
    assert callback_of(ctx, number).state == "opted_out"
    with ctx.unit_of_work() as session:
        assert session.scalar(select(Callback.state)) == "opted_out"
    refused = client.post(f"/api/callbacks/{callback_of(ctx, number).id}/dial", headers=basic("op1"))
    assert refused.status_code == 409


def test_hotline_serve_runs_the_callback_scheduler(ctx: HotlineContext, staff: Staff) -> None:
    """create_app(background=True) is what `hotline serve` runs: with the call centre off, the timer
    still queues replied tickets (calls wait for the call centre or an operator)."""
    ctx.settings.auth.session_secret = SECRET
    ctx.settings.sla.sweeps_enabled = False
    ctx.settings.callcenter.enabled = False
    ctx.settings.callbacks.scheduler_interval_seconds = 1
    number = replied(ctx, staff)
    with TestClient(create_app(ctx, background=True)) as test_client:
        assert test_client.app.state.survey_runner is not None  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with ctx.unit_of_work() as session:
                if session.scalar(select(Callback.id)) is not None:
                    break
            time.sleep(0.1)
    assert callback_of(ctx, number).state == "pending"
