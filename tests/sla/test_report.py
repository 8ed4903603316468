"""The monthly analysis report: the PDF renders Chinese text and its charts (checked with pdftotext and
pdfimages), the XLSX opens with the right figures, an empty month and a missing font give clear
messages, topics group like requests, and the command, the API and the page make and serve it."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from agent_ui.app import create_app
from core.clock import ManualClock
from dispatch.models import Ticket
from hotline.context import HotlineContext
from hotline.demo_history import load_history
from sla.report.charts import FontMissing
from sla.report.service import make_report, reports
from sla.report.topics import Doc, Topic, month_topics, one_problem_a_month, rising
from sla.settings import ReportSettings
from tests.conftest import PASSWORD, Staff

NOV = date(2026, 11, 1)
NEEDS_POPPLER = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


@pytest.fixture
def history(ctx: HotlineContext, clock: ManualClock, tmp_path: Path) -> HotlineContext:
    """Five weeks of the demo county's past tickets up to 2026-12-03; reports go to tmp_path."""
    clock.set(datetime(2026, 12, 3, 9, 0))
    ctx.settings.sla.report = ReportSettings(folder=tmp_path / "reports")
    with ctx.unit_of_work() as session:
        load_history(ctx, session, 40, clock.now(), per_day=4)
    return ctx


def _month_count(ctx: HotlineContext) -> int:
    with ctx.unit_of_work() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Ticket)
                .where(Ticket.created_at >= datetime(2026, 11, 1), Ticket.created_at < datetime(2026, 12, 1))
            )
            or 0
        )


def _text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


@NEEDS_POPPLER
def test_the_pdf_and_the_xlsx_hold_the_months_figures(history: HotlineContext) -> None:
    with history.unit_of_work() as session:
        made = {r.kind: r.path for r in make_report(session, history, NOV)}
    total = _month_count(history)
    assert total > 50
    text = _text(made["pdf"]).replace("\n", "")
    for words in ("2026年11月月度分析报告", f"共登记工单{total}件", "三率考核", "热点话题", "每月一题建议"):
        assert words in text, words
    assert "演示县城市管理综合执法局" in text  # the league names the units
    images = subprocess.run(["pdfimages", "-list", str(made["pdf"])], capture_output=True, text=True).stdout
    assert len(images.strip().splitlines()) - 2 >= 4  # the daily, category, department and trend charts
    book = load_workbook(io.BytesIO(made["xlsx"].read_bytes()))
    overview = dict(book["总体情况"].iter_rows(min_row=2, values_only=True))
    assert overview["登记工单"] == total
    assert sum(n for _, n in book["承办单位"].iter_rows(min_row=2, values_only=True)) == total
    assert sum(n for _, n in book["属地"].iter_rows(min_row=2, values_only=True)) == total
    league = list(book["三率考核"].iter_rows(values_only=True))
    assert league[0][:3] == ("组别", "名次", "单位") and len(league) > 5
    assert book["热点话题"].max_row > 3
    assert [(r.month, r.kind) for r in reports(history)] == [("2026-11", "xlsx"), ("2026-11", "pdf")]


@NEEDS_POPPLER
def test_a_month_without_tickets_is_a_short_report(ctx: HotlineContext, tmp_path: Path) -> None:
    ctx.settings.sla.report = ReportSettings(folder=tmp_path)
    with ctx.unit_of_work() as session:
        made = {r.kind: r.path for r in make_report(session, ctx, date(2025, 3, 1))}
    text = _text(made["pdf"]).replace("\n", "")
    assert "2025年03月本热线未登记工单" in text and "本月无热点预警" in text
    book = load_workbook(io.BytesIO(made["xlsx"].read_bytes()))
    assert dict(book["总体情况"].iter_rows(min_row=2, values_only=True))["登记工单"] == 0


def test_a_missing_font_is_a_clear_error_and_writes_nothing(ctx: HotlineContext, tmp_path: Path) -> None:
    ctx.settings.sla.report = ReportSettings(folder=tmp_path / "out", font=tmp_path / "none.ttc")
    with ctx.unit_of_work() as session, pytest.raises(FontMissing) as missing:
        make_report(session, ctx, NOV)
    assert "缺少中文字体" in missing.value.zh and "fonts-wqy-microhei" in missing.value.zh
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_topics_group_like_requests() -> None:
    texts = {
        "停水": "{}小区停水了，水龙头一滴水都没有",
        "噪音": "{}楼下工地晚上施工，噪音吵得睡不着",
        "路灯": "{}路边的路灯坏了，晚上黑漆漆的",
    }
    docs = [
        Doc(f"n{k}{i}", text.format(place), dept)
        for i, place in enumerate(
            ["幸福路", "河西路", "东风路", "人民路", "文化路", "育才路", "滨河路", "东山路"]
        )
        for k, (text, dept) in enumerate(
            [(texts["停水"], "供水公司"), (texts["噪音"], "生态环境分局"), (texts["路灯"], "城管局")]
        )
    ]
    topics = month_topics(docs, docs[:6], top=0)
    assert sorted(t.size for t in topics) == [8, 8, 8]
    for topic in topics:
        assert len({d for d, _ in topic.departments}) == 1  # each topic is one kind of request
    assert any("停水" in t.label for t in topics) and any("路灯" in t.label for t in topics)
    assert month_topics(docs[:2], [], top=0) == []  # too few to group
    growing = Topic("停水", 12, "", ["a"], previous=4)
    steady = Topic("路灯", 12, "", ["b"], previous=11, departments=[("城管局", 6), ("供电公司", 6)])
    assert rising([growing, steady]) == [growing]
    assert one_problem_a_month([growing, steady]) == [steady]  # recurring and across two departments


def test_command_api_and_page(history: HotlineContext, staff: Staff, tmp_path: Path) -> None:
    client = TestClient(create_app(history))
    sup = ("sup", PASSWORD)
    assert client.post("/api/reports", json={"month": "2026-11"}, auth=("sw1", PASSWORD)).status_code == 403
    bad = client.post("/api/reports", json={"month": "2027-01"}, auth=sup)
    assert bad.status_code == 422 and "尚未开始" in bad.json()["detail_zh"]
    made = client.post("/api/reports", json={"month": "2026-11"}, auth=sup)
    assert made.status_code == 201 and {r["kind"] for r in made.json()} == {"pdf", "xlsx"}
    listed = client.get("/api/reports", auth=sup).json()
    assert [r["name"] for r in listed] == ["月度分析报告-2026-11.xlsx", "月度分析报告-2026-11.pdf"]
    assert client.get("/reports/..%2Fhotline.db", auth=sup).status_code == 404


def test_the_scheduler_makes_last_months_report_once(history: HotlineContext) -> None:
    from sla.report.service import make_last_month_if_missing

    assert [r.kind for r in make_last_month_if_missing(history)] == ["pdf", "xlsx"]
    assert make_last_month_if_missing(history) == []
    history.clock.set(history.clock.now() + timedelta(days=30))  # type: ignore[attr-defined]
    assert {r.month for r in make_last_month_if_missing(history)} == {"2026-12"}
