"""The wall display (大屏) in Chromium at 1920×1080: everything on one screen, the queue and hotspot
alerts following the live events, reloading by itself, for supervisors only."""

from __future__ import annotations

from typing import Any

from tests.agent_ui.conftest import LiveServer, login, shot


def test_the_wall_fits_a_hall_screen_and_follows_the_queue(browser: Any, live: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", base_url=live.url)
    page = context.new_page()
    login(page, "banzhang")
    response = page.goto("/wall")
    assert response.status == 200
    for panel in ("#wall-queue", "#wall-answer-rate", "#wall-registered", "#wall-topics", "#wall-alerts"):
        assert page.is_visible(panel), panel
    size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size[0] <= 1920 and size[1] <= 1080, size  # one screen, no scrolling in a hall
    assert page.get_attribute('meta[http-equiv="refresh"]', "content") == "30"
    assert float(page.evaluate("getComputedStyle(document.getElementById('wall-queue')).fontSize")[:-2]) >= 72
    for _ in range(20):  # until the live stream is connected and the event arrives
        live.ctx.events.publish("queue", {"length": 4, "longest_wait_seconds": 37})
        if page.inner_text("#wall-queue") == "4":
            break
        page.wait_for_timeout(250)
    assert page.inner_text("#wall-queue") == "4"
    assert page.inner_text("#wall-wait") == "37"
    title = "滨河街道东风社区 2小时内 停水 来电 8 次"
    live.ctx.events.publish("sla.hotspot", {"id": 1, "title": title, "kind": "spike", "state": "open"})
    page.wait_for_function(f"document.getElementById('wall-hotspots').innerText.includes('{title}')")
    size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size[0] <= 1920 and size[1] <= 1080, size  # the alert still fits the screen
    shot(page, "wall")
    operator = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=live.url).new_page()
    login(operator, "op01")
    assert operator.goto("/wall").status == 403
    context.close()
