"""Small line charts rendered as SVG on the server (no JavaScript library needed, prints well)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from dispatch.county_map import CountyMap

COLOURS = ("#1565c0", "#2e7d32", "#e65100", "#8e24aa")


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]


def line_chart(
    series: Sequence[Series],
    x_labels: Sequence[str],
    *,
    percent: bool = False,
    width: int = 640,
    height: int = 170,
    title: str = "",
) -> Markup:
    """Lines over the x labels; None values leave a gap. Percent charts run 0-100 %."""
    left, right, top, bottom = 40, 10, 22, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s.values if v is not None]
    top_value = 1.0 if percent else float(math.ceil(max([1.0, *values]) * 1.1 / 4) * 4)
    n = max(len(x_labels), 2)

    def x(i: int) -> float:
        return left + plot_w * i / (n - 1)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / top_value)

    parts = [f'<svg viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" role="img">']
    parts.append(f"<title>{escape(title)}</title>")
    for k in range(5):
        v = top_value * k / 4
        label = f"{v * 100:.0f}%" if percent else f"{v:.0f}"
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e6eaef"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="#616161">{label}</text>'
        )
    step = max(1, len(x_labels) // 6)
    for i in range(0, len(x_labels), step):
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - 6}" font-size="10" text-anchor="middle" fill="#616161">'
            f"{escape(x_labels[i])}</text>"
        )
    for index, s in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        parts.append(_polyline(s.values, x, y, colour))
        parts.append(
            f'<rect x="{left + 8 + index * 120}" y="6" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + 22 + index * 120}" y="15" font-size="11" fill="#333">{escape(s.label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _polyline(values: Sequence[float | None], x: object, y: object, colour: str) -> str:
    out, run = [], []
    for i, v in enumerate(values):
        if v is None:
            if run:
                out.append(run)
            run = []
            continue
        run.append(f"{x(i):.1f},{y(v):.1f}")  # type: ignore[operator]
    if run:
        out.append(run)
    lines = [
        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(r)}"/>'
        for r in out
        if len(r) > 1
    ]
    dots = [
        f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.5" fill="{colour}"/>'
        for r in out
        for p in r
    ]
    return "".join(lines + dots)


def shade(count: int, most: int) -> str:
    """White to deep red by count (the darkest at the busiest community)."""
    if not count or not most:
        return "#f5f7fa"
    t = 0.15 + 0.85 * count / most
    r, g, b = (int(255 - t * (255 - c)) for c in (183, 28, 28))
    return f"#{r:02x}{g:02x}{b:02x}"


def community_map(county: CountyMap, counts: dict[str, int], alerting: set[str], width: int = 420) -> Markup:
    """The county's communities shaded by their ticket counts; communities with an open hotspot alert
    get a red border. Each polygon names its community and count on hover."""
    x0, y0, x1, y1 = county.bounds
    scale = width / (x1 - x0)
    height = round((y1 - y0) * scale)

    def point(lon: float, lat: float) -> str:
        return f"{(lon - x0) * scale:.1f},{(y1 - lat) * scale:.1f}"

    most = max(counts.values(), default=0)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" role="img" class="map">'
    ]
    parts.append(f"<title>{escape(county.name)}</title>")
    for area in county.areas:
        n = counts.get(area.community, 0)
        stroke = (
            'stroke="#b71c1c" stroke-width="3"'
            if area.community in alerting
            else 'stroke="#fff" stroke-width="1"'
        )
        points = " ".join(point(*p) for p in area.ring)
        parts.append(
            f'<polygon points="{points}" fill="{shade(n, most)}" {stroke} data-community="{area.community}" '
            f'data-count="{n}"><title>{escape(area.name)}：{n}件</title></polygon>'
        )
        cx, cy = point(*area.centre).split(",")
        parts.append(
            f'<text x="{cx}" y="{cy}" font-size="10" text-anchor="middle" fill="#263238">'
            f"{escape(area.name.removesuffix('社区'))} {n}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
