"""The JSON side of every page action (FastAPI TestClient, SQLite and PostgreSQL): login and the
session cookie on the API, CSRF, lockout, audit, the console's register-and-act, triage, seats,
search, admin (users, departments, calendar, routing words), role guards and live-event filtering."""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agent_ui.app import create_app
from agent_ui.live import Viewer
from callcenter.service import SeatService
from core.accounts.models import Role
from core.audit import AuditEntry
from core.events import Event
from dispatch.models import Ticket
from hotline.context import HotlineContext
from hotline.demo_data import load_knowledge_base
from tests.agent_ui.conftest import SECRET, csrf_of, page_login
from tests.conftest import PASSWORD, Staff, subcategory_id

WATER = "河西路18号小区从昨晚开始停水，什么时候能恢复？"


@pytest.fixture
def app_client(ctx: HotlineContext, staff: Staff) -> Iterator[TestClient]:
    ctx.settings.auth.session_secret = SECRET
    with ctx.unit_of_work() as session:
        load_knowledge_base(session, ctx.clock.now())
        SeatService(session, ctx.clock).ensure_seats(["1001", "1002"])
    with TestClient(create_app(ctx)) as client:
        yield client


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def logged_in(ctx: HotlineContext, username: str) -> tuple[TestClient, dict[str, str]]:
    """A second browser-like client with its own cookie jar, logged in; returns the CSRF header."""
    client = TestClient(create_app(ctx))
    token = page_login(client, username, PASSWORD)
    return client, {"X-CSRF-Token": token}


def sub(ctx: HotlineContext, name: str) -> int:
    with ctx.unit_of_work() as session:
        return subcategory_id(session, name)


def tickets_count(ctx: HotlineContext) -> int:
    with ctx.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(Ticket)) or 0


# ---- login, cookie, CSRF, lockout, logout --------------------------------------------------------


def test_cookie_session_works_on_the_api_with_csrf_on_unsafe_methods(app_client: TestClient) -> None:
    token = page_login(app_client, "op1", PASSWORD)
    assert app_client.get("/api/me").json()["username"] == "op1"
    refused = app_client.post("/api/tickets", json={"content": WATER})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"] and refused.json()["detail_zh"]
    wrong = app_client.post("/api/tickets", json={"content": WATER}, headers={"X-CSRF-Token": "x" + token})
    assert wrong.status_code == 403
    made = app_client.post("/api/tickets", json={"content": WATER}, headers={"X-CSRF-Token": token})
    assert made.status_code == 201, made.text


def test_login_form_without_token_is_refused(app_client: TestClient) -> None:
    app_client.get("/login")
    response = app_client.post(
        "/login", data={"username": "op1", "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403
    assert app_client.get("/api/me").status_code == 401


def test_wrong_password_keeps_the_username_and_says_why(app_client: TestClient) -> None:
    token = csrf_of(app_client.get("/login").text)
    response = app_client.post("/login", data={"username": "op1", "password": "nope", "csrf_token": token})
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text and 'value="op1"' in response.text


def test_repeated_failures_lock_the_account_on_api_and_pages_until_an_admin_unlocks(
    app_client: TestClient, ctx: HotlineContext
) -> None:
    for _ in range(ctx.settings.auth.lockout_attempts):
        assert app_client.get("/api/me", headers=basic("sw1", "wrong-password")).status_code == 401
    locked = app_client.get("/api/me", headers=basic("sw1"))
    assert locked.status_code == 401 and "锁定" in locked.json()["detail_zh"]
    token = csrf_of(app_client.get("/login").text)
    page = app_client.post("/login", data={"username": "sw1", "password": PASSWORD, "csrf_token": token})
    assert page.status_code == 401 and "已锁定" in page.text
    unlocked = app_client.patch("/api/admin/users/sw1", json={"unlock": True}, headers=basic("adm"))
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["locked_until"] is None
    assert app_client.get("/api/me", headers=basic("sw1")).status_code == 200
    with ctx.unit_of_work() as session:
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.username == "sw1")).all()
    assert "login.failed" in actions and "login.locked" in actions


def test_logout_and_password_change_end_the_session(app_client: TestClient, ctx: HotlineContext) -> None:
    client, headers = logged_in(ctx, "op2")
    assert client.get("/api/me").status_code == 200
    response = client.post("/logout", data={"csrf_token": headers["X-CSRF-Token"]}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/api/me").status_code == 401

    client, _ = logged_in(ctx, "op2")
    changed = app_client.patch(
        "/api/admin/users/op2", json={"password": "another-pass-9"}, headers=basic("adm")
    )
    assert changed.status_code == 200
    assert client.get("/api/me").status_code == 401


def test_pages_need_a_login_and_the_right_role(app_client: TestClient, ctx: HotlineContext) -> None:
    anonymous = app_client.get("/console", headers={"Accept": "text/html"}, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=/console")
    liaison, _ = logged_in(ctx, "sw1")
    for path in ("/dashboard", "/admin", "/console"):
        response = liaison.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 403, path
        assert "无权访问" in response.text
    assert liaison.get("/portal").status_code == 200
    operator, _ = logged_in(ctx, "op1")
    assert operator.get("/console").status_code == 200
    assert operator.get("/portal").status_code == 403
    admin, _ = logged_in(ctx, "adm")
    for path in ("/admin", "/admin/seats", "/admin/calendar", "/admin/routing", "/admin/kb", "/admin/audit"):
        assert admin.get(path).status_code == 200, path


def test_next_after_login_stays_on_this_site(app_client: TestClient) -> None:
    token = csrf_of(app_client.get("/login").text)
    data = {"username": "op1", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"}
    response = app_client.post("/login", data=data, follow_redirects=False)
    assert response.headers["location"] == "/console"


# ---- the console: triage, register-and-act ---------------------------------------------------------


def test_triage_suggests_department_deadline_and_answers(app_client: TestClient) -> None:
    water = app_client.get("/api/triage", params={"text": WATER}, headers=basic("op1")).json()
    assert (water["subcategory"], water["department"]) == ("停水", "sw")
    assert water["deadline_days"] == 1 and water["deadline"].startswith("2026-11-17T17:30")
    query = app_client.get(
        "/api/triage", params={"text": "社保缴费记录怎么打印"}, headers=basic("op1")
    ).json()
    assert query["on_the_spot"] and query["suggestions"][0]["answer"]
    assert app_client.get("/api/triage", params={"text": WATER}, headers=basic("sw1")).status_code == 403


def test_console_answers_on_the_spot_in_one_step(app_client: TestClient, ctx: HotlineContext) -> None:
    body = {
        "ticket": {"content": "社保缴费记录怎么打印", "caller_phone": "13912345678"},
        "answer_on_spot": {"answer": "可在人社局窗口打印。", "kb_entry_id": "demo-001"},
    }
    response = app_client.post("/api/console/tickets", json=body, headers=basic("op1"))
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "closed" and response.json()["kb_entry_id"] == "demo-001"


def test_console_dispatches_in_one_step_and_refuses_without_leaving_a_ticket(
    app_client: TestClient, ctx: HotlineContext
) -> None:
    dispatch = {"department": "sw", "subcategory_id": sub(ctx, "停水")}
    ok = app_client.post(
        "/api/console/tickets",
        json={"ticket": {"content": WATER}, "dispatch": dispatch},
        headers=basic("op1"),
    )
    assert ok.status_code == 201 and ok.json()["state"] == "dispatched"
    assert ok.json()["deadline"].startswith("2026-11-17T17:30")
    bad_phone = app_client.post(
        "/api/console/tickets",
        json={"ticket": {"content": WATER, "caller_phone": "abc"}, "dispatch": dispatch},
        headers=basic("op1"),
    )
    assert bad_phone.status_code == 422 and "来电号码" in bad_phone.json()["detail_zh"]
    on_the_spot = {"department": "rsj", "subcategory_id": 999999}
    refused = app_client.post(
        "/api/console/tickets",
        json={"ticket": {"content": WATER}, "dispatch": on_the_spot},
        headers=basic("op1"),
    )
    assert refused.status_code == 404 and "所选小类不存在" in refused.json()["detail_zh"]  # what is missing
    assert tickets_count(ctx) == 1  # the refused ones left nothing behind


def test_deadline_preview(app_client: TestClient, ctx: HotlineContext) -> None:
    response = app_client.get(
        "/api/deadline", params={"subcategory_id": sub(ctx, "噪音扰民")}, headers=basic("op1")
    )
    assert response.json()["deadline_days"] == 5


# ---- seats -------------------------------------------------------------------------------------


def test_operators_set_their_own_seat_and_supervisors_any(
    app_client: TestClient, ctx: HotlineContext
) -> None:
    ready = app_client.post("/api/seats/1001/state", json={"state": "ready"}, headers=basic("op1"))
    assert ready.status_code == 200 and ready.json()["state"] == "ready"
    other = app_client.post("/api/seats/1001/state", json={"state": "break"}, headers=basic("op2"))
    assert other.status_code == 403
    mine = app_client.post("/api/seats/1001/state", json={"state": "break"}, headers=basic("op1"))
    assert mine.json()["state_label"] == "小休"
    forced = app_client.post("/api/seats/1001/state", json={"state": "logged_out"}, headers=basic("sup"))
    assert forced.status_code == 200
    seats = app_client.get("/api/seats", headers=basic("sup")).json()
    assert [s["extension"] for s in seats] == ["1001", "1002"]
    assert app_client.get("/api/seats", headers=basic("sw1")).status_code == 403
    assert app_client.get("/api/callcenter/queue", headers=basic("op1")).json()["length"] == 0


# ---- search and department scope -------------------------------------------------------------------


def test_search_by_text_and_phone_within_what_the_role_may_see(
    app_client: TestClient, ctx: HotlineContext
) -> None:
    for content, phone, department, name in (
        (WATER, "13900001111", "sw", "停水"),
        ("夜市摊点占道经营", "13900002222", "cgj", "占道经营"),
    ):
        body = {
            "ticket": {"content": content, "caller_phone": phone},
            "dispatch": {"department": department, "subcategory_id": sub(ctx, name)},
        }
        assert app_client.post("/api/console/tickets", json=body, headers=basic("op1")).status_code == 201
    found = app_client.get("/api/tickets", params={"text": "停水"}, headers=basic("op1")).json()
    assert [t["caller_phone"] for t in found["items"]] == ["13900001111"]
    by_phone = app_client.get(
        "/api/tickets", params={"caller_phone": "13900002222"}, headers=basic("sup")
    ).json()
    assert by_phone["total"] == 1
    liaison = app_client.get("/api/tickets", params={"text": "占道"}, headers=basic("sw1")).json()
    assert liaison["total"] == 0
    own = app_client.get("/api/tickets", headers=basic("sw1")).json()
    assert [t["caller_phone"] for t in own["items"]] == ["139****1111"]
    number = by_phone["items"][0]["number"]
    assert app_client.get(f"/api/tickets/{number}", headers=basic("sw1")).status_code == 403
    client, _ = logged_in(ctx, "sw1")
    page = client.get(f"/tickets/{number}", headers={"Accept": "text/html"})
    assert page.status_code == 403 and "不属于本部门" in page.text
    assert client.get("/tickets/20261116-9999", headers={"Accept": "text/html"}).status_code == 404
    with ctx.unit_of_work() as session:
        denied = session.scalar(
            select(func.count()).where(
                AuditEntry.action == "ticket.view.denied", AuditEntry.ticket_number == number
            )
        )
    assert denied == 2


def test_every_view_and_action_is_audited_with_its_channel(
    app_client: TestClient, ctx: HotlineContext
) -> None:
    number = app_client.post("/api/tickets", json={"content": WATER}, headers=basic("op1")).json()["number"]
    app_client.get(f"/api/tickets/{number}", headers=basic("sup"))
    client, headers = logged_in(ctx, "op1")
    client.get(f"/tickets/{number}")
    client.post(
        f"/api/tickets/{number}/dispatch",
        json={"department": "sw", "subcategory_id": sub(ctx, "停水")},
        headers=headers,
    )
    with ctx.unit_of_work() as session:
        rows = session.execute(
            select(AuditEntry.username, AuditEntry.action, AuditEntry.via)
            .where(AuditEntry.ticket_number == number)
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("op1", "ticket.register", "api"),
        ("sup", "ticket.view", "api"),
        ("op1", "ticket.view", "page"),
        ("op1", "ticket.dispatch", "api"),
    ]


# ---- admin -------------------------------------------------------------------------------------------


def test_admin_creates_and_changes_users(app_client: TestClient) -> None:
    no_department = {
        "username": "lly9",
        "display_name": "新联络员",
        "role": "liaison",
        "password": "long-enough-1",
    }
    refused = app_client.post("/api/admin/users", json=no_department, headers=basic("adm"))
    assert refused.status_code == 422 and "部门" in refused.json()["detail_zh"]
    made = app_client.post(
        "/api/admin/users", json={**no_department, "department": "gdj"}, headers=basic("adm")
    )
    assert made.status_code == 201 and made.json()["department"] == "gdj"
    assert app_client.get("/api/me", headers=basic("lly9", "long-enough-1")).json()["department"] == "gdj"
    moved = app_client.patch("/api/admin/users/lly9", json={"role": "operator"}, headers=basic("adm"))
    assert moved.json()["department"] is None
    off = app_client.patch("/api/admin/users/lly9", json={"active": False}, headers=basic("adm"))
    assert off.json()["active"] is False
    assert app_client.get("/api/me", headers=basic("lly9", "long-enough-1")).status_code == 401
    assert app_client.post("/api/admin/users", json=no_department, headers=basic("sup")).status_code == 403
    self_lock = app_client.patch("/api/admin/users/adm", json={"active": False}, headers=basic("adm"))
    assert self_lock.status_code == 422


def test_admin_departments(app_client: TestClient) -> None:
    body = {"code": "wlj", "name": "演示县文旅局", "kind": "department", "phone": "0000-12345"}
    assert app_client.post("/api/admin/departments", json=body, headers=basic("adm")).status_code == 200
    codes = [d["code"] for d in app_client.get("/api/admin/departments", headers=basic("adm")).json()]
    assert "wlj" in codes


def test_calendar_override_moves_new_deadlines(app_client: TestClient, ctx: HotlineContext) -> None:
    params, auth = {"subcategory_id": sub(ctx, "停水")}, basic("op1")
    assert (
        app_client.get("/api/deadline", params=params, headers=auth)
        .json()["deadline"]
        .startswith("2026-11-17")
    )
    holiday = {"day": "2026-11-17", "kind": "holiday", "note": "县庆"}
    assert app_client.post("/api/admin/calendar", json=holiday, headers=basic("adm")).status_code == 201
    assert (
        app_client.get("/api/deadline", params=params, headers=auth)
        .json()["deadline"]
        .startswith("2026-11-18")
    )
    assert ctx.calendar.is_working_day(date(2026, 11, 17)) is False
    past = app_client.post(
        "/api/admin/calendar", json={"day": "2026-11-01", "kind": "workday"}, headers=basic("adm")
    )
    assert past.status_code == 422 and past.json()["detail_zh"]
    assert app_client.delete("/api/admin/calendar/2026-11-17", headers=basic("adm")).status_code == 204
    assert (
        app_client.get("/api/deadline", params=params, headers=auth)
        .json()["deadline"]
        .startswith("2026-11-17")
    )


def test_routing_words_change_the_suggestion(app_client: TestClient, ctx: HotlineContext) -> None:
    text = "小区里的拱形彩灯架歪了"
    before = app_client.get("/api/triage", params={"text": text}, headers=basic("op1")).json()
    # the trained model reads a street light; the admin's word says it is 市容环卫 here
    word = {"word": "彩灯架", "subcategory_id": sub(ctx, "市容环卫"), "level": "strong"}
    added = app_client.post("/api/admin/routing-words", json=word, headers=basic("adm"))
    assert added.status_code == 201, added.text
    after = app_client.get("/api/triage", params={"text": text}, headers=basic("op1")).json()
    assert after["subcategory"] == "市容环卫" != before["subcategory"]
    assert any("分派词" in e for e in after["evidence"])
    again = app_client.post("/api/admin/routing-words", json=word, headers=basic("adm"))
    assert again.status_code == 422 and "已是" in again.json()["detail_zh"]
    listed = app_client.get("/api/admin/routing-words", headers=basic("adm")).json()
    assert (
        app_client.delete(f"/api/admin/routing-words/{listed[0]['id']}", headers=basic("adm")).status_code
        == 204
    )
    assert app_client.get("/api/triage", params={"text": text}, headers=basic("op1")).json() == before


# ---- live events ---------------------------------------------------------------------------------


def test_live_events_are_filtered_by_role() -> None:
    water = Event("ticket.dispatch", {"number": "1", "department_ids": [7]})
    city = Event("ticket.dispatch", {"number": "2", "department_ids": [9]})
    liaison = Viewer(Role.LIAISON, 7)
    assert liaison.may_see(water) and not liaison.may_see(city)
    assert "call." not in liaison.topics()
    operator = Viewer(Role.OPERATOR, None, "1001")
    offered_here = Event("call.offered", {"extension": "1001", "call_uid": "a"})
    offered_there = Event("call.offered", {"extension": "1002", "call_uid": "b"})
    assert operator.may_see(offered_here) and not operator.may_see(offered_there)
    assert operator.may_see(Event("transcript.partial", {"call_uid": "a", "text": "停水"}))
    assert not operator.may_see(Event("transcript.partial", {"call_uid": "b", "text": "停水"}))
    assert Viewer(Role.SUPERVISOR, None).may_see(offered_there)


def test_health_and_the_dashboard_say_when_calls_or_transcription_are_off(
    app_client: TestClient, ctx: HotlineContext
) -> None:
    health = app_client.get("/api/health").json()
    assert health["status"] == "ok" and health["callcenter"] == "off" and health["transcription"] == "off"
    assert "enabled = false" in health["callcenter_reason"] and health["transcription_reason"]
    client, _ = logged_in(ctx, "sup")
    page = client.get("/dashboard").text
    assert "转写关闭" in page and "呼叫中心" in page and "未启用" in page
    # On screen in Chinese; the English detail for the engineers stays in the tooltip.
    assert "配置中未启用" in page and ("未配置语音模型" in page or "语音转写未启动" in page)


def test_health_says_when_understanding_is_degraded(ctx: HotlineContext) -> None:
    from core import semantics

    ok = TestClient(create_app(ctx), base_url="http://testserver").get("/api/health").json()
    assert ok["understanding"] == "ok" and ok["status"] == "ok"
    settings = ctx.settings.model_copy(
        update={"understanding": ctx.settings.understanding.model_copy(update={"encoder": "none"})}
    )
    try:
        without = dataclasses.replace(ctx, settings=settings)
        degraded = TestClient(create_app(without), base_url="http://testserver").get("/api/health").json()
        assert degraded["status"] == "degraded" and degraded["understanding"] == "degraded"
        assert "语义模型不可用" in degraded["understanding_reason"]
    finally:
        semantics.configure(semantics.E5_NAME)


def test_dashboard_and_calendar_warn_that_next_year_has_no_official_holidays(
    ctx: HotlineContext, app_client: TestClient
) -> None:
    """The clock is in November 2026; the calendar library has no 2027 holidays yet."""
    supervisor, _ = logged_in(ctx, "sup")
    dashboard = supervisor.get("/dashboard")
    assert dashboard.status_code == 200
    assert "calendar-warning" in dashboard.text and "缺少 2027 年" in dashboard.text
    admin, _ = logged_in(ctx, "adm")
    page = admin.get("/admin/calendar")
    assert "calendar-warning" in page.text and "逐日录入" in page.text
    status = app_client.get("/api/sla/status", headers=basic("sup")).json()
    assert any("2027" in w for w in status["calendar_warnings"])


def test_a_reopened_ticket_is_marked_in_the_liaisons_lists_and_on_the_ticket(
    ctx: HotlineContext, staff: Staff, app_client: TestClient
) -> None:
    from dispatch import schemas
    from dispatch.states import Action
    from tests.helpers import act, dispatched, load

    number = dispatched(ctx, staff, "停水", "sw")
    act(ctx, number, staff.water, Action.SIGN, schemas.NoteBody())
    act(ctx, number, staff.water, Action.REPLY, schemas.ReplyBody(result="已恢复供水"))
    act(ctx, number, staff.operator, Action.RECORD_CALLBACK, schemas.CallbackBody(result="dissatisfied"))
    assert load(ctx, number).reopen_count == 1
    liaison, _ = logged_in(ctx, "sw1")
    lists = [liaison.get(f"/portal?tab={tab}").text for tab in ("todo", "doing", "done")]
    row = next(page for page in lists if f'data-number="{number}"' in page)
    assert 'class="badge reopened"' in row.split(f'data-number="{number}"', 1)[1].split("</tr>", 1)[0]
    assert 'class="badge reopened"' in liaison.get(f"/tickets/{number}").text
    assert 'class="badge reopened"' in liaison.get("/search", params={"text": number}).text


def test_the_audit_log_reads_as_chinese(ctx: HotlineContext, staff: Staff, app_client: TestClient) -> None:
    operator, headers = logged_in(ctx, "op1")
    body = {
        "ticket": {"content": WATER, "caller_phone": "13900001111"},
        "dispatch": {"department": "sw", "subcategory_id": sub(ctx, "停水")},
    }
    assert operator.post("/api/console/tickets", json=body, headers=headers).status_code == 201
    admin, _ = logged_in(ctx, "adm")
    page = admin.get("/admin/audit").text
    table = page.split('id="audit"', 1)[1].split("</table>", 1)[0]
    assert "话务员" in table and "系统管理员" in table  # roles by name
    assert "演示县供水有限公司" in table and "部门：" in table  # a department by its name
    assert "\\u" not in table and '{"' not in table and "operator" not in table


def _workbook(response: Any) -> Any:
    from openpyxl import load_workbook

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    return load_workbook(io.BytesIO(response.content))


def test_every_dashboard_table_and_the_search_export_to_excel(
    ctx: HotlineContext, staff: Staff, app_client: TestClient
) -> None:
    from datetime import timedelta

    from tests.helpers import dispatched

    late = dispatched(ctx, staff, "停水", "sw")  # 1 working day: overdue by Wednesday
    ctx.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    supervisor, _ = logged_in(ctx, "sup")
    book = _workbook(supervisor.get("/dashboard/export.xlsx"))
    assert book.sheetnames[:5] == ["坐席状态", "超期工单", "即将到期", "待审批", "2026年11月部门排名"]
    assert len(book.sheetnames) == 7
    overdue = book["超期工单"]
    assert [c.value for c in overdue[1]][:3] == ["工单号", "承办部门", "时限"]
    assert [r[0] for r in overdue.iter_rows(min_row=2, values_only=True)] == [late]
    single = _workbook(supervisor.get("/dashboard/export.xlsx", params={"table": "league"}))
    assert single.sheetnames == ["2026年11月部门排名"]
    assert supervisor.get("/dashboard/export.xlsx", params={"table": "nonsense"}).status_code == 422
    operator, _ = logged_in(ctx, "op1")
    assert operator.get("/dashboard/export.xlsx").status_code == 403

    found = _workbook(supervisor.get("/search.xlsx", params={"text": "停水"}))["工单"]
    rows = list(found.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == [late] and rows[0][4] == "13900001111"
    liaison, _ = logged_in(ctx, "sw1")
    masked = list(_workbook(liaison.get("/search.xlsx", params={"text": "停水"}))["工单"].values)
    assert masked[1][4] == "139****1111"  # liaisons see masked numbers in the file too
    with ctx.unit_of_work() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("ticket.export") >= 3 and "dashboard.export" in actions


def test_a_ticket_prints_on_one_page_with_its_history(
    ctx: HotlineContext, staff: Staff, app_client: TestClient
) -> None:
    from dispatch import schemas
    from dispatch.states import Action
    from tests.helpers import act, dispatched

    number = dispatched(ctx, staff, "停水", "sw")
    act(ctx, number, staff.water, Action.SIGN, schemas.NoteBody(note="已安排人员"))
    liaison, _ = logged_in(ctx, "sw1")
    page = liaison.get(f"/tickets/{number}/print")
    assert page.status_code == 200
    fields = page.text.split('id="ticket-fields"', 1)[1]
    assert number in page.text and "停水的诉求" in fields and "139****1111" in fields  # masked for liaisons
    history = page.text.split('id="print-history"', 1)[1]
    assert "派单" in history and "签收" in history and "已安排人员" in history
    assert "@page" in page.text and "window.print()" in page.text
    other, _ = logged_in(ctx, "cg1")
    assert other.get(f"/tickets/{number}/print").status_code == 403
    with ctx.unit_of_work() as session:
        printed = session.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.print")).all()
    assert [(a.username, a.ticket_number) for a in printed] == [("sw1", number)]


def test_a_liaison_reveals_the_callers_number_with_a_reason_that_is_audited(
    ctx: HotlineContext, staff: Staff, app_client: TestClient
) -> None:
    from tests.helpers import dispatched

    number = dispatched(ctx, staff, "停水", "sw")
    liaison, headers = logged_in(ctx, "sw1")
    assert "139****1111" in liaison.get(f"/tickets/{number}").text
    assert 'id="reveal-phone"' in liaison.get(f"/tickets/{number}").text
    no_reason = liaison.post(f"/api/tickets/{number}/reveal-phone", json={"reason": ""}, headers=headers)
    assert no_reason.status_code == 422
    reason = "联系市民核实停水范围"
    shown = liaison.post(f"/api/tickets/{number}/reveal-phone", json={"reason": reason}, headers=headers)
    assert shown.status_code == 200 and shown.json()["caller_phone"] == "13900001111"
    other, other_headers = logged_in(ctx, "cg1")
    refused = other.post(
        f"/api/tickets/{number}/reveal-phone", json={"reason": reason}, headers=other_headers
    )
    assert refused.status_code == 403
    with ctx.unit_of_work() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.phone.reveal")).all()
    assert [(e.username, e.ticket_number, e.detail["reason"]) for e in entries] == [("sw1", number, reason)]


def test_a_department_with_no_closed_ticket_and_an_empty_month_show_without_a_crash(
    ctx: HotlineContext, staff: Staff, app_client: TestClient
) -> None:
    """The 三率 league, the dashboard and the monthly figures, when a department holds tickets but has
    closed none, and for a month without any ticket: pages answer, figures say there is nothing yet."""
    from tests.helpers import dispatched

    dispatched(ctx, staff, "停水", "sw")  # open at the water company, nothing closed anywhere
    supervisor, _ = logged_in(ctx, "sup")
    paths = ("/dashboard", "/evaluation", "/evaluation?month=2026-11", "/evaluation?month=2025-01", "/wall")
    for path in paths:
        page = supervisor.get(path, headers={"Accept": "text/html"})
        assert page.status_code == 200, (path, page.text[:300])
        assert "Traceback" not in page.text
    for month in ("2026-11", "2025-01"):  # this month: sw has an open ticket only; then an empty month
        league = supervisor.get("/api/evaluation", params={"month": month})
        assert league.status_code == 200, league.text
        rows = [row for group in league.json()["groups"] for row in group["rows"]]
        assert rows and all(row["score"] is None for row in rows)  # listed, not scored, no crash
