"""The pages in a real browser (Debian's Chromium through Playwright) against the app on loopback:
the flows of the issue, live updates, and a 1366x768 screenshot of every page."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
from sqlalchemy import select

from core.audit import AuditEntry
from dispatch.models import Ticket
from tests.agent_ui.conftest import LiveServer, login, shot
from tests.conftest import subcategory_id


def sub(live: LiveServer, name: str) -> str:
    with live.ctx.unit_of_work() as session:
        return str(subcategory_id(session, name))


WATER = "河西路18号小区从昨晚开始停水，家里有老人，什么时候能恢复？"


def test_operator_answers_a_query_on_the_spot_from_a_suggestion(new_page: Any, live: LiveServer) -> None:
    page = new_page()
    login(page, "op01")
    assert page.url.endswith("/console")
    page.select_option("#seat-choice", "1001")
    page.click("#sign-in")
    page.wait_for_selector("#seat-state.ready")
    page.fill("#caller_phone", "13912345678")
    page.fill("#content", "请问社保缴费记录怎么打印？单位要我的社保证明")
    page.wait_for_selector(".suggestion [data-use]")
    assert "简单咨询" in page.inner_text("#triage")
    shot(page, "console-suggestion")
    page.keyboard.press("Alt+1")  # the shortcut takes the first suggestion
    assert page.input_value("#kb_entry_id")
    answer = page.input_value("#answer")
    page.keyboard.press("F8")
    page.wait_for_selector("#my-tickets a")
    number = page.inner_text("#my-tickets a")
    with live.ctx.unit_of_work() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        assert (ticket.state, ticket.reply_text, ticket.caller_phone) == ("closed", answer, "13912345678")
        assert ticket.kb_entry_id
    assert page.input_value("#content") == ""  # the form is ready for the next call


def test_bad_input_on_the_console_keeps_what_was_typed(new_page: Any, live: LiveServer) -> None:
    page = new_page()
    login(page, "op02")
    page.fill("#content", "小区门口路灯坏了")
    page.fill("#caller_phone", "abc")
    page.select_option("#subcategory", sub(live, "路灯损坏"))
    page.select_option("#department", "cgj")
    page.click("#btn-dispatch")
    error = page.wait_for_selector("#ticket-form .form-error:not([hidden])")
    assert "来电号码" in error.inner_text()
    assert page.input_value("#content") == "小区门口路灯坏了"
    assert page.input_value("#caller_phone") == "abc"
    shot(page, "console-error")


def test_dispatch_sign_reply_and_the_supervisor_sees_the_on_time_rate(
    new_page: Any, live: LiveServer
) -> None:
    supervisor = new_page()
    login(supervisor, "banzhang")
    before = supervisor.inner_text("#on-time-count")

    liaison = new_page()
    login(liaison, "sw_lly")
    assert liaison.url.endswith("/portal")

    operator = new_page()
    login(operator, "op03")
    operator.fill("#caller_phone", "13900001111")
    operator.fill("#content", WATER)
    operator.fill("#address", "河西路18号")
    operator.wait_for_function("document.querySelector('#department').value === 'sw'")
    operator.wait_for_function("document.querySelector('#deadline').value.includes('工作日')")
    assert "停水" in operator.inner_text("#triage")
    shot(operator, "console-dispatch")
    operator.keyboard.press("F9")
    operator.wait_for_selector("#my-tickets a")
    number = operator.inner_text("#my-tickets a")

    # the liaison's inbox says so without a reload (server-sent events)
    liaison.wait_for_selector("#new-ticket-note:not([hidden])")
    liaison.reload()
    row = liaison.wait_for_selector(f'#inbox tr[data-number="{number}"]')
    assert "139****1111" in row.inner_text()  # masked for liaisons
    shot(liaison, "portal")
    row.query_selector("button:has-text('签收')").click()
    liaison.wait_for_selector(f'#inbox tr[data-number="{number}"]', state="detached")

    liaison.goto(f"/tickets/{number}")
    assert "139****1111" in liaison.inner_text("#ticket-phone")
    liaison.fill("#form-reply textarea[name=result]", "已安排抢修，管道修复，当日恢复供水。")
    liaison.click("#form-reply button[type=submit]")
    liaison.wait_for_selector("#history :text('答复')")
    shot(liaison, "ticket-liaison")

    supervisor.reload()
    after = supervisor.inner_text("#on-time-count")
    assert after != before
    assert supervisor.inner_text("#on-time-rate") == "100.0%"
    shot(supervisor, "dashboard")

    with live.ctx.unit_of_work() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.ticket_number == number).order_by(AuditEntry.id)
        ).all()
    assert {"ticket.register", "ticket.dispatch", "ticket.sign", "ticket.reply", "ticket.view"} <= set(
        actions
    )


def test_a_liaison_cannot_open_another_departments_ticket(new_page: Any, live: LiveServer) -> None:
    operator = new_page()
    login(operator, "op01")
    operator.fill("#content", "夜市摊点占用人行道，晚上很吵")
    operator.select_option("#subcategory", sub(live, "占道经营"))
    operator.select_option("#department", "cgj")
    operator.click("#btn-dispatch")
    operator.wait_for_selector("#my-tickets a")
    number = operator.inner_text("#my-tickets a")

    liaison = new_page()
    login(liaison, "sw_lly")
    response = liaison.goto(f"/tickets/{number}")
    assert response.status == 403
    assert "不属于本部门" in liaison.inner_text("#error-message")
    shot(liaison, "forbidden")
    liaison.goto(f"/search?text={number}")
    assert "共 0 件" in liaison.inner_text("body")
    api = liaison.request.get(f"/api/tickets/{number}")
    assert api.status == 403


def test_a_forged_form_without_the_csrf_token_is_refused(new_page: Any, live: LiveServer) -> None:
    """Another site's form posted with the victim's cookie: no token, no action."""
    page = new_page()
    login(page, "banzhang")
    page.goto("/search")
    forged = (
        "<form id=f method=post action='/api/admin/users' enctype='application/x-www-form-urlencoded'>"
        "<input name=username value=mallory></form>"
    )
    page.set_content(forged)
    page.evaluate(f"document.getElementById('f').action = '{live.url}/logout'")
    with page.expect_navigation():
        page.evaluate("document.getElementById('f').submit()")
    assert "CSRF" in page.inner_text("body") or "安全令牌" in page.inner_text("body")
    page.goto("/dashboard")
    assert page.url.endswith("/dashboard")  # still logged in: the forged logout did nothing
    # the API refuses a cookie-authenticated change without the header too
    response = page.request.post(f"{live.url}/api/tickets", data={"content": "伪造"})
    assert response.status == 403


def test_login_errors_and_lockout(new_page: Any) -> None:
    page = new_page()
    page.goto("/login")
    shot(page, "login")
    for _ in range(5):
        page.fill("input[name=username]", "op02")
        page.fill("input[name=password]", "wrong-password")
        page.click("button[type=submit]")
        page.wait_for_selector(".alert.error")
        assert page.input_value("input[name=username]") == "op02"  # what was typed stays
    assert "已锁定" in page.inner_text(".alert.error")
    page.fill("input[name=password]", "hotline-demo")
    page.click("button[type=submit]")
    page.wait_for_selector(".alert.error")
    assert "已锁定" in page.inner_text(".alert.error")
    shot(page, "login-locked")

    admin = new_page()
    login(admin, "admin")
    row = admin.wait_for_selector('#users tr[data-username="op02"]')
    assert "锁定" in row.inner_text()
    shot(admin, "admin-users")
    row.query_selector("button:has-text('解锁')").click()
    admin.wait_for_function(
        "!document.querySelector('#users tr[data-username=\"op02\"]').innerText.includes('锁定至')"
    )
    login(page, "op02")
    assert page.url.endswith("/console")


def test_live_screen_pop_and_transcript(new_page: Any, live: LiveServer) -> None:
    page = new_page()
    login(page, "op01")
    page.wait_for_function("document.getElementById('live-dot').classList.contains('on')")
    live.ctx.events.publish(
        "call.offered",
        {
            "extension": "1001",
            "call_uid": "c-test-1",
            "caller": "13800005678",
            "caller_masked": "138****5678",
            "earlier_tickets": [
                {
                    "number": "20261110-0007",
                    "state": "archived",
                    "created_at": "2026-11-10T10:00",
                    "content": "路灯",
                }
            ],
        },
    )
    page.wait_for_selector("#call-card.popup")
    assert page.inner_text("#caller") == "13800005678"
    assert "20261110-0007" in page.inner_text("#earlier")
    assert page.input_value("#caller_phone") == "13800005678"
    live.ctx.events.publish("transcript.partial", {"call_uid": "c-test-1", "text": "我家小区停水了"})
    page.wait_for_function("document.getElementById('transcript').innerText.includes('停水')")
    page.wait_for_function("document.getElementById('triage').innerText.includes('停水')")
    # the opening statement (Whisper, as soon as the caller paused) fills 诉求内容; later partials leave it
    opening = "我想问一下公积金怎么提取"
    live.ctx.events.publish("transcript.opening", {"call_uid": "c-test-1", "text": opening})
    page.wait_for_function(f"document.getElementById('content').value === '{opening}'")
    live.ctx.events.publish("transcript.partial", {"call_uid": "c-test-1", "text": "还有"})
    page.wait_for_function("document.getElementById('transcript').innerText.includes('还有')")
    assert page.input_value("#content") == opening
    assert not page.is_disabled("[data-transfer='110']")
    live.ctx.events.publish("queue", {"length": 3, "longest_wait_seconds": 42})
    page.wait_for_function("document.getElementById('queue-length').innerText === '3'")
    shot(page, "console-call")
    live.ctx.events.publish(
        "call.ended", {"extension": "1001", "call_uid": "c-test-1", "outcome": "answered"}
    )
    page.wait_for_selector("#call-card:not(.popup)")


def test_every_page_holds_at_1366x768(new_page: Any, live: LiveServer) -> None:
    """Screenshots of the remaining pages; nothing overflows the width."""
    admin = new_page()
    login(admin, "admin")
    for path, name in [
        ("/admin/seats", "admin-seats"),
        ("/admin/departments", "admin-departments"),
        ("/admin/categories", "admin-categories"),
        ("/admin/routing", "admin-routing"),
        ("/admin/calendar", "admin-calendar"),
        ("/admin/kb", "admin-kb"),
        ("/admin/kb/demo-001", "admin-kb-entry"),
        ("/admin/audit", "admin-audit"),
        ("/search?text=停水", "search"),
    ]:
        response = admin.goto(path)
        assert response.status == 200, path
        width = admin.evaluate("document.documentElement.scrollWidth")
        assert width <= 1366, (path, width)
        shot(admin, name)
    response = httpx.get(f"{live.url}/static/app.css")
    assert response.status_code == 200
