"""Small line charts rendered as SVG on the server (no JavaScript library needed, prints well)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

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
