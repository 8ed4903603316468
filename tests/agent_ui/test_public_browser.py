"""The citizens' pages in a real browser (Debian's Chromium through Playwright) on a phone-sized
screen: a letter to the mayor's mailbox shows its ticket number, the status look-up finds it, the
disclosure shows a closed ticket without personal data; a screenshot of each page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from core.accounts.actor import actor_of
from core.accounts.models import User
from dispatch import schemas
from dispatch.models import Ticket
from dispatch.states import Action
from tests.agent_ui.conftest import LiveServer, shot
from tests.conftest import subcategory_id

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone_page(browser: Any, live: LiveServer) -> Iterator[Any]:
    context = browser.new_context(
        viewport=PHONE, locale="zh-CN", base_url=live.url, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def fits_the_screen(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_letter_to_the_mailbox_then_its_status(phone_page: Any, live: LiveServer) -> None:
    page = phone_page
    page.goto("/xinxiang")
    assert "市长信箱" in page.inner_text("h1") and fits_the_screen(page)
    page.fill("#content", "育才路小学门口的斑马线被磨没了，孩子过马路很危险，希望重新划线。")
    page.fill("#phone", "13987654321")
    page.fill("#name", "林女士")
    page.fill("#address", "育才路小学门口")
    shot(page, "public-mailbox")
    page.click("#send")
    number = page.wait_for_selector("#ticket-number").inner_text().strip()
    assert re.fullmatch(r"\d{8}-\d{4}", number)
    shot(page, "public-mailbox-done")
    with live.ctx.unit_of_work() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        assert (ticket.channel, ticket.state, ticket.caller_phone, ticket.private) == (
            "web",
            "registered",
            "13987654321",
            False,
        )

    page.click("a[href='/chaxun']")
    page.fill("#number", number)
    page.fill("#phone_last4", "4321")
    page.click("#look-up")
    assert page.wait_for_selector("#result-state").inner_text() == "已受理，待转办"
    assert "13987654321" not in page.inner_text("body") and fits_the_screen(page)
    shot(page, "public-lookup")

    page.fill("#phone_last4", "0000")
    page.click("#look-up")
    assert "工单号或手机号后四位不正确" in page.wait_for_selector("#form-errors").inner_text()
    assert page.query_selector("#lookup-result") is None


def test_a_bad_letter_says_what_is_wrong_and_keeps_the_text(phone_page: Any, live: LiveServer) -> None:
    page = phone_page
    page.goto("/xinxiang")
    page.fill("#content", "小区垃圾三天没人清运了")
    page.fill("#phone", "1380000")  # too short: the page refuses it, the browser's own check is skipped
    page.eval_on_selector("#letter-form", "f => f.noValidate = true")
    page.click("#send")
    assert "手机号码" in page.wait_for_selector("#form-errors").inner_text()
    assert page.input_value("#content") == "小区垃圾三天没人清运了"
    assert page.input_value("#phone") == "1380000"


def test_the_disclosure_shows_closed_tickets_without_personal_data(phone_page: Any, live: LiveServer) -> None:
    ctx = live.ctx
    with ctx.unit_of_work() as session:
        users = {u.username: actor_of(u) for u in session.scalars(select(User))}
        service = ctx.tickets(session)
        body = schemas.TicketCreate(
            content="我叫赵铁柱，家住河西路18号3栋501室，电话13900009999，楼下餐馆油烟直排。",
            caller_phone="13900009999",
            caller_name="赵铁柱",
            disclosure_consent=True,  # the operator asked; the citizen agreed to the publication
        )
        number = service.register(users["op01"], body).number
        dispatch = schemas.DispatchBody(
            department="sthjj", subcategory_id=subcategory_id(session, "噪音扰民")
        )
        service.act(number, users["op01"], Action.DISPATCH, dispatch)
        service.act(number, users["sthjj_lly"], Action.SIGN, schemas.NoteBody())
        reply = schemas.ReplyBody(result="已责令餐馆安装油烟净化设备，赵铁柱表示认可。")
        service.act(number, users["sthjj_lly"], Action.REPLY, reply)
        service.act(number, users["op01"], Action.RECORD_CALLBACK, schemas.CallbackBody(result="satisfied"))

    page = phone_page
    page.goto("/gongkai")
    item = page.wait_for_selector("#disclosed .pub-item")
    text = item.inner_text()
    assert "油烟直排" in text and "演示县生态环境分局" in text and "按时办结" in text
    for secret in ("赵铁柱", "13900009999", "18号", "501室", number):
        assert secret not in page.inner_text("body")
    assert fits_the_screen(page)
    shot(page, "public-disclosure")
