"""The monthly report as a PDF (ReportLab, Chinese font from Debian, matplotlib charts) and as an XLSX
workbook (openpyxl) with the same figures, one sheet per table."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core.spreadsheet import Sheet, workbook
from dispatch.county_map import CountyMap
from sla.evaluation import FIGURES, League
from sla.hotspots import KIND_LABELS, STATE_LABELS
from sla.report.charts import all_charts, use_font
from sla.report.figures import MonthlyFigures
from sla.report.topics import Topic
from sla.settings import FIGURE_LABELS

FONT = "HotlineCJK"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=10, leading=15, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=18, leading=26, alignment=1, spaceAfter=6),
        "sub": ParagraphStyle("sub", parent=base, fontSize=10, alignment=1, textColor=colors.grey),
        "h1": ParagraphStyle("h1", parent=base, fontSize=13, leading=20, spaceBefore=10, spaceAfter=4),
        "body": base,
        "cell": ParagraphStyle("cell", parent=base, fontSize=8, leading=11),
    }


def _table(rows: list[list[Any]], widths: list[float] | None = None) -> Table:
    cell = _styles()["cell"]
    data = [[Paragraph(str(v), cell) for v in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#0b4f8a")),
                ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#c5ccd3")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    # The header row's paragraphs are white on blue.
    for p in data[0]:
        p.style = ParagraphStyle("head", parent=cell, textColor=colors.white)
    return table


def _image(png: bytes, width: float = 170 * mm) -> Image:
    image = Image(io.BytesIO(png))
    image.drawHeight = image.drawHeight * width / image.drawWidth
    image.drawWidth = width
    return image


def league_rows(leagues: list[League]) -> list[list[Any]]:
    rows = []
    for league in leagues:
        for s in league.rows:
            if s.score is None:
                continue
            change = "" if s.rank_change is None else f"{s.rank_change:+d}"
            rates = [pct(s.rate(f)) for f in FIGURES]
            rows.append(
                [
                    league.group,
                    s.rank or "—",
                    s.name,
                    s.score,
                    s.tier or "样本不足",
                    *rates,
                    s.tickets,
                    change,
                ]
            )
    return rows


LEAGUE_HEAD = ["组别", "名次", "单位", "得分", "等次", *FIGURE_LABELS.values(), "工单", "名次变化"]


def topic_rows(topics: list[Topic]) -> list[list[Any]]:
    return [
        [
            i,
            t.label,
            t.size,
            t.previous,
            pct(t.growth - 1) if t.growth else "新增",
            t.sample[:60],
            t.numbers[0],
        ]
        for i, t in enumerate(topics, start=1)
    ]


TOPIC_HEAD = ["序号", "话题（典型词）", "本月件数", "上月件数", "环比", "典型诉求", "示例工单"]


def _summary(f: MonthlyFigures) -> str:
    if not f.total:
        return f"{f.label}本热线未登记工单。"
    change = (
        "" if f.change is None else f"，环比{'增长' if f.change >= 0 else '下降'}{abs(f.change) * 100:.1f}%"
    )
    top = "、".join(f"{name}{n}件" for name, n in f.by_category[:3])
    channels = "、".join(f"{name}{n}件" for name, n in f.by_channel)
    return (
        f"{f.label}共登记工单{f.total}件{change}；其中直接答复办结{f.on_the_spot}件。"
        f"按渠道：{channels}。诉求量居前的类别：{top}。"
    )


def pdf(f: MonthlyFigures, font: Path, county: CountyMap | None = None) -> bytes:
    """The report as a PDF document."""
    use_font(font)
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(font), subfontIndex=0))
    s = _styles()
    charts = all_charts(f, font, county) if f.total else {}
    story: list[Any] = [
        Paragraph(f"{f.county}12345政务服务便民热线", s["title"]),
        Paragraph(f"{f.label}月度分析报告", s["title"]),
        Paragraph(f"生成时间 {f.generated_at:%Y-%m-%d %H:%M}", s["sub"]),
        Spacer(1, 8 * mm),
        Paragraph("一、总体情况", s["h1"]),
        Paragraph(_summary(f), s["body"]),
    ]
    if charts:
        story += [Spacer(1, 3 * mm), _image(charts["daily"])]
    story += [Paragraph("二、诉求分类与承办", s["h1"])]
    if charts:
        story += [_image(charts["category"], 150 * mm), _image(charts["department"], 150 * mm)]
    story += [_table([["属地（按事发地）", "件数"], *[[n, c] for n, c in f.by_town]], [90 * mm, 30 * mm])]
    if "map" in charts:
        story += [Spacer(1, 3 * mm), _image(charts["map"], 120 * mm)]
    story += [PageBreak(), Paragraph("三、三率考核", s["h1"])]
    rows = league_rows(f.leagues)
    story += [_table([LEAGUE_HEAD, *rows]) if rows else Paragraph("本月无考核数据。", s["body"])]
    town_rows = league_rows(f.town_leagues)
    if town_rows:
        story += [
            Spacer(1, 4 * mm),
            Paragraph("属地三率（按事发地）", s["body"]),
            _table([LEAGUE_HEAD, *town_rows]),
        ]
    story += [Paragraph("四、办理质效趋势", s["h1"])]
    if charts:
        story += [_image(charts["trend"])]
    story += [Paragraph("五、热点话题", s["h1"])]
    story += _topics(f.topics, "本月工单太少，未形成话题。", s)
    story += [Paragraph("上升话题（较上月）", s["body"])]
    story += _topics(f.rising, "本月没有明显上升的话题。", s)
    story += [Paragraph("六、热点预警", s["h1"])]
    alert_rows = [
        [a.created_at.strftime("%m-%d %H:%M"), KIND_LABELS[a.kind], a.title, STATE_LABELS[a.state]]
        for a in f.alerts
    ]
    story += [
        _table([["时间", "类型", "预警", "状态"], *alert_rows], [25 * mm, 22 * mm, 105 * mm, 18 * mm])
        if alert_rows
        else Paragraph("本月无热点预警。", s["body"])
    ]
    story += [Paragraph("七、每月一题建议", s["h1"])]
    if f.proposals:
        for t in f.proposals:
            depts = "、".join(d for d, _ in t.departments[:4])
            story.append(
                Paragraph(
                    f"「{t.label}」：本月{t.size}件，上月{t.previous}件，涉及{depts}等单位。典型诉求：{t.sample.rstrip('。')}"
                    "。建议列为每月一题，由牵头单位会同相关部门从源头研究解决。",
                    s["body"],
                )
            )
    else:
        story.append(Paragraph("本月没有跨部门、反复出现的突出问题。", s["body"]))
    out = io.BytesIO()
    SimpleDocTemplate(
        out, pagesize=A4, title=f"{f.label}月度分析报告", leftMargin=18 * mm, rightMargin=18 * mm
    ).build(story)
    return out.getvalue()


def _topics(topics: list[Topic], empty: str, s: dict[str, ParagraphStyle]) -> list[Any]:
    if not topics:
        return [Paragraph(empty, s["body"])]
    widths = [10 * mm, 32 * mm, 15 * mm, 15 * mm, 14 * mm, 62 * mm, 26 * mm]
    return [_table([TOPIC_HEAD, *topic_rows(topics)], widths)]


def xlsx(f: MonthlyFigures) -> bytes:
    """The same figures as a workbook, one sheet per table."""
    overview = [
        ["月份", f"{f.month:%Y-%m}"],
        ["登记工单", f.total],
        ["上月登记", f.previous_total],
        ["环比", pct(f.change)],
        ["直接答复办结", f.on_the_spot],
    ]
    trend = [
        [f"{p.month:%Y-%m}", p.registered, pct(p.on_time_rate), pct(p.satisfaction_rate)] for p in f.trend
    ]
    alerts = [[a.created_at, KIND_LABELS[a.kind], a.title, a.count, STATE_LABELS[a.state]] for a in f.alerts]
    proposals = [
        [t.label, t.size, t.previous, "、".join(d for d, _ in t.departments), t.sample] for t in f.proposals
    ]
    sheets = [
        Sheet("总体情况", ["项目", "数值"], overview),
        Sheet("渠道", ["渠道", "件数"], f.by_channel),
        Sheet("分类", ["类别", "件数"], f.by_category),
        Sheet("承办单位", ["单位", "件数"], f.by_department),
        Sheet("属地", ["街乡镇", "件数"], f.by_town),
        Sheet("三率考核", LEAGUE_HEAD, league_rows(f.leagues)),
        Sheet("属地三率", LEAGUE_HEAD, league_rows(f.town_leagues)),
        Sheet("近12个月", ["月份", "登记工单", "按时办结率", "满意率"], trend),
        Sheet("热点话题", TOPIC_HEAD, topic_rows(f.topics)),
        Sheet("上升话题", TOPIC_HEAD, topic_rows(f.rising)),
        Sheet("每月一题建议", ["话题", "本月件数", "上月件数", "涉及单位", "典型诉求"], proposals),
        Sheet("热点预警", ["时间", "类型", "预警", "件数", "状态"], alerts),
    ]
    return workbook(sheets)
