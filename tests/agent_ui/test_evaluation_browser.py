"""The 三率 pages in Chromium: a liaison finds a failed rating of their unit and appeals it, the
supervisor accepts it on the appeals page, the league shows the new score; the league exports as
XLSX with the figures on screen."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from core.accounts.actor import actor_of
from core.accounts.models import User
from dispatch import schemas
from dispatch.models import SubCategory
from dispatch.states import Action
from sla.settings import ReportSettings
from tests.agent_ui.conftest import LiveServer, login, shot


def _tickets(live: LiveServer) -> tuple[str, str]:
    """Two water tickets in the live hotline: one signed at once, one signed the next day."""
    ctx = live.ctx
    with ctx.unit_of_work() as session:
        users = {u.username: actor_of(u) for u in session.scalars(select(User))}
        sub = session.scalar(select(SubCategory.id).where(SubCategory.name == "停水"))
        service = ctx.tickets(session)
        numbers = []
        for text in ("东风路3号停水了", "东风小区停水一天了"):
            body = schemas.TicketCreate(content=text, caller_phone="13900001111", address=text[:4])
            number = service.register(users["op01"], body).number
            service.act(
                number,
                users["op01"],
                Action.DISPATCH,
                schemas.DispatchBody(department="sw", subcategory_id=sub),
            )
            numbers.append(number)
        service.act(numbers[0], users["sw_lly"], Action.SIGN, schemas.NoteBody())
    ctx.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    with ctx.unit_of_work() as session:
        users = {u.username: actor_of(u) for u in session.scalars(select(User))}
        ctx.tickets(session).act(numbers[1], users["sw_lly"], Action.SIGN, schemas.NoteBody())
    return numbers[0], numbers[1]


def test_a_liaison_appeals_and_the_supervisor_accepts(new_page: Any, live: LiveServer) -> None:
    ctx = live.ctx
    ctx.settings.sla.evaluation.min_tickets = 1
    _on_time, late = _tickets(live)
    liaison = new_page()
    login(liaison, "sw_lly")
    liaison.click("nav >> text=三率考核")
    row = liaison.locator("table.league tr[data-key=sw]")
    assert row.locator("td.score").inner_text() == "50.0"  # one of two signed within 2 working hours
    assert liaison.locator("table.league tr[data-key=cgj] a").count() == 0  # no drill-down into others
    row.locator("a", has_text="50.0%").click()
    liaison.wait_for_url("**/evaluation/sw?*figure=response*")
    failed = liaison.locator(f"#facts tr[data-number='{late}']")
    assert "未达标" in failed.inner_text()
    failed.locator("summary").click()
    failed.locator("textarea[name=reason]").fill("当日系统故障，已电话联系市民")
    failed.locator("button[type=submit]").click()
    failed.locator("text=申诉待审核").wait_for()
    shot(liaison, "evaluation-appeal")

    supervisor = new_page()
    login(supervisor, "banzhang")
    supervisor.goto("/appeals")
    pending = supervisor.locator("#appeals tr[data-appeal]")
    assert pending.count() == 1 and late in pending.inner_text()
    reject = pending.locator("form", has_text="驳回")
    reject.locator("button").click()  # a rejection without a reason is refused, in Chinese
    reject.locator(".form-error", has_text="驳回申诉须填写理由").wait_for()
    pending.locator("form", has_text="采纳").locator("button").click()
    supervisor.locator("#appeals", has_text="暂无申诉").wait_for()
    supervisor.goto("/evaluation")
    row = supervisor.locator("table.league tr[data-key=sw]")
    assert row.locator("td.score").inner_text() == "100.0"
    shot(supervisor, "evaluation-league")

    with supervisor.expect_download() as download:
        supervisor.click("#export")
    book = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    water = next(r for r in sheet.iter_rows(values_only=True) if r[2] == "演示县供水有限公司")
    assert water[header.index("综合得分")] == 100.0 and water[header.index("响应率")] == "100.0%"
    assert water[header.index("申诉核减")] == 1


def test_a_wrong_month_is_refused_in_chinese(new_page: Any, live: LiveServer) -> None:
    page = new_page()
    login(page, "banzhang")
    response = page.goto("/evaluation?month=2026-13")
    assert response is not None and response.status == 422
    assert "月份格式应为" in page.content()


def test_a_hotspot_reaches_the_console_and_the_dashboard_live(new_page: Any, live: LiveServer) -> None:
    console, dashboard = new_page(), new_page()
    login(console, "op01")
    console.goto("/console")
    login(dashboard, "banzhang")
    dashboard.goto("/dashboard")
    assert console.locator("#hotspot-banner").is_hidden()
    console.wait_for_function("document.querySelector('#live-dot.on')")
    dashboard.wait_for_function("document.querySelector('#live-dot.on')")
    with live.ctx.unit_of_work() as session:
        operator = actor_of(session.scalars(select(User).where(User.username == "op01")).one())
        body = schemas.TicketCreate(content="滨河公园有人拉横幅聚集", caller_phone="13900002222")
        live.ctx.tickets(session).register(operator, body)
    console.locator("#hotspot-banner .hotspot-title", has_text="敏感诉求").wait_for()
    dashboard.locator("#hotspot-new").wait_for()
    dashboard.reload()
    card = dashboard.locator("#hotspots tr[data-alert]")
    assert "滨河街道滨河新村社区" in card.inner_text()
    shot(console, "hotspot-console")
    close = card.locator("form", has_text="处置")
    close.locator("input[name=note]").fill("社区民警到场劝离")
    close.locator("button").click()
    dashboard.locator("#hotspots", has_text="暂无热点预警").wait_for()


def test_a_supervisor_makes_and_downloads_the_monthly_report(
    new_page: Any, live: LiveServer, tmp_path: Path
) -> None:
    live.ctx.settings.sla.report = ReportSettings(folder=tmp_path)
    page = new_page()
    login(page, "banzhang")
    page.click("nav >> text=月度报告")
    assert "尚未生成报告" in page.locator("#reports").inner_text()
    page.fill("#make-report input[name=month]", "2026-11")
    page.click("#make-report button")
    page.locator("#reports tr[data-kind=pdf]").wait_for()
    with page.expect_download() as download:
        page.click("#reports tr[data-kind=pdf] a")
    assert download.value.path().read_bytes().startswith(b"%PDF")
    shot(page, "monthly-reports")
