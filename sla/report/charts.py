"""The report's charts as PNG images (matplotlib, no screen), with a Chinese font from Debian's
packages (fonts-wqy-microhei); a missing font is a clear error, not boxes in place of characters."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib import font_manager

from core.errors import Unavailable
from dispatch.county_map import CountyMap
from sla.report.figures import MonthlyFigures

BLUE, ORANGE, GREEN = "#0b4f8a", "#e8710a", "#2e7d32"
DPI = 150


class FontMissing(Unavailable):
    """The Chinese font the report needs is not installed."""


def use_font(path: Path) -> str:
    if not path.is_file():
        raise FontMissing(
            f"Chinese font {path} not found (Debian package fonts-wqy-microhei)",
            f"缺少中文字体 {path}，请安装 fonts-wqy-microhei",
        )
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    plt.rcParams["font.family"] = [name]
    plt.rcParams["axes.unicode_minus"] = False
    return name


def _png(fig: plt.Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()


def daily_volume(f: MonthlyFigures) -> bytes:
    fig, ax = plt.subplots(figsize=(7.5, 2.6))
    days = [d.day.day for d in f.daily]
    ax.plot(days, [d.registered for d in f.daily], color=BLUE, marker="o", markersize=3, label="登记工单")
    ax.plot(days, [d.on_the_spot for d in f.daily], color=ORANGE, marker="o", markersize=3, label="直接答复")
    ax.set_xlabel("日")
    ax.set_ylabel("件")
    ax.set_title(f"{f.label}每日工单量")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def bars(title: str, rows: list[tuple[str, int]], top: int = 12) -> bytes:
    rows = rows[:top][::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * max(len(rows), 3) + 0.8))
    ax.barh([r[0] for r in rows], [r[1] for r in rows], color=BLUE)
    for i, (_, n) in enumerate(rows):
        ax.text(n, i, f" {n}", va="center", fontsize=8)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def rates_trend(f: MonthlyFigures) -> bytes:
    fig, ax = plt.subplots(figsize=(7.5, 2.6))
    labels = [f"{p.month:%y-%m}" for p in f.trend]
    positions = list(range(len(labels)))
    for name, values, colour in (
        ("按时办结率", [p.on_time_rate for p in f.trend], BLUE),
        ("满意率", [p.satisfaction_rate for p in f.trend], GREEN),
    ):
        ax.plot(
            positions, [None if v is None else 100 * v for v in values], color=colour, marker="o", label=name
        )
    ax.set_xticks(positions, labels)
    ax.set_ylim(0, 105)
    ax.set_ylabel("%")
    ax.set_title("近12个月按时办结率与满意率")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    return _png(fig)


def community_map(f: MonthlyFigures, county: CountyMap) -> bytes:
    """The month's tickets per community on the county's outline; red borders: hotspot alerts."""
    from matplotlib.patches import Polygon

    fig, ax = plt.subplots(figsize=(6, 6))
    most = max(f.by_community.values(), default=0) or 1
    alerted = {a.community_code for a in f.alerts if a.community_code}
    for area in county.areas:
        n = f.by_community.get(area.community, 0)
        edge, width = ("#b71c1c", 2.5) if area.community in alerted else ("white", 1.0)
        colour = plt.cm.Reds(0.1 + 0.8 * n / most) if n else "#f5f7fa"
        ax.add_patch(Polygon(area.ring, closed=True, facecolor=colour, edgecolor=edge, linewidth=width))
        x, y = area.centre
        ax.text(x, y, f"{area.name.removesuffix('社区')}\n{n}", ha="center", va="center", fontsize=7)
    ax.autoscale()
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{f.label}各社区（村）工单量")
    return _png(fig)


def all_charts(f: MonthlyFigures, font: Path, county: CountyMap | None = None) -> dict[str, bytes]:
    use_font(font)
    charts = {
        "daily": daily_volume(f),
        "category": bars(f"{f.label}工单分类", f.by_category),
        "department": bars(f"{f.label}承办单位工单量（前12）", f.by_department),
        "trend": rates_trend(f),
    }
    if county is not None:
        charts["map"] = community_map(f, county)
    return charts
