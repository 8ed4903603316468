"""The other channels end to end through the app (FastAPI TestClient on a real database, both
backends): Open311 as a city app speaks it (form-encoded posts, JSON answers, errors as an array of
{code, description}), the signed 110 hand-over and its reverse, the mayor's mailbox, the status
look-up, the rate limits and the public disclosure."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agent_ui.app import create_app
from callcenter.models import CallDirection
from callcenter.service import CallRecords
from core import audit
from core.clock import ManualClock
from dispatch import schemas
from dispatch.catalog import load_category_tree, sync_category_tree
from dispatch.intake.handover import sign
from dispatch.intake.models import PoliceHandover, RateCounter
from dispatch.models import Ticket
from dispatch.states import Action
from hotline.config import REPO_ROOT
from hotline.context import HotlineContext
from hotline.demo_data import load_departments
from tests.conftest import PASSWORD, Staff, make_settings, subcategory_id
from tests.helpers import act, dispatched, load

APP_KEY = "citymap-key-0123"
PARTNER_KEY = "city110-key-4567"
SECRET = "a-long-secret-of-the-110-platform"
INTAKE = {
    "jurisdiction_id": "demo.12345.gov.cn",
    "open311": {"api_keys": {"citymap": APP_KEY}},
    "police110": {
        "replay_window_seconds": 300,
        "partners": {"city110": {"name": "演示县公安局110指挥中心", "key": PARTNER_KEY, "secret": SECRET}},
    },
    "letters_per_address": {"limit": 3, "seconds": 3600},
    "letters_per_phone": {"limit": 2, "seconds": 86400},
    "lookups_per_address": {"limit": 8, "seconds": 3600},
    "lookup_failures_per_ticket": {"limit": 3, "seconds": 3600},
}


@pytest.fixture
def ctx(db_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[HotlineContext]:
    """The conftest's hotline, with an Open311 app, a 110 partner and small rate limits."""
    monkeypatch.delenv("HOTLINE_DATABASE_URL", raising=False)
    settings = make_settings(db_url, intake=INTAKE, auth={"session_secret": "test-session-key-0123456789"})
    context = HotlineContext.from_settings(settings, clock=clock)
    with context.unit_of_work() as session:
        load_departments(session)
        sync_category_tree(session, load_category_tree(REPO_ROOT / "dispatch" / "category_tree.toml"))
    yield context
    context.close()


@pytest.fixture
def client(ctx: HotlineContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


def service_code(ctx: HotlineContext, name: str) -> str:
    with ctx.unit_of_work() as session:
        return str(subcategory_id(session, name))


def stored(ctx: HotlineContext, number: str) -> Ticket:
    return load(ctx, number)


def count(ctx: HotlineContext, model: Any) -> int:
    with ctx.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def archived(ctx: HotlineContext, staff: Staff, content: str, private: bool = False, **extra: Any) -> str:
    """A ticket registered, dispatched to the water company, replied, and closed by a callback."""
    number = dispatched(ctx, staff, "停水", "sw")
    with ctx.unit_of_work() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        ticket.content, ticket.private = content, private
        ticket.disclosure_consent = not private  # the citizen was asked and agreed (unless private)
        for key, value in extra.items():
            setattr(ticket, key, value)
    act(ctx, number, staff.water, Action.SIGN, schemas.NoteBody())
    act(
        ctx,
        number,
        staff.water,
        Action.REPLY,
        schemas.ReplyBody(result="已联系王建国，管道已修复，恢复供水。"),
    )
    act(ctx, number, staff.operator, Action.RECORD_CALLBACK, schemas.CallbackBody(result="satisfied"))
    return number


# ---- Open311 ------------------------------------------------------------------------------------


def post_request(client: TestClient, **fields: str) -> Any:
    """A form-encoded POST, as the specification says."""
    return client.post("/open311/v2/requests.json", data=fields)


def test_discovery_and_services(client: TestClient, ctx: HotlineContext) -> None:
    discovery = client.get("/open311/discovery.json").json()
    endpoint = discovery["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and endpoint["formats"] == ["text/xml", "application/json"]

    services = client.get("/open311/v2/services.json", params={"jurisdiction_id": "demo.12345.gov.cn"}).json()
    by_name = {s["service_name"]: s for s in services}
    water = by_name["停水"]
    assert water["service_code"] == service_code(ctx, "停水")
    assert set(water) == {
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    }
    assert (water["metadata"], water["type"], water["group"]) == (False, "realtime", "生活求助")
    assert all(s["group"] != "简单咨询" for s in services)  # answered on the call, not reported by apps

    definition = client.get(f"/open311/v2/services/{water['service_code']}.json").json()
    assert definition == {"service_code": water["service_code"], "attributes": []}
    missing = client.get("/open311/v2/services/99999.json")
    assert missing.status_code == 404
    assert missing.json() == [{"code": 404, "description": "service_code '99999' not found"}]
    wrong = client.get("/open311/v2/services.json", params={"jurisdiction_id": "elsewhere.gov"})
    assert wrong.status_code == 404 and wrong.json()[0]["code"] == 404


def test_a_city_app_posts_a_request_and_follows_it(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    code = service_code(ctx, "路灯损坏")
    response = post_request(
        client,
        api_key=APP_KEY,
        jurisdiction_id="demo.12345.gov.cn",
        service_code=code,
        lat="30.6598",
        long="104.0657",
        address_string="幸福路东段",
        description="幸福路东段一排路灯不亮，晚上很黑",
        first_name="小明",
        last_name="王",
        phone="13912345678",
        email="wang@example.cn",
        device_id="ios-123",
        media_url="https://example.cn/p/1.jpg",
        **{"attribute[WHISPER]": "ignored"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    [created] = response.json()
    number = created["service_request_id"]
    assert re.fullmatch(r"20261116-\d{4}", number) and number in created["service_notice"]

    ticket = stored(ctx, number)
    assert (ticket.channel, ticket.state, ticket.subcategory_id) == ("app", "registered", int(code))
    assert (ticket.caller_name, ticket.caller_phone, ticket.address) == (
        "王小明",
        "13912345678",
        "幸福路东段",
    )
    assert ticket.events[0].actor_name == "Open311·citymap"

    [seen] = client.get(f"/open311/v2/requests/{number}.json").json()
    assert seen["status"] == "open" and seen["service_code"] == code and seen["service_name"] == "路灯损坏"
    assert (seen["lat"], seen["long"], seen["media_url"]) == (30.6598, 104.0657, "https://example.cn/p/1.jpg")
    assert seen["requested_datetime"] == "2026-11-16T09:00:00+08:00" and seen["expected_datetime"] is None

    # dispatched, replied, called back: closed, with the department, the deadline and the reply
    with ctx.unit_of_work() as session:
        body = schemas.DispatchBody(department="cgj", subcategory_id=int(code))
        ctx.tickets(session).act(number, staff.operator, Action.DISPATCH, body)
    act(ctx, number, staff.city, Action.SIGN, schemas.NoteBody())
    act(ctx, number, staff.city, Action.REPLY, schemas.ReplyBody(result="已更换路灯12盏，王小明已确认"))
    [done] = client.get(f"/open311/v2/requests/{number}.json").json()
    assert done["status"] == "closed" and done["agency_responsible"] == "演示县城市管理综合执法局"
    assert done["status_notes"] == "已更换路灯12盏，王某已确认"  # the citizen's name scrubbed
    assert done["expected_datetime"].endswith("+08:00")

    listed = client.get("/open311/v2/requests.json", params={"status": "closed", "service_code": code}).json()
    assert [r["service_request_id"] for r in listed] == [number]
    assert (
        client.get("/open311/v2/requests.json", params={"status": "open", "service_code": code}).json() == []
    )
    ids = client.get("/open311/v2/requests.json", params={"service_request_id": f"{number},20991231-0001"})
    assert [r["service_request_id"] for r in ids.json()] == [number]


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"description": "路灯坏了", "lat": "30.1", "long": "104.1"}, 400, "service_code"),
        ({"service_code": "{sub}", "lat": "30.1", "long": "104.1"}, 400, "description"),
        ({"service_code": "{sub}", "description": "路灯坏了"}, 400, "location"),
        ({"service_code": "{sub}", "description": "路灯坏了", "lat": "30.1"}, 400, "lat and long"),
        ({"service_code": "{sub}", "description": "路灯坏了", "lat": "north", "long": "1"}, 400, "lat"),
        ({"service_code": "{sub}", "description": "路灯坏了", "lat": "95", "long": "1"}, 400, "lat"),
        ({"service_code": "99999", "description": "路灯坏了", "address_string": "某路"}, 400, "99999"),
        ({"service_code": "abc", "description": "路灯坏了", "address_string": "某路"}, 400, "abc"),
        (
            {
                "service_code": "{sub}",
                "description": "路灯坏了",
                "address_string": "某路",
                "phone": "call me",
            },
            400,
            "phone",
        ),
        ({"service_code": "{sub}", "description": "x" * 4001, "address_string": "某路"}, 400, "description"),
        (
            {"service_code": "{sub}", "description": "路灯坏了", "address_string": "某路", "api_key": ""},
            403,
            "api_key",
        ),
        (
            {
                "service_code": "{sub}",
                "description": "路灯坏了",
                "address_string": "某路",
                "api_key": "wrong-key-0000",
            },
            403,
            "api_key",
        ),
        (
            {
                "service_code": "{sub}",
                "description": "路灯坏了",
                "address_string": "某路",
                "jurisdiction_id": "x.gov",
            },
            404,
            "jurisdiction",
        ),
    ],
)
def test_bad_open311_posts_get_the_specifications_errors_and_change_nothing(
    client: TestClient, ctx: HotlineContext, fields: dict[str, str], status: int, words: str
) -> None:
    form = {
        "api_key": APP_KEY,
        **{k: v.replace("{sub}", service_code(ctx, "路灯损坏")) for k, v in fields.items()},
    }
    response = post_request(client, **form)
    assert response.status_code == status, response.text
    [error] = response.json()
    assert error["code"] == status and words in error["description"]
    assert count(ctx, Ticket) == 0


def test_open311_lists_hide_private_tickets_and_check_dates(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    public = archived(ctx, staff, "河西路停水，我叫李四，电话13900001111")
    private = archived(ctx, staff, "家里停水", private=True)
    listed = client.get("/open311/v2/requests.json").json()
    numbers = [r["service_request_id"] for r in listed]
    assert public in numbers and private not in numbers
    [shown] = [r for r in listed if r["service_request_id"] == public]
    assert "13900001111" not in shown["description"] and "李四" not in shown["description"]
    assert client.get(f"/open311/v2/requests/{private}.json").status_code == 404

    window = {"start_date": "2026-11-16T00:00:00+08:00", "end_date": "2026-11-16T23:59:59+08:00"}
    assert len(client.get("/open311/v2/requests.json", params=window).json()) == 1
    earlier = {"start_date": "2026-11-01T00:00:00Z", "end_date": "2026-11-15T00:00:00Z"}
    assert client.get("/open311/v2/requests.json", params=earlier).json() == []
    for params in ({"start_date": "yesterday"}, {"status": "pending"}, {"service_code": "x"}):
        response = client.get("/open311/v2/requests.json", params=params)
        assert response.status_code == 400 and response.json()[0]["code"] == 400, params
    backwards = {"start_date": "2026-11-16T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"}
    assert client.get("/open311/v2/requests.json", params=backwards).status_code == 400


# ---- 110 hand-over --------------------------------------------------------------------------------


def epoch(ctx: HotlineContext, delta: timedelta = timedelta(0)) -> str:
    return str(int((ctx.clock.now() + delta).replace(tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()))


def signed(
    ctx: HotlineContext,
    body: dict[str, Any] | bytes,
    *,
    key: str = PARTNER_KEY,
    secret: str = SECRET,
    at: timedelta = timedelta(0),
) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    stamp = epoch(ctx, at)
    headers = {"X-Partner-Key": key, "X-Timestamp": stamp, "X-Signature": sign(secret, stamp, raw)}
    return raw, {**headers, "Content-Type": "application/json"}


MATTER = {
    "external_id": "JQ20261116000123",
    "content": "群众报警称小区楼上装修噪音大，非警情，移交12345处理",
    "caller_phone": "13800002222",
    "address": "锦绣家园12栋",
}


def handover(client: TestClient, raw: bytes, headers: dict[str, str]) -> Any:
    return client.post("/api/police/handovers", content=raw, headers=headers)


def test_a_signed_hand_over_makes_one_ticket_per_external_id(client: TestClient, ctx: HotlineContext) -> None:
    first = handover(client, *signed(ctx, MATTER))
    assert first.status_code == 201, first.text
    number = first.json()["ticket_number"]
    assert first.json() == {"ticket_number": number, "external_id": MATTER["external_id"], "created": True}
    ticket = stored(ctx, number)
    assert (ticket.channel, ticket.state, ticket.caller_phone) == ("110", "registered", "13800002222")
    assert ticket.events[0].actor_name == "演示县公安局110指挥中心"

    # The platform sends the same matter again a minute later (a new request, not a replay).
    ctx.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    again = handover(client, *signed(ctx, {**MATTER, "content": "同一警情再次移交"}))
    assert again.status_code == 200
    assert again.json() == {"ticket_number": number, "external_id": MATTER["external_id"], "created": False}
    assert count(ctx, Ticket) == 1
    with ctx.unit_of_work() as session:
        [row] = session.scalars(select(PoliceHandover)).all()
        assert (row.direction, row.partner, row.external_id, row.ticket_id) == (
            "from_110",
            "city110",
            MATTER["external_id"],
            ticket.id,
        )


def test_bad_signature_replay_and_old_timestamp_are_refused(client: TestClient, ctx: HotlineContext) -> None:
    raw, headers = signed(ctx, MATTER)
    forged = handover(
        client, raw.replace("噪音".encode(), "漏水".encode()), headers
    )  # body changed after signing
    assert forged.status_code == 401 and forged.json()["error"] == "Unauthenticated"
    wrong_secret = handover(client, *signed(ctx, MATTER, secret="not-the-partners-secret"))
    assert wrong_secret.status_code == 401
    unknown = handover(client, *signed(ctx, MATTER, key="someone-else-key"))
    assert unknown.status_code == 401 and "partner key" in unknown.json()["detail"]
    for late in (timedelta(minutes=-6), timedelta(minutes=6)):
        stale = handover(client, *signed(ctx, MATTER, at=late))
        assert stale.status_code == 401 and "timestamp" in stale.json()["detail"]
    no_headers = client.post("/api/police/handovers", content=raw)
    assert no_headers.status_code == 401
    assert count(ctx, Ticket) == 0

    assert handover(client, raw, headers).status_code == 201  # the genuine request, once
    ctx.clock.advance(timedelta(seconds=30))  # type: ignore[attr-defined]
    replay = handover(client, raw, headers)
    assert replay.status_code == 409 and "replay" in replay.json()["detail"]
    ctx.clock.advance(timedelta(minutes=10))  # type: ignore[attr-defined]
    later = handover(client, raw, headers)  # replayed after the window: too old
    assert later.status_code == 401 and "timestamp" in later.json()["detail"]
    assert count(ctx, Ticket) == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json", "invalid hand-over"),
        ({"content": "缺少编号"}, "external_id"),
        ({**MATTER, "external_id": "bad id with spaces"}, "external_id"),
        ({**MATTER, "content": ""}, "content"),
        ({**MATTER, "caller_phone": "phone"}, "caller_phone"),
        ({**MATTER, "unexpected": 1}, "unexpected"),
        ({**MATTER, "subcategory_id": 99999}, "sub-category"),
    ],
)
def test_a_signed_but_bad_body_is_a_clear_400(
    client: TestClient, ctx: HotlineContext, body: dict[str, Any] | bytes, words: str
) -> None:
    response = handover(client, *signed(ctx, body))
    assert response.status_code == 400, response.text
    assert words in response.json()["detail"]
    assert count(ctx, Ticket) == 0


def test_an_oversized_hand_over_is_refused_before_it_is_read(client: TestClient, ctx: HotlineContext) -> None:
    response = handover(client, *signed(ctx, {**MATTER, "content": "长" * 30_000}))
    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    assert count(ctx, Ticket) == 0


def test_a_transfer_to_110_is_recorded_with_the_call(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    with ctx.unit_of_work() as session:
        records = CallRecords(session, ctx.clock)
        call = records.open("call-1", "13700001111", "12345", "w1", CallDirection.INBOUND)
        records.event(call, "transfer", {"target": "110", "uri": "sip:110@127.0.0.1:5090"})
        other = records.open("call-2", "13700002222", "12345", "w1", CallDirection.INBOUND)
        records.event(other, "transfer", {"target": "120", "uri": "sip:120@127.0.0.1:5090"})
    auth = ("op1", PASSWORD)
    body = {"summary": "来电称有人持刀在小区闹事，已转110", "partner": "city110", "external_id": "JQ-88"}
    response = client.post("/api/calls/call-1/police-handover", json=body, auth=auth)
    assert response.status_code == 200, response.text
    record = response.json()
    assert (record["direction"], record["call_uid"], record["external_id"]) == ("to_110", "call-1", "JQ-88")
    assert record["created_by"] == "op1"
    # Recording it again corrects the same record (one per transfer).
    fixed = client.post("/api/calls/call-1/police-handover", json={**body, "summary": "更正"}, auth=auth)
    assert fixed.json()["id"] == record["id"] and fixed.json()["summary"] == "更正"
    listed = client.get("/api/police/handovers", params={"direction": "to_110"}, auth=("sup", PASSWORD))
    assert [r["call_uid"] for r in listed.json()] == ["call-1"]

    not_110 = client.post("/api/calls/call-2/police-handover", json=body, auth=auth)
    assert not_110.status_code == 422 and "110" in not_110.json()["detail"]
    unknown = client.post("/api/calls/nope/police-handover", json=body, auth=auth)
    assert unknown.status_code == 404
    liaison = client.post("/api/calls/call-1/police-handover", json=body, auth=("sw1", PASSWORD))
    assert liaison.status_code == 403
    anonymous = client.post("/api/calls/call-1/police-handover", json=body)
    assert anonymous.status_code == 401
    bad = client.post(
        "/api/calls/call-1/police-handover", json={**body, "ticket_number": "20991231-0001"}, auth=auth
    )
    assert bad.status_code == 404
    assert count(ctx, PoliceHandover) == 1


# ---- the mayor's mailbox and the status look-up -------------------------------------------------


def csrf(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def letter(client: TestClient, token: str, **fields: str) -> Any:
    form = {"content": "小区门口的路灯坏了一排，晚上很黑", "phone": "13812345678", **fields}
    return client.post("/xinxiang", data={"csrf_token": token, **form})


def test_a_letter_becomes_a_ticket_and_its_number_is_shown(client: TestClient, ctx: HotlineContext) -> None:
    token = csrf(client, "/xinxiang")
    response = letter(client, token, name="张三", address="幸福路东段", private="1")
    assert response.status_code == 200
    number = re.search(r'id="ticket-number">([^<]+)<', response.text)
    assert number
    ticket = stored(ctx, number.group(1))
    assert (ticket.channel, ticket.state, ticket.private) == ("web", "registered", True)
    assert (ticket.caller_name, ticket.caller_phone, ticket.address) == ("张三", "13812345678", "幸福路东段")
    assert ticket.events[0].actor_name == "网上信箱"
    with ctx.unit_of_work() as session:
        [entry] = audit.entries(session, ticket_number=ticket.number)
        assert (entry.action, entry.username, entry.via, entry.ip) == (
            "ticket.register",
            "网上信箱",
            "page",
            "testclient",
        )


def test_a_bad_letter_keeps_what_was_typed(client: TestClient, ctx: HotlineContext) -> None:
    token = csrf(client, "/xinxiang")
    response = letter(client, token, phone="12345", content="路灯坏了很久了")
    assert response.status_code == 422
    assert "手机号码" in response.text and "路灯坏了很久了" in response.text
    assert letter(client, token, content="短").status_code == 422
    assert (
        client.post("/xinxiang", data={"content": "没有令牌的来信", "phone": "13812345678"}).status_code
        == 403
    )
    assert count(ctx, Ticket) == 0


def test_letters_are_rate_limited_per_phone_and_per_address(client: TestClient, ctx: HotlineContext) -> None:
    token = csrf(client, "/xinxiang")
    assert letter(client, token).status_code == 200
    assert letter(client, token).status_code == 200
    third = letter(client, token)  # a third letter from the same phone today
    assert third.status_code == 429 and "过于频繁" in third.text
    assert letter(client, token, phone="13912345678").status_code == 200  # another phone, same address
    by_address = letter(client, token, phone="13712345678")  # the address's fourth letter this hour
    assert by_address.status_code == 429
    assert count(ctx, Ticket) == 3

    # The counts are in the database: a restarted app (a new process) still refuses ...
    with TestClient(create_app(ctx)) as restarted:
        assert letter(restarted, csrf(restarted, "/xinxiang"), phone="13612345678").status_code == 429
    with ctx.unit_of_work() as session:  # ... and stores no phone number or address in clear
        keys = session.scalars(select(RateCounter.key)).all()
    assert keys and all(re.fullmatch(r"[0-9a-f]{64}", k) for k in keys)
    # ... until the window is over.
    ctx.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    assert letter(client, token, phone="13612345678").status_code == 200


def test_the_status_look_up_shows_state_deadline_and_reply_only(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    number = archived(ctx, staff, "河西路18号停水", caller_phone="13900001111")
    response = client.post("/api/public/status", json={"number": number, "phone_last4": "1111"})
    assert response.status_code == 200
    shown = response.json()
    assert set(shown) == {"number", "state", "state_label", "deadline", "reply", "replied_at"}
    assert (shown["number"], shown["state"], shown["state_label"]) == (number, "archived", "已办结")
    assert shown["reply"] == "已联系王建国，管道已修复，恢复供水。" and shown["deadline"]

    page = client.post(
        "/chaxun", data={"csrf_token": csrf(client, "/chaxun"), "number": number, "phone_last4": "1111"}
    )
    assert page.status_code == 200 and "已办结" in page.text and "管道已修复" in page.text
    assert "13900001111" not in page.text and "河西路18号" not in page.text


def test_guessing_the_last_four_digits_is_stopped(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    number = archived(ctx, staff, "停水", caller_phone="13900001111")
    nowhere = client.post("/api/public/status", json={"number": "20991231-0001", "phone_last4": "1111"})
    wrong = client.post("/api/public/status", json={"number": number, "phone_last4": "0000"})
    # The same answer whether the ticket exists or not.
    assert nowhere.status_code == wrong.status_code == 404
    assert nowhere.json()["detail_zh"] == wrong.json()["detail_zh"]
    for guess in ("0001", "0002"):
        assert (
            client.post("/api/public/status", json={"number": number, "phone_last4": guess}).status_code
            == 404
        )
    # Three failures for this ticket this hour: even the right digits wait now.
    right = client.post("/api/public/status", json={"number": number, "phone_last4": "1111"})
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
    ctx.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    assert (
        client.post("/api/public/status", json={"number": number, "phone_last4": "1111"}).status_code == 200
    )


def test_look_ups_are_rate_limited_per_address(client: TestClient, ctx: HotlineContext) -> None:
    answers = [
        client.post(
            "/api/public/status", json={"number": f"20261116-{n:04d}", "phone_last4": "1234"}
        ).status_code
        for n in range(1, 11)
    ]
    assert answers == [404] * 8 + [429] * 2
    bad = client.post("/api/public/status", json={"number": "nonsense", "phone_last4": "12"})
    assert bad.status_code == 422


# ---- public disclosure -----------------------------------------------------------------------------


def test_disclosure_shows_closed_public_tickets_scrubbed(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    shown = archived(
        ctx, staff, "我叫王建国，家住河西路18号3栋501室，电话13900001111，停水两天了", caller_name="王建国"
    )
    archived(ctx, staff, "私密诉求：我家停水", private=True)
    dispatched(ctx, staff, "停水", "sw")  # still open: not disclosed
    page = client.get("/api/public/disclosure").json()
    assert page["total"] == 1
    [item] = page["items"]
    assert item["department"] == "演示县供水有限公司" and item["on_time"] is True
    assert item["subcategory"] == "停水"
    for secret in ("王建国", "13900001111", "18号", "501室"):
        assert secret not in item["content"] and secret not in item["reply"]
    assert "河西路" in item["content"] and "王某" in item["reply"]

    html = client.get("/gongkai")
    assert html.status_code == 200
    assert "私密诉求" not in html.text and "王建国" not in html.text and "按时办结" in html.text
    assert shown not in html.text  # the number is the key of the look-up: not shown
    assert client.get("/gongkai", params={"category": "zxzx"}).text.count("pub-item") == 0
    assert client.get("/api/public/disclosure", params={"page": 0}).status_code == 422


def test_the_same_matter_handed_over_twice_at_once_gives_one_ticket(ctx: HotlineContext) -> None:
    """Two requests with one external id at the same moment (two app processes): one ticket."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from dispatch.intake import handover as police

    requests = []
    for note in ("第一次移交", "同时到达的第二次移交"):
        raw = json.dumps({**MATTER, "content": note}, ensure_ascii=False).encode()
        stamp = epoch(ctx)
        requests.append((raw, police.verify(ctx, PARTNER_KEY, stamp, sign(SECRET, stamp, raw), raw)))
    barrier = Barrier(2)

    def send(request: tuple[bytes, police.Signed]) -> police.HandoverOut:
        raw, checked = request
        barrier.wait()
        return police.hand_over(ctx, checked, police.parse(raw), raw)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(send, requests))
    assert sorted(r.created for r in results) == [False, True]
    assert results[0].ticket_number == results[1].ticket_number
    assert count(ctx, Ticket) == 1 and count(ctx, PoliceHandover) == 1


def test_a_signed_hand_over_that_is_not_json_is_refused_and_creates_nothing(
    client: TestClient, ctx: HotlineContext
) -> None:
    raw, headers = signed(ctx, MATTER)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        refused = handover(client, raw, {**headers, "Content-Type": content_type})
        assert refused.status_code == 415, (content_type, refused.text)
        assert "JSON" in refused.json()["detail_zh"]
    assert count(ctx, Ticket) == 0
    charset = handover(client, raw, {**headers, "Content-Type": "application/json; charset=utf-8"})
    assert charset.status_code == 201


def test_a_too_long_letter_comes_back_as_the_form_with_the_limit(
    client: TestClient, ctx: HotlineContext
) -> None:
    token = csrf(client, "/xinxiang")
    long_text = "小区门口的路灯坏了。" * 500  # 5 000 characters, over the 2 000 a letter may have
    response = letter(client, token, content=long_text, name="王" * 300)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "反映内容（5至2000字）" in response.text and "姓名（32字以内）" in response.text
    assert long_text in response.text  # nothing typed is lost
    assert count(ctx, Ticket) == 0


def test_a_page_with_a_bad_parameter_gets_a_chinese_page_not_json(client: TestClient) -> None:
    page = client.get("/gongkai", params={"page": "0"}, headers={"accept": "text/html"})
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert "请求内容有误" in page.text
    api = client.get("/api/public/disclosure", params={"page": "0"}, headers={"accept": "text/html"})
    assert api.status_code == 422 and api.json()["error"] == "ValidationError"  # the API stays JSON


# ---- Open311 in XML, the specification's required format ----------------------------------------


def xml_of(response: Any) -> ET.Element:
    assert response.headers["content-type"].startswith("text/xml"), response.headers["content-type"]
    return ET.fromstring(response.content)


def test_every_open311_document_is_served_in_xml(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    discovery = xml_of(client.get("/open311/discovery.xml"))
    assert discovery.tag == "discovery"
    assert [f.text for f in discovery.iter("format")] == ["text/xml", "application/json"]
    assert discovery.findtext("endpoints/endpoint/specification") == "http://wiki.open311.org/GeoReport_v2"

    services = xml_of(client.get("/open311/v2/services.xml"))
    as_json = client.get("/open311/v2/services.json").json()
    assert services.tag == "services" and len(services.findall("service")) == len(as_json)
    water = next(s for s in services.findall("service") if s.findtext("service_name") == "停水")
    assert water.findtext("service_code") == service_code(ctx, "停水")
    assert (water.findtext("metadata"), water.findtext("group")) == ("false", "生活求助")
    definition = xml_of(client.get(f"/open311/v2/services/{service_code(ctx, '停水')}.xml"))
    assert definition.tag == "service_definition" and definition.find("attributes") is not None

    form = {
        "api_key": APP_KEY,
        "service_code": service_code(ctx, "路灯损坏"),
        "description": "幸福路东段路灯不亮",
        "address_string": "幸福路东段",
    }
    created = client.post("/open311/v2/requests.xml", data=form)
    assert created.status_code == 201
    number = xml_of(created).findtext("request/service_request_id")
    assert number and stored(ctx, number).channel == "app"

    one = xml_of(client.get(f"/open311/v2/requests/{number}.xml"))
    assert one.tag == "service_requests" and one.findtext("request/status") == "open"
    listed = xml_of(client.get("/open311/v2/requests.xml", params={"status": "open,closed"}))
    assert number in [r.findtext("service_request_id") for r in listed.findall("request")]


def test_open311_errors_keep_the_specifications_shape_in_both_formats(client: TestClient) -> None:
    refused = client.post("/open311/v2/requests.xml", data={"service_code": "1", "description": "x"})
    assert refused.status_code == 403
    error = xml_of(refused)
    assert error.tag == "errors" and error.findtext("error/code") == "403"
    for path, shape in (("/open311/v2/nothing.json", "json"), ("/open311/v2/nothing.xml", "xml")):
        missing = client.get(path)
        assert missing.status_code == 404
        if shape == "json":
            assert missing.json() == [{"code": 404, "description": f"no such Open311 endpoint: {path}"}]
        else:
            assert xml_of(missing).findtext("error/code") == "404"
    bad = client.get("/open311/v2/requests.xml", params={"status": "open,pending"})
    assert bad.status_code == 400 and xml_of(bad).findtext("error/code") == "400"


def test_a_status_list_filters_open311_requests(
    client: TestClient, ctx: HotlineContext, staff: Staff
) -> None:
    closed = archived(ctx, staff, "河西路停水")
    open_one = dispatched(ctx, staff, "路灯损坏", "cgj")
    with ctx.unit_of_work() as session:  # its citizen agreed to publish it
        session.scalar(select(Ticket).where(Ticket.number == open_one)).disclosure_consent = True

    def listed(status: str) -> list[str]:
        rows = client.get("/open311/v2/requests.json", params={"status": status}).json()
        return [r["service_request_id"] for r in rows]

    assert closed in listed("closed") and open_one not in listed("closed")
    assert open_one in listed("open") and closed not in listed("open")
    assert {closed, open_one} <= set(listed("open,closed"))
