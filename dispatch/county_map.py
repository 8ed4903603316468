"""The county's own outline, one polygon per community (GeoJSON, `[dispatch] county_map`), for the
hotspot map on the dashboard and in the monthly report; no map tiles from the internet. The demo's
file is made up (scripts/make_county_map.py draws it from the gazetteer)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dispatch.gazetteer import Gazetteer, GazetteerError


@dataclass(frozen=True)
class Area:
    town: str
    community: str
    name: str
    ring: tuple[tuple[float, float], ...]  # (longitude, latitude), closed

    @property
    def centre(self) -> tuple[float, float]:
        points = self.ring[:-1] or self.ring
        return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))


@dataclass(frozen=True)
class CountyMap:
    name: str
    areas: tuple[Area, ...]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        xs = [x for a in self.areas for x, _ in a.ring]
        ys = [y for a in self.areas for _, y in a.ring]
        return min(xs), min(ys), max(xs), max(ys)


def load_county_map(path: Path, places: Gazetteer) -> CountyMap:
    """Read and check the map: every feature a polygon of a community the gazetteer knows."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GazetteerError(f"{path}: county map not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GazetteerError(f"{path}: not valid GeoJSON: {exc}") from None
    known = {(p.town_code, p.community_code) for p in places.communities()}
    areas = []
    for index, feature in enumerate(data.get("features") or []):
        try:
            props, geometry = feature["properties"], feature["geometry"]
            ring = tuple((float(x), float(y)) for x, y in geometry["coordinates"][0])
            key = (props["town"], props["community"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise GazetteerError(f"{path}: feature {index} is not a community polygon ({exc!r})") from None
        if geometry.get("type") != "Polygon" or len(ring) < 4:
            raise GazetteerError(f"{path}: feature {index} ({props.get('name')}) is not a closed polygon")
        if key not in known:
            raise GazetteerError(f"{path}: feature {index}: {key[0]}/{key[1]} is not in the gazetteer")
        areas.append(Area(key[0], key[1], str(props.get("name", key[1])), ring))
    if not areas:
        raise GazetteerError(f"{path}: no community polygons")
    return CountyMap(str(data.get("name", "")), tuple(areas))


@cache
def _cached(path: Path, mtime: int, places: Gazetteer) -> CountyMap:
    return load_county_map(path, places)


def county_map_at(path: Path, places: Gazetteer) -> CountyMap:
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise GazetteerError(f"{path}: county map not found") from None
    return _cached(path, mtime, places)
