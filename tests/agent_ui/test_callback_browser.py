"""Callbacks in a real browser (Debian's Chromium through Playwright) against the app on loopback: the
seat console's list of callbacks that need a person and of missed calls (call, enter the result), and
the citizen's web survey page at phone size. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from callcenter.models import CallDirection, CallOutcome, CallRecord
from callcenter.service import CallRecords
from core.accounts.actor import Actor
from core.accounts.models import Role
from core.departments import Department
from dispatch import schemas
from dispatch.callbacks.links import create_link
from dispatch.callbacks.models import Callback
from dispatch.callbacks.service import callbacks_of
from dispatch.models import Ticket
from dispatch.states import Action
from tests.agent_ui.conftest import LiveServer, login, shot
from tests.conftest import MONDAY_9, subcategory_id

PHONE = {"width": 390, "height": 844}
OPERATOR = Actor(None, "话务员", Role.OPERATOR)


def replied(live: LiveServer, sub: str, department: str, phone: str) -> str:
    with live.ctx.unit_of_work() as session:
        tickets = live.ctx.tickets(session)
        number = tickets.register(
            OPERATOR, schemas.TicketCreate(content=f"{sub}，请尽快处理", caller_phone=phone)
        ).number
        body = schemas.DispatchBody(department=department, subcategory_id=subcategory_id(session, sub))
        tickets.act(number, OPERATOR, Action.DISPATCH, body)
        dept = session.scalar(select(Department.id).where(Department.code == department))
        liaison = Actor(None, "联络员", Role.LIAISON, dept)
        tickets.act(number, liaison, Action.SIGN, schemas.NoteBody())
        tickets.act(
            number, liaison, Action.REPLY, schemas.ReplyBody(result="已派人到现场处置完毕，隐患已排除。")
        )
        callbacks_of(live.ctx, session).enqueue_replied()
    return number


def ticket(live: LiveServer, number: str) -> Ticket:
    with live.ctx.unit_of_work() as session:
        row = session.scalar(select(Ticket).where(Ticket.number == number))
        assert row is not None
        return row


def test_operator_calls_back_from_the_console_and_records_results(new_page: Any, live: LiveServer) -> None:
    number = replied(live, "燃气泄漏", "rqgs", "13900005555")
    with live.ctx.unit_of_work() as session:
        records = CallRecords(session, live.ctx.clock)
        for uid, outcome, minutes in (
            ("web-old", CallOutcome.ABANDONED, 50),
            ("web-new", CallOutcome.CALLBACK_REQUESTED, 5),
        ):
            records.open(uid, f"1390000{minutes:04d}", "12345", "w1", CallDirection.INBOUND)
            records.close(uid, outcome, "ended", "citizen")
            records.get(uid).offered_at = live.ctx.clock.now() - timedelta(minutes=minutes)

    page = new_page()
    login(page, "op02")
    page.wait_for_selector(f"#manual-callbacks tr:has-text('{number}')")
    missed = page.inner_text("#missed-calls")
    assert missed.index("13900000050") < missed.index("13900000005")  # oldest first
    shot(page, "console-callbacks")

    row = page.locator(f"#manual-callbacks tr:has-text('{number}')")
    row.locator("button:has-text('拨打')").click()
    page.wait_for_selector("#callback-result:not([hidden])")
    assert "请用坐席电话拨打 13900005555" in page.inner_text("#toasts")  # the call centre is off here
    page.click("#cb-save")  # no result chosen: refused, nothing lost
    error = page.wait_for_selector("#callback-result .form-error:not([hidden])")
    assert "回访结果" in error.inner_text()
    page.select_option("#cb-result", "satisfied")
    page.select_option("#cb-solved", "true")
    page.fill("#cb-note", "市民表示燃气已恢复")
    shot(page, "console-callback-result")
    page.click("#cb-save")
    page.wait_for_selector(f"#manual-callbacks tr:has-text('{number}')", state="detached")
    saved = ticket(live, number)
    assert (saved.state, saved.callback_result) == ("archived", "satisfied")

    page.locator("#missed-calls tr:has-text('13900000050') button:has-text('记录')").click()
    page.wait_for_selector("#missed-result:not([hidden])")
    page.select_option("#missed-outcome", "reached")
    page.click("#missed-save")
    page.wait_for_selector("#missed-calls tr:has-text('13900000050')", state="detached")
    with live.ctx.unit_of_work() as session:
        record = session.scalar(select(CallRecord).where(CallRecord.uid == "web-old"))
        assert record is not None and record.callback_outcome == "reached" and record.called_back_by_id
    shot(page, "console-missed-calls")

    supervisor = new_page()
    login(supervisor, "banzhang")
    figures = supervisor.inner_text("#callback-figures")
    assert "燃气" in figures and "100.0%" in figures  # the gas company: 1 due, 1 called back, satisfied
    supervisor.locator("#callback-figures").scroll_into_view_if_needed()
    shot(supervisor, "dashboard-callbacks")


def test_web_survey_on_a_phone_screen(browser: Any, live: LiveServer) -> None:
    number = replied(live, "停水", "sw", "13900006666")
    with live.ctx.unit_of_work() as session:
        callback = session.scalar(select(Callback).join(Ticket).where(Ticket.number == number))
        assert callback is not None
        token = create_link(session, live.ctx.clock, callback.id, valid_hours=72)
        expired = create_link(session, live.ctx.clock, callback.id, valid_hours=1)
    context = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN", base_url=live.url
    )
    try:
        page = context.new_page()
        page.goto(f"/s/{token}")
        assert page.inner_text("#survey-ticket") == number
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px phone"
        shot(page, "survey-phone")
        page.click("button[type=submit]")  # nothing chosen
        assert "请选择" in page.inner_text("#survey-error")
        page.check("input[name=result][value=dissatisfied]")
        page.check("input[name=solved][value=no]")
        page.fill("textarea[name=note]", "水压还是很低")
        page.click("button[type=submit]")
        assert "感谢您的评价" in page.inner_text("#survey-done")
        shot(page, "survey-phone-done")
        reopened = ticket(live, number)
        assert (reopened.state, reopened.reopen_count) == ("in_progress", 1)
        again = page.goto(f"/s/{token}")
        assert again is not None and again.status == 410
        assert "已使用" in page.inner_text("#survey-refused")
        live.ctx.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
        late = page.goto(f"/s/{expired}")
        assert late is not None and late.status == 410
        assert "过期" in page.inner_text("#survey-refused")
        shot(page, "survey-phone-expired")
    finally:
        live.ctx.clock.set(MONDAY_9)  # type: ignore[attr-defined]
        context.close()
