"""The seat console in Chromium: what an operator sees during a call (the queue's longest wait
counting up, the screen pop's earlier tickets, one confidence for the knowledge base's answers, the
caller's number kept while the call goes on) and the callback forms without a chosen row."""

from __future__ import annotations

import re
from typing import Any

from tests.agent_ui.conftest import LiveServer, login, shot
from tests.conftest import subcategory_id


def subcategory(live: LiveServer, name: str) -> str:
    with live.ctx.unit_of_work() as session:
        return str(subcategory_id(session, name))


def _operator(new_page: Any) -> Any:
    page = new_page()
    login(page, "op01")
    page.wait_for_function("document.getElementById('live-dot').classList.contains('on')")
    return page


def test_the_longest_wait_counts_up_between_queue_events(new_page: Any, live: LiveServer) -> None:
    page = _operator(new_page)
    live.ctx.events.publish("queue", {"length": 2, "longest_wait_seconds": 18.2})
    page.wait_for_function("Number(document.getElementById('queue-wait').innerText) >= 18")
    page.wait_for_function("Number(document.getElementById('queue-wait').innerText) >= 20", timeout=5000)
    live.ctx.events.publish("queue", {"length": 0, "longest_wait_seconds": 0})
    page.wait_for_function("document.getElementById('queue-wait').innerText === '0'")


def test_the_screen_pop_shows_times_and_states_of_earlier_tickets(new_page: Any, live: LiveServer) -> None:
    page = _operator(new_page)
    page.select_option("#seat-choice", "1002")
    page.click("#sign-in")
    page.wait_for_selector("#seat-state.ready")  # signing in reloads the page: wait for its new stream
    page.wait_for_function("document.getElementById('live-dot').classList.contains('on')")
    live.ctx.events.publish(
        "call.offered",
        {
            "extension": "1002",
            "call_uid": "c-pop-1",
            "caller": "13800001234",
            "caller_masked": "138****1234",
            "earlier_tickets": [
                {
                    "number": "20261110-0007",
                    "state": "archived",
                    "state_label": "已归档",
                    "created_at": "2026-11-10T10:05:00+08:00",
                    "content": "路灯不亮",
                }
            ],
        },
    )
    page.wait_for_selector("#call-card.popup")
    earlier = page.inner_text("#earlier")
    assert "11-10 10:05" in earlier and "已归档" in earlier
    assert not re.search(r"\dT\d", earlier)  # no raw ISO time

    # A ticket dispatched during the call keeps the caller's number for the next matter of the call.
    page.fill("#content", "小区门口的路灯坏了一排，晚上很黑")
    page.select_option("#subcategory", subcategory(live, "路灯损坏"))
    page.select_option("#department", "cgj")
    page.click("#btn-dispatch")
    page.wait_for_selector("#my-tickets a")
    assert page.input_value("#content") == ""
    assert page.input_value("#caller_phone") == "13800001234"
    live.ctx.events.publish("call.ended", {"extension": "1002", "call_uid": "c-pop-1", "outcome": "answered"})
    page.wait_for_selector("#call-card:not(.popup)")
    page.click("#btn-clear")
    assert page.input_value("#caller_phone") == ""  # the call is over: the next form starts empty
    page.click("[data-seat-state='logged_out']")


def test_only_the_entry_the_triage_chose_is_marked_to_be_read_out(new_page: Any, live: LiveServer) -> None:
    page = _operator(new_page)
    text = "请问社保缴费记录怎么打印？单位要我的社保证明"
    page.fill("#content", text)
    page.wait_for_selector(".suggestion [data-use]")
    triage = page.request.get("/api/triage", params={"text": text}).json()
    expected = [triage["kb_entry_id"]] if triage["on_the_spot"] and triage["answer_confident"] else []
    marked = page.eval_on_selector_all(
        ".suggestion", "els => els.filter(e => e.innerText.includes('可直接宣读')).map(e => e.dataset.id)"
    )
    assert marked == expected
    assert len(page.query_selector_all(".suggestion")) == len(triage["suggestions"])
    if expected:  # the banner names the same entry
        assert expected[0] in page.inner_text("#triage")
    shot(page, "console-one-confidence")


def test_saving_a_callback_result_without_a_chosen_row_says_what_to_do(
    new_page: Any, live: LiveServer
) -> None:
    page = _operator(new_page)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    assert not page.is_visible("#callback-result") and not page.is_visible("#missed-result")
    for form in ("callback-result", "missed-result"):
        page.evaluate(f"document.getElementById('{form}').hidden = false")
        page.evaluate(f"document.getElementById('{form}').requestSubmit()")
        message = page.wait_for_selector(f"#{form} .form-error:not([hidden])")
        assert "请先" in message.inner_text()
    assert errors == []


def test_form_fields_say_what_is_wrong_in_chinese(new_page: Any, live: LiveServer) -> None:
    """Not the browser's English bubble: the field's name and its limit, on staff and public pages."""
    page = new_page()
    page.goto("/login")
    page.click("button[type=submit]")
    assert page.eval_on_selector("input[name=username]", "e => e.validationMessage") == "请填写用户名"

    page.goto("/xinxiang")
    page.fill("#content", "路灯")
    page.fill("#phone", "13812345678")
    page.click("button[type=submit]")
    message = page.eval_on_selector("#content", "e => e.validationMessage")
    assert message == "反映内容至少 5 个字（现在 2 个）", message
    page.fill("#content", "小区路灯坏了一排")
    assert page.eval_on_selector("#content", "e => e.validationMessage") == ""


# A card that neither scrolls nor shows all it holds (its content runs under the next card).
CLIPPED = "e => getComputedStyle(e).overflowY === 'visible' && e.scrollHeight > e.clientHeight + 1"


def test_every_part_of_the_console_can_be_seen_at_1366x768(new_page: Any, live: LiveServer) -> None:
    page = _operator(new_page)
    cards = page.query_selector_all(".pane-right > *")
    assert len(cards) >= 4
    for card in cards:
        card.scroll_into_view_if_needed()
        box = card.bounding_box()
        shown = page.evaluate(
            "([top, height]) => top >= 0 && top + height <= window.innerHeight + 1", [box["y"], box["height"]]
        )
        assert shown, (card.get_attribute("id"), box)
        inner = card.evaluate("e => e.scrollHeight - e.clientHeight")
        clipped = card.evaluate(
            "e => getComputedStyle(e).overflowY === 'visible' && e.scrollHeight > e.clientHeight + 1"
        )
        assert not clipped, (card.get_attribute("id"), inner)
    page.query_selector("#my-tickets-card h2").scroll_into_view_if_needed()
    assert page.is_visible("#my-tickets-card h2")
    shot(page, "console-scrolled")


def test_a_repeated_matter_is_offered_and_f6_links_the_call_as_a_further_caller(
    new_page: Any, live: LiveServer
) -> None:
    from core.accounts.actor import Actor
    from core.accounts.models import Role
    from dispatch import schemas

    with live.ctx.unit_of_work() as session:
        body = schemas.TicketCreate(
            content="龙潭水库大坝边上的护栏被大车撞坏了一大段", caller_phone="13911112222"
        )
        number = live.ctx.tickets(session).register(Actor(None, "测试", Role.OPERATOR), body).number
    page = _operator(new_page)
    page.fill("#caller_phone", "13788889999")
    page.fill("#content", "龙潭水库大坝那里护栏撞坏了一大段，很危险")
    page.wait_for_selector(f".duplicate[data-number='{number}']")
    assert f"可能与 {number} 为同一诉求，已有 1 位来电人" in page.inner_text("#duplicates")
    shot(page, "console-duplicate")
    page.keyboard.press("F6")
    page.wait_for_selector("#my-tickets a")
    assert "附加来电" in page.inner_text("#my-tickets")
    assert page.input_value("#content") == "" and page.is_hidden("#duplicates")
    shown = page.request.get(f"/api/tickets/{number}").json()
    assert [(c["phone"], c["content"]) for c in shown["extra_callers"]] == [
        ("13788889999", "龙潭水库大坝那里护栏撞坏了一大段，很危险")
    ]
    page.goto(f"/tickets/{number}")
    assert "2 位来电人" in page.inner_text("#callers-badge")
    assert "13788889999" in page.inner_text("#callers-card")
