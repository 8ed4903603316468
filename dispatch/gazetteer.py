"""The county's gazetteer (地名库): towns (街道, 镇, 乡) and their communities and villages, with the
words and addresses that place a ticket in them. Hotspot warnings, the 三率 by town, duplicate
detection and the map all count tickets per place, so each ticket is located once, when it is
registered (and again by `hotline locate-tickets` after the gazetteer changes).

The file is TOML (`[dispatch] gazetteer` in config.toml); a malformed entry stops the start with a
message naming the file, the entry and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.chinese import fold
from core.tomlfile import load_toml_model

Code = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
# Suffixes that callers often leave out: 人民路社区 is also just 人民路, 河西镇 also 河西.
_SUFFIXES = ("社区居委会", "村民委员会", "居委会", "村委会", "社区", "街道", "村", "镇", "乡")


class GazetteerError(ValueError):
    """The gazetteer file cannot be used; the message names the file, the entry and the reason."""


class CommunitySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Code
    name: str = Field(min_length=2, max_length=32)
    kind: Literal["community", "village"] = "community"  # 社区 / 村
    # Roads, estates, landmarks and addresses that lie in this community.
    words: list[str] = []


class TownSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Code
    name: str = Field(min_length=2, max_length=32)
    kind: Literal["street", "town", "township"] = "town"  # 街道 / 镇 / 乡
    # The town's own office as a 承办单位 (a department code), rated in the 三率 like a department.
    department: str | None = None
    words: list[str] = []
    communities: list[CommunitySpec] = Field(min_length=1)


class GazetteerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    county: str = Field(min_length=2, max_length=32)
    towns: list[TownSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _codes_and_words_unique(self) -> GazetteerSpec:
        codes: dict[str, str] = {}
        owner: dict[str, str] = {}
        for town in self.towns:
            for code, name, words in [(town.code, town.name, town.words)] + [
                (c.code, c.name, c.words) for c in town.communities
            ]:
                if code in codes:
                    raise ValueError(f"code {code!r} is used by both {codes[code]} and {name}")
                codes[code] = name
                for word in words:
                    key = fold(word)
                    if len(key) < 2:
                        raise ValueError(f"{name}: word {word!r} is too short to place an address")
                    if key in owner and owner[key] != name:
                        raise ValueError(f"word {word!r} places an address in both {owner[key]} and {name}")
                    owner[key] = name
        return self


@dataclass(frozen=True)
class Place:
    town_code: str
    town_name: str
    community_code: str | None = None
    community_name: str | None = None

    @property
    def label(self) -> str:
        return f"{self.town_name}{self.community_name or ''}"


@dataclass(frozen=True)
class _Entry:
    place: Place
    community: bool


class Gazetteer:
    """Places a text in a town and, where the words say so, a community of it."""

    def __init__(self, spec: GazetteerSpec) -> None:
        self.spec = spec
        explicit: dict[str, _Entry] = {}
        derived: dict[str, _Entry] = {}
        for town in spec.towns:
            town_place = Place(town.code, town.name)
            self._add(explicit, derived, town.name, town.words, _Entry(town_place, community=False))
            for c in town.communities:
                place = Place(town.code, town.name, c.code, c.name)
                self._add(explicit, derived, c.name, c.words, _Entry(place, community=True))
        # An explicit word always wins; a derived alias that two places share names neither.
        self._entries = {**{k: v for k, v in derived.items() if v is not None}, **explicit}
        words = sorted(self._entries, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, words)))

    @staticmethod
    def _add(
        explicit: dict[str, _Entry], derived: dict[str, _Entry | None], name: str, words: list[str], e: _Entry
    ) -> None:
        for word in words:
            explicit[fold(word)] = e
        aliases = {fold(name)}
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                aliases.add(fold(name[: -len(suffix)]))
                break
        for alias in aliases:
            known = derived.get(alias, e)
            if alias not in derived or known == e:
                derived[alias] = e
            elif known is not None and known.place.town_code == e.place.town_code:
                # 东山镇 and its 东山社区 both say 东山: the town is what the word surely means.
                derived[alias] = _Entry(Place(e.place.town_code, e.place.town_name), community=False)
            else:
                derived[alias] = None  # two towns share it: it places nothing

    def locate(self, address: str | None, content: str = "") -> Place | None:
        """The most precise place the address names, else the content; None when neither names one."""
        for text in (address, content):
            found = self._best(fold(text or ""))
            if found is not None:
                return found
        return None

    def _best(self, text: str) -> Place | None:
        found = [(self._entries[m.group()], m) for m in self._pattern.finditer(text)] if text else []
        # A town named outright rules out communities of other towns (花溪镇那个菜市场).
        towns = {e.place.town_code for e, _ in found if not e.community}
        best: tuple[bool, int, int] | None = None
        chosen: Place | None = None
        for entry, match in found:
            if towns and entry.place.town_code not in towns:
                continue
            # A community beats a town, a longer word a shorter one, an earlier word a later one.
            rank = (entry.community, len(match.group()), -match.start())
            if best is None or rank > best:
                best, chosen = rank, entry.place
        return chosen

    def without_places(self, text: str) -> str:
        """The text with every place word taken out (what is left says what the matter is)."""
        return self._pattern.sub(" ", fold(text)) if self._entries else fold(text)

    @property
    def towns(self) -> list[TownSpec]:
        return self.spec.towns

    def communities(self) -> list[Place]:
        return [Place(t.code, t.name, c.code, c.name) for t in self.spec.towns for c in t.communities]

    def label(self, town_code: str | None, community_code: str | None) -> str | None:
        """ "河西镇柳树村" for a town and community of this gazetteer; None for a town it does not know."""
        town = self.town(town_code) if town_code else None
        if town is None:
            return None
        community = next((c.name for c in town.communities if c.code == community_code), "")
        return f"{town.name}{community}"

    def town(self, code: str) -> TownSpec | None:
        return next((t for t in self.spec.towns if t.code == code), None)


def load_gazetteer(path: Path) -> Gazetteer:
    return Gazetteer(load_toml_model(path, GazetteerSpec, GazetteerError, "gazetteer file"))


@cache
def cached_gazetteer(path: Path, mtime_ns: int) -> Gazetteer:
    return load_gazetteer(path)


def gazetteer_at(path: Path) -> Gazetteer:
    """The gazetteer in `path`, read again when the file changes."""
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise GazetteerError(f"{path}: gazetteer file not found") from None
    return cached_gazetteer(path, mtime)
