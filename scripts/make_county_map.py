"""Draws the demo county's made-up map (dispatch/county_map.geojson) from its gazetteer: one seed point
per community, grouped by town, a Voronoi cell for each, cut to the county's outline. Run once when
the demo gazetteer changes: python scripts/make_county_map.py"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.spatial import Voronoi

from dispatch.gazetteer import load_gazetteer

ROOT = Path(__file__).resolve().parent.parent
# Where each town lies in the county (x east, y north, 0-1000) and how far its communities spread.
TOWNS = {"chengguan": (500, 520, 90), "hexi": (230, 520, 130), "binhe": (720, 560, 110),
         "dongshan": (680, 820, 120), "qingshi": (430, 200, 150)}  # fmt: skip
OUTLINE = [(120, 300), (260, 90), (560, 60), (800, 200), (900, 480), (860, 860), (620, 950),
           (330, 880), (110, 650)]  # fmt: skip
LON, LAT, SCALE = 105.0, 30.0, 0.0005  # a made-up place on the globe, so the file is valid GeoJSON


def _clip(
    polygon: list[tuple[float, float]], edge_a: tuple[float, float], edge_b: tuple[float, float]
) -> list:
    """Sutherland-Hodgman: the part of `polygon` left of the edge a->b (the outline runs anticlockwise)."""

    def inside(p: tuple[float, float]) -> bool:
        return (edge_b[0] - edge_a[0]) * (p[1] - edge_a[1]) - (edge_b[1] - edge_a[1]) * (
            p[0] - edge_a[0]
        ) >= 0

    def cross(p: tuple[float, float], q: tuple[float, float]) -> tuple[float, float]:
        x1, y1, x2, y2 = *edge_a, *edge_b
        x3, y3, x4, y4 = *p, *q
        d = (x1 - x2) * (y3 - y4) - (y1 - y2) * (x3 - x4)
        t = ((x1 - x3) * (y3 - y4) - (y1 - y3) * (x3 - x4)) / d
        return (x1 + t * (x2 - x1), y1 + t * (y2 - y1))

    out = []
    for i, current in enumerate(polygon):
        previous = polygon[i - 1]
        if inside(current):
            if not inside(previous):
                out.append(cross(previous, current))
            out.append(current)
        elif inside(previous):
            out.append(cross(previous, current))
    return out


def main() -> None:
    places = load_gazetteer(ROOT / "dispatch" / "gazetteer.toml")
    seeds, names = [], []
    for town in places.towns:
        cx, cy, spread = TOWNS[town.code]
        n = len(town.communities)
        for i, community in enumerate(town.communities):
            angle = 2 * math.pi * i / n + 0.4
            radius = spread * (0.55 if n > 1 else 0)
            seeds.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
            names.append((town, community))
    far = [(-5000, -5000), (-5000, 6000), (6000, -5000), (6000, 6000)]
    vor = Voronoi(np.array(seeds + far))
    features = []
    for index, (town, community) in enumerate(names):
        region = vor.regions[vor.point_region[index]]
        cell = [tuple(vor.vertices[v]) for v in region]
        cell.sort(key=lambda p: math.atan2(p[1] - seeds[index][1], p[0] - seeds[index][0]), reverse=True)
        for a, b in zip(OUTLINE, OUTLINE[1:] + OUTLINE[:1], strict=True):
            cell = _clip(cell, a, b)
        ring = [[round(LON + x * SCALE, 6), round(LAT + y * SCALE, 6)] for x, y in cell]
        features.append({
            "type": "Feature",
            "properties": {"town": town.code, "town_name": town.name, "community": community.code,
                           "name": community.name},
            "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
        })  # fmt: skip
    out = {"type": "FeatureCollection", "name": f"{places.spec.county}（演示，虚构）", "features": features}
    target = ROOT / "dispatch" / "county_map.geojson"
    target.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{target}: {len(features)} communities")


if __name__ == "__main__":
    main()
