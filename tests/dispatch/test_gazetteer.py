"""The gazetteer places tickets in towns and communities; a malformed gazetteer or map names the file,
the entry and the reason; `hotline locate-tickets` places old tickets after a change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from dispatch import schemas
from dispatch.county_map import load_county_map
from dispatch.gazetteer import GazetteerError, load_gazetteer
from dispatch.models import Ticket
from dispatch.places import counts_by_community, locate_tickets
from hotline.config import REPO_ROOT
from hotline.context import HotlineContext
from tests.conftest import Staff

DEMO = REPO_ROOT / "dispatch" / "gazetteer.toml"
TOWN = """county = "测试县"
[[towns]]
code = "{code}"
name = "{name}"
words = {words}
[[towns.communities]]
code = "{community}"
name = "{community_name}"
words = {community_words}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gazetteer.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("address", "content", "town", "community"),
    [
        ("河西路18号", "", "hexi", "hexilu"),
        ("城关街道人民路夜市", "", "chengguan", "renminlu"),
        (None, "花溪镇那个菜市场的厕所没人冲", "hexi", None),  # a town named rules out other towns
        (None, "东山镇石门桥那里路灯坏了", "dongshan", "shimen"),
        (None, "我家在东山", "dongshan", None),  # 东山 is the town and its community: the town
        ("ＨＥＸＩ滨河新村３期", "", "binhe", "binhexc"),  # full width folded
        (None, "社保卡丢了怎么补办", None, None),
    ],
)
def test_places(address: str | None, content: str, town: str | None, community: str | None) -> None:
    place = load_gazetteer(DEMO).locate(address, content)
    assert (place.town_code if place else None, place.community_code if place else None) == (town, community)


def test_the_address_wins_over_the_content() -> None:
    place = load_gazetteer(DEMO).locate("青石街5号", "我在河西路上班")
    assert place is not None and place.town_code == "qingshi"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('county = "测试县"\ntowns = [\n', "not valid TOML"),
        (TOWN.format(code="a", name="甲镇", words="[]", community="b", community_name="乙村",
                     community_words="[]"), "towns.0.code"),
        (TOWN.format(code="jia", name="甲镇", words='["同名"]', community="jia", community_name="乙村",
                     community_words="[]"), "code 'jia' is used by both"),
        (TOWN.format(code="jia", name="甲镇", words='["同名"]', community="yi", community_name="乙村",
                     community_words='["同名"]'), "places an address in both"),
        (TOWN.format(code="jia", name="甲镇", words='["路"]', community="yi", community_name="乙村",
                     community_words="[]"), "too short"),
        ('county = "测试县"\ntowns = []\n', "towns"),
    ],
)  # fmt: skip
def test_a_malformed_gazetteer_names_the_entry(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(GazetteerError) as error:
        load_gazetteer(_write(tmp_path, text))
    assert str(tmp_path) in str(error.value) and reason in str(error.value)


def test_a_missing_gazetteer(tmp_path: Path) -> None:
    with pytest.raises(GazetteerError, match="gazetteer file not found"):
        load_gazetteer(tmp_path / "none.toml")


def test_the_county_map_matches_the_gazetteer(tmp_path: Path) -> None:
    places = load_gazetteer(DEMO)
    county = load_county_map(REPO_ROOT / "dispatch" / "county_map.geojson", places)
    assert {a.community for a in county.areas} == {p.community_code for p in places.communities()}
    data = json.loads((REPO_ROOT / "dispatch" / "county_map.geojson").read_text("utf-8"))
    data["features"][0]["properties"]["community"] = "nowhere"
    broken = tmp_path / "map.geojson"
    broken.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(GazetteerError, match="nowhere is not in the gazetteer"):
        load_county_map(broken, places)
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(GazetteerError, match="not valid GeoJSON"):
        load_county_map(broken, places)


def test_tickets_are_placed_at_registration_and_again_on_demand(ctx: HotlineContext, staff: Staff) -> None:
    with ctx.unit_of_work() as session:
        body = schemas.TicketCreate(content="路灯坏了", address="东风路3号", caller_phone="13900001111")
        number = ctx.tickets(session).register(staff.operator, body).number
    with ctx.unit_of_work() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None and (ticket.town_code, ticket.community_code) == ("binhe", "dongfeng")
        ticket_id = ticket.id
        session.execute(
            Ticket.__table__.update()
            .where(Ticket.__table__.c.id == ticket_id)
            .values(town_code=None, community_code=None)
        )
    with ctx.unit_of_work() as session:
        assert locate_tickets(session, ctx.gazetteer) == 1
        assert locate_tickets(session, ctx.gazetteer) == 0
        assert counts_by_community(
            session, ctx.clock.now().replace(hour=0), ctx.clock.now().replace(hour=23)
        ) == {"dongfeng": 1}


def test_a_broken_gazetteer_at_run_time_loses_no_ticket(
    ctx: HotlineContext, staff: Staff, tmp_path: Path
) -> None:
    ctx.settings.dispatch.gazetteer = _write(tmp_path, "county = \n")
    with ctx.unit_of_work() as session:
        body = schemas.TicketCreate(content="东风路路灯坏了", caller_phone="13900001111")
        ticket = ctx.tickets(session).register(staff.operator, body)
        assert ticket.number and ticket.town_code is None
