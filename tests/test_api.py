"""The JSON API end to end (FastAPI TestClient on a real database, both backends): authentication,
registering and reading tickets, list filters, one endpoint per action, validation, permissions."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from agent_ui.app import create_app
from core.accounts.models import ApiToken, User
from core.accounts.service import issue_token
from core.clock import ManualClock
from dispatch import schemas
from dispatch.models import Category, Ticket, TicketCounter
from dispatch.state_machine import replay
from dispatch.states import Action, TicketState
from hotline.context import HotlineContext
from tests.conftest import MONDAY_9, PASSWORD, Staff, subcategory_id

WATER_PHONE = "13900001111"

ACTION_ENDPOINTS = [a for a in Action if a not in (Action.REGISTER, Action.ABSORB_DUPLICATE)]


@dataclass
class Api:
    client: TestClient
    ctx: HotlineContext
    clock: ManualClock
    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str = "op1", **params: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers(who), params=params or None)

    def post(self, path: str, body: Any, who: str = "op1") -> httpx.Response:
        return self.client.post(path, headers=self.headers(who), json=body)

    def create(self, who: str = "op1", **fields: Any) -> dict[str, Any]:
        body = {"content": "河西路18号小区停水", "caller_phone": WATER_PHONE, "caller_name": "张三", **fields}
        response = self.post("/api/tickets", body, who)
        assert response.status_code == 201, response.text
        return response.json()

    def act(
        self, number: str, action: str, body: dict[str, Any], who: str, expect: int = 200
    ) -> dict[str, Any]:
        response = self.post(f"/api/tickets/{number}/{action}", body, who)
        assert response.status_code == expect, response.text
        return response.json()

    def ticket(self, number: str, who: str = "op1") -> dict[str, Any]:
        response = self.get(f"/api/tickets/{number}", who)
        assert response.status_code == 200, response.text
        return response.json()

    def events(self, number: str, who: str = "op1") -> list[dict[str, Any]]:
        response = self.get(f"/api/tickets/{number}/events", who)
        assert response.status_code == 200, response.text
        return response.json()

    def listing(self, who: str = "op1", **params: Any) -> dict[str, Any]:
        response = self.get("/api/tickets", who, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def sub(self, name: str) -> int:
        with self.ctx.unit_of_work() as session:
            return subcategory_id(session, name)

    # ---- the usual steps -----------------------------------------------------------------------

    def dispatched(self, sub: str = "停水", department: str = "sw", **fields: Any) -> str:
        number = self.create(**fields)["number"]
        self.act(number, "dispatch", {"department": department, "subcategory_id": self.sub(sub)}, "op1")
        return number

    def signed(self, **fields: Any) -> str:
        number = self.dispatched(**fields)
        self.act(number, "sign", {}, "sw1")
        return number

    def replied(self) -> str:
        number = self.signed()
        self.act(number, "reply", {"result": "管道已修复，恢复供水"}, "sw1")
        return number

    def archived(self) -> str:
        number = self.replied()
        self.act(number, "record_callback", {"result": "satisfied", "solved": True}, "op1")
        return number


@pytest.fixture
def api(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> Iterator[Api]:
    with ctx.unit_of_work() as session:
        tokens = {name: issue_token(session, user, clock.now(), "test") for name, user in staff.users.items()}
    with TestClient(create_app(ctx)) as client:
        yield Api(client, ctx, clock, tokens)


def assert_error(response: httpx.Response, status: int, error: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    for word in words:
        assert word in body["detail"], (word, body)
    if status != 422 or error != "ValidationError":
        assert body["detail_zh"]
    return body


def total_tickets(ctx: HotlineContext) -> int:
    with ctx.unit_of_work() as session:
        return len(session.scalars(select(Ticket.id)).all())


# ---- OpenAPI --------------------------------------------------------------------------------------


def test_openapi_lists_every_action_endpoint(api: Api) -> None:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    paths = spec["paths"]
    assert set(schemas.ACTION_BODIES) == set(ACTION_ENDPOINTS)
    for action in ACTION_ENDPOINTS:
        path = f"/api/tickets/{{number}}/{action.value}"
        assert path in paths, path
        operation = paths[path]["post"]
        body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
        # Bodies whose fields are all optional may be left out: their schema is anyOf [body, null].
        refs = [body_schema.get("$ref")] + [alt.get("$ref") for alt in body_schema.get("anyOf", [])]
        name = schemas.ACTION_BODIES[action].__name__
        assert any(ref and ref.endswith("/" + name) for ref in refs), body_schema
        number = next(p for p in operation["parameters"] if p["name"] == "number")
        assert number["in"] == "path"
        assert number["schema"]["pattern"] == r"^[0-9]{8}-[0-9]{3,8}$"
    assert "post" in paths["/api/tickets"]
    assert "get" in paths["/api/tickets"]
    assert "get" in paths["/api/tickets/{number}"]
    assert "get" in paths["/api/tickets/{number}/events"]
    # The bodies forbid unknown fields in the published schema too.
    assert spec["components"]["schemas"]["TicketCreate"]["additionalProperties"] is False


def test_docs_page_is_served(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200
    assert "热线" in api.client.get("/").text


# ---- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer not-a-token",
        "Bearer ",
        "Basic " + base64.b64encode(f"op1:{PASSWORD}x".encode()).decode(),
        "Basic " + base64.b64encode(f"nobody:{PASSWORD}".encode()).decode(),
        "Basic not base64!",
        "Digest username=op1",
        "op1:" + PASSWORD,
    ],
)
def test_missing_or_invalid_credentials_give_401(api: Api, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    for method, path in (("GET", "/api/tickets"), ("GET", "/api/me"), ("POST", "/api/tickets")):
        response = api.client.request(method, path, headers=headers, json={"content": "x"})
        assert response.status_code == 401, (header, path, response.text)
        assert "Basic" in response.headers["www-authenticate"]
        assert "authentication required" in response.json()["detail"]
    assert total_tickets(api.ctx) == 0


def test_basic_auth_works(api: Api) -> None:
    response = api.client.get("/api/me", auth=("sw1", PASSWORD))
    assert response.status_code == 200
    assert response.json() == {
        "username": "sw1",
        "display_name": "sw1",
        "role": "liaison",
        "department": "sw",
    }


def test_token_from_issue_token_works_as_bearer(api: Api, staff: Staff) -> None:
    with api.ctx.unit_of_work() as session:
        user = session.get(User, staff.users["sup"].id)
        assert user is not None
        token = issue_token(session, user, api.clock.now(), "dashboard")
    response = api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["role"] == "supervisor"
    # The scheme is case-insensitive, as HTTP says.
    assert api.client.get("/api/me", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_revoked_token_and_inactive_user_are_refused(api: Api, staff: Staff) -> None:
    assert api.get("/api/me", "op2").status_code == 200
    with api.ctx.unit_of_work() as session:
        session.execute(
            update(ApiToken).where(ApiToken.user_id == staff.users["op2"].id).values(revoked=True)
        )
        session.execute(update(User).where(User.id == staff.users["sup"].id).values(active=False))
    assert api.get("/api/me", "op2").status_code == 401
    assert api.get("/api/me", "sup").status_code == 401
    assert api.client.get("/api/me", auth=("sup", PASSWORD)).status_code == 401


def test_basic_auth_can_be_switched_off(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api.ctx.settings.auth, "api_basic_auth", False)
    assert api.client.get("/api/me", auth=("op1", PASSWORD)).status_code == 401
    assert api.get("/api/me", "op1").status_code == 200


# ---- registering and reading ----------------------------------------------------------------------


def test_create_ticket(api: Api) -> None:
    response = api.post(
        "/api/tickets",
        {
            "content": "  河西路18号小区停水  ",
            "caller_phone": WATER_PHONE,
            "caller_name": "张三",
            "address": "河西路18号",
            "channel": "web",
        },
    )
    assert response.status_code == 201, response.text
    ticket = response.json()
    assert ticket["number"] == "20261116-0001"
    assert ticket["state"] == "registered"
    assert ticket["state_label"] == "已登记"
    assert ticket["content"] == "河西路18号小区停水"  # stripped
    assert ticket["channel"] == "web"
    assert ticket["caller_phone"] == WATER_PHONE
    assert ticket["created_at"] == "2026-11-16T09:00:00+08:00"
    assert ticket["lead_department"] is None
    assert ticket["deadline"] is None
    assert ticket["overdue"] is False
    assert api.create()["number"] == "20261116-0002"
    api.clock.advance(timedelta(days=1))
    assert api.create()["number"] == "20261117-0001"  # the serial starts again each day


def test_create_ticket_with_subcategory_fills_category(api: Api) -> None:
    ticket = api.create(subcategory_id=api.sub("停水"))
    assert ticket["subcategory"] == "停水"
    assert ticket["category"] == "生活求助"
    with api.ctx.unit_of_work() as session:
        policy = session.scalar(select(Category.id).where(Category.code == "policy"))
    response = api.post(
        "/api/tickets", {"content": "x", "subcategory_id": api.sub("停水"), "category_id": policy}
    )
    assert_error(response, 422, "RuleViolation", "does not belong")


def test_liaison_cannot_register(api: Api) -> None:
    assert_error(api.post("/api/tickets", {"content": "x"}, "sw1"), 403, "NotPermitted", "liaison")
    assert total_tickets(api.ctx) == 0


def test_read_ticket_and_events(api: Api) -> None:
    number = api.create()["number"]
    ticket = api.ticket(number)
    assert ticket["number"] == number
    assert ticket["caller_name"] == "张三"
    events = api.events(number)
    assert len(events) == 1
    event = events[0]
    assert event["seq"] == 1
    assert event["action"] == "register"
    assert event["actor_name"] == "op1"
    assert event["from_state"] is None
    assert event["to_state"] == "registered"
    assert event["at"] == "2026-11-16T09:00:00+08:00"
    assert event["data"] == {"channel": "phone"}


def test_unknown_ticket_is_404(api: Api) -> None:
    for path in ("/api/tickets/20261116-9999", "/api/tickets/20261116-9999/events"):
        assert_error(api.get(path), 404, "TicketNotFound", "20261116-9999")
    assert_error(api.get("/api/tickets/20261116-9999", "sw1"), 404, "TicketNotFound")
    assert_error(api.post("/api/tickets/20261116-9999/supervise", {}, "sup"), 404, "TicketNotFound")
    assert_error(api.post("/api/tickets/20261116-9999/sign", {}, "sw1"), 404, "TicketNotFound")


def test_list_filters(api: Api) -> None:
    # Monday: a water outage for the water company (1 working day: due Tuesday 17:30).
    water = api.dispatched("停水", "sw")
    # Tuesday: a broken street light for 城管局 (3 working days: due Friday 17:30), another caller.
    api.clock.set(MONDAY_9 + timedelta(days=1))
    light = api.dispatched("路灯损坏", "cgj", caller_phone="13900002222", caller_name="李四")
    # Wednesday: a question still at the hotline.
    api.clock.set(MONDAY_9 + timedelta(days=2))
    question = api.create(caller_phone="13900003333")["number"]

    def numbers(**params: Any) -> list[str]:
        page = api.listing(**params)
        found = [t["number"] for t in page["items"]]
        assert page["total"] == len(found)
        return found

    assert numbers() == [question, light, water]  # newest first
    assert numbers(state="registered") == [question]
    assert numbers(state=["dispatched", "registered"]) == [question, light, water]
    assert numbers(state="archived") == []
    assert numbers(department="sw") == [water]
    assert numbers(department="cgj") == [light]
    with api.ctx.unit_of_work() as session:
        help_id = session.scalar(select(Category.id).where(Category.code == "help"))
        complaint_id = session.scalar(select(Category.id).where(Category.code == "complaint"))
    assert numbers(category_id=help_id) == [light, water]
    assert numbers(category_id=complaint_id) == []
    assert numbers(created_from="2026-11-17") == [question, light]
    assert numbers(created_to="2026-11-16") == [water]
    assert numbers(created_from="2026-11-17", created_to="2026-11-17") == [light]
    assert numbers(created_from="2026-11-19") == []
    assert numbers(caller_phone="13900002222") == [light]
    assert numbers(caller_phone=WATER_PHONE) == [water]
    assert numbers(state="dispatched", department="cgj", caller_phone="13900002222") == [light]

    # Wednesday 9:00: only the water outage is past its deadline.
    assert numbers(overdue="true") == [water]
    assert numbers(overdue="false") == [question, light]
    assert api.ticket(water)["overdue"] is True
    assert api.ticket(light)["overdue"] is False
    # The next Monday both are overdue, earliest deadline first; a question at the hotline never is.
    api.clock.set(MONDAY_9 + timedelta(days=7))
    assert numbers(overdue="true") == [water, light]
    assert numbers(overdue="true", department="cgj") == [light]
    # A replied ticket is no longer overdue.
    api.act(light, "sign", {}, "cg1")
    api.act(light, "reply", {"result": "已更换灯泡"}, "cg1")
    assert numbers(overdue="true") == [water]

    page = api.listing(limit=2)
    assert page["total"] == 3
    assert len(page["items"]) == 2
    assert [t["number"] for t in api.listing(limit=2, offset=2)["items"]] == [water]


def test_list_filter_validation(api: Api) -> None:
    api.create()
    for params, field in (
        ({"state": "bogus"}, "state"),
        ({"created_from": "16/11/2026"}, "created_from"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"department": "SW!"}, "department"),
        ({"caller_phone": "call me"}, "caller_phone"),
        ({"overdue": "maybe"}, "overdue"),
        ({"sate": "registered"}, "sate"),
    ):
        response = api.get("/api/tickets", **params)
        body = assert_error(response, 422, "ValidationError", field)
        assert any(field in p["field"] for p in body["problems"]), body
    assert_error(api.get("/api/tickets", department="nosuch"), 404, "NotFound", "nosuch")


# ---- one test per action --------------------------------------------------------------------------


def test_dispatch(api: Api) -> None:
    number = api.create()["number"]
    api.clock.advance(timedelta(minutes=5))
    ticket = api.act(
        number,
        "dispatch",
        {
            "department": "sw",
            "subcategory_id": api.sub("停水"),
            "assisting": ["cgj", "sw", "cgj"],
            "note": "急",
        },
        "op1",
    )
    assert ticket["state"] == "dispatched"
    assert ticket["lead_department"]["code"] == "sw"
    assert [d["code"] for d in ticket["assisting_departments"]] == ["cgj"]
    assert ticket["dispatched_at"] == "2026-11-16T09:05:00+08:00"
    assert ticket["deadline"] == "2026-11-17T17:30:00+08:00"  # 1 working day
    last = api.events(number)[-1]
    assert last["action"] == "dispatch"
    assert (last["from_state"], last["to_state"], last["note"]) == ("registered", "dispatched", "急")
    assert last["data"]["department"] == "sw"
    assert last["data"]["assisting"] == ["cgj"]


def test_dispatch_refusals(api: Api) -> None:
    number = api.create()["number"]
    sub = api.sub("停水")
    assert_error(
        api.post(f"/api/tickets/{number}/dispatch", {"department": "nosuch", "subcategory_id": sub}),
        404,
        "NotFound",
        "nosuch",
    )
    assert_error(
        api.post(
            f"/api/tickets/{number}/dispatch", {"department": "sw", "subcategory_id": api.sub("办事指南")}
        ),
        422,
        "RuleViolation",
        "on the spot",
    )
    assert_error(
        api.post(f"/api/tickets/{number}/dispatch", {"department": "sw", "subcategory_id": 99999}),
        404,
        "NotFound",
        "99999",
    )
    assert_error(
        api.post(f"/api/tickets/{number}/dispatch", {"department": "sw", "subcategory_id": sub}, "sw1"),
        403,
        "NotPermitted",
    )
    assert api.ticket(number)["state"] == "registered"
    assert len(api.events(number)) == 1


def test_sign(api: Api) -> None:
    number = api.dispatched()
    api.clock.advance(timedelta(minutes=10))
    ticket = api.act(number, "sign", {"note": "已安排抢修"}, "sw1")
    assert ticket["state"] == "in_progress"
    assert ticket["signed_at"] == "2026-11-16T09:10:00+08:00"
    assert api.events(number)[-1]["note"] == "已安排抢修"


def test_reply(api: Api) -> None:
    number = api.signed()
    ticket = api.act(number, "reply", {"result": "管道已修复"}, "sw2")  # any liaison of the department
    assert ticket["state"] == "replied"
    assert ticket["reply_text"] == "管道已修复"
    assert ticket["replied_at"] is not None
    assert api.events(number)[-1]["actor_name"] == "sw2"


def test_record_callback_satisfied(api: Api) -> None:
    number = api.replied()
    ticket = api.act(number, "record_callback", {"result": "satisfied", "solved": True}, "op2")
    assert ticket["state"] == "archived"
    assert ticket["callback_result"] == "satisfied"
    assert ticket["closed_at"] is not None
    assert api.events(number)[-1]["data"] == {"result": "satisfied", "solved": True}
    response = api.post(f"/api/tickets/{number}/record_callback", {"result": "happy"}, "op1")
    assert_error(response, 422, "ValidationError", "result")


def test_record_callback_dissatisfied_reopens(api: Api) -> None:
    number = api.replied()
    ticket = api.act(number, "record_callback", {"result": "dissatisfied", "solved": False}, "op1")
    assert ticket["state"] == "in_progress"
    assert ticket["reopen_count"] == 1
    assert ticket["reply_text"] is None
    assert ticket["closed_at"] is None
    events = api.events(number)
    assert [e["action"] for e in events[-2:]] == ["record_callback", "reopen"]
    assert events[-1]["actor_name"] == "系统"


def test_return(api: Api) -> None:
    number = api.signed()
    ticket = api.act(number, "return", {"reason": "不属于供水公司管辖"}, "sw1")
    assert ticket["state"] == "returned"
    assert ticket["return_reason"] == "不属于供水公司管辖"
    assert ticket["overdue"] is False


def test_return_after_the_window_is_refused(api: Api) -> None:
    number = api.dispatched()
    api.clock.set(datetime(2026, 11, 19, 9, 0))  # Thursday: more than 2 working days after dispatch
    body = assert_error(
        api.post(f"/api/tickets/{number}/return", {"reason": "不归我们管"}, "sw1"),
        422,
        "RuleViolation",
        number,
        "2 working days",
    )
    assert "退单" in body["detail_zh"]
    assert api.ticket(number)["state"] == "dispatched"


def test_redispatch_to_another_department(api: Api) -> None:
    number = api.dispatched()
    api.act(number, "return", {"reason": "是路灯问题"}, "sw1")
    api.clock.set(datetime(2026, 11, 17, 9, 0))
    ticket = api.act(
        number,
        "redispatch",
        {"department": "cgj", "subcategory_id": api.sub("路灯损坏"), "note": "改派"},
        "op1",
    )
    assert ticket["state"] == "dispatched"
    assert ticket["lead_department"]["code"] == "cgj"
    assert ticket["subcategory"] == "路灯损坏"
    assert ticket["dispatched_at"] == "2026-11-17T09:00:00+08:00"
    assert ticket["deadline"] == "2026-11-20T17:30:00+08:00"  # 3 working days from Tuesday
    assert ticket["signed_at"] is None
    # The water company no longer sees it; 城管局 does and can sign.
    assert_error(api.get(f"/api/tickets/{number}", "sw1"), 403, "NotPermitted")
    assert api.act(number, "sign", {}, "cg1")["state"] == "in_progress"


def test_redispatch_to_the_same_department_gives_back_the_working_time(api: Api) -> None:
    number = api.dispatched()  # Monday 9:00, due Tuesday 17:30
    api.act(number, "return", {"reason": "地址不清"}, "sw1")
    api.clock.set(datetime(2026, 11, 17, 10, 0))  # 6 + 1.5 working hours at the hotline
    ticket = api.act(number, "redispatch", {"department": "sw"}, "op1")
    assert ticket["lead_department"]["code"] == "sw"
    assert ticket["deadline"] == "2026-11-19T09:30:00+08:00"  # Tue 17:30 + 7.5 working hours


def test_request_extension(api: Api) -> None:
    number = api.signed()
    ticket = api.act(number, "request_extension", {"days": 3, "reason": "需更换主管道"}, "sw1")
    assert ticket["state"] == "in_progress"
    assert ticket["extension_requested_days"] == 3
    assert ticket["extension_reason"] == "需更换主管道"
    assert api.events(number)[-1]["data"] == {"days": 3}
    assert_error(
        api.post(f"/api/tickets/{number}/request_extension", {"days": 2, "reason": "再等等"}, "sw1"),
        422,
        "RuleViolation",
        "already",
    )


def test_request_extension_too_long(api: Api) -> None:
    number = api.signed()
    assert_error(
        api.post(f"/api/tickets/{number}/request_extension", {"days": 11, "reason": "慢慢来"}, "sw1"),
        422,
        "RuleViolation",
        "at most 10",
    )
    assert api.ticket(number)["extension_requested_days"] is None


def test_approve_extension(api: Api) -> None:
    number = api.signed()  # due Tuesday 17:30
    assert_error(api.post(f"/api/tickets/{number}/approve_extension", {}, "sup"), 422, "RuleViolation")
    api.act(number, "request_extension", {"days": 3, "reason": "需更换主管道"}, "sw1")
    assert_error(api.post(f"/api/tickets/{number}/approve_extension", {}, "op1"), 403, "NotPermitted")
    ticket = api.act(number, "approve_extension", {"note": "同意"}, "sup")
    assert ticket["deadline"] == "2026-11-20T17:30:00+08:00"  # three more working days
    assert ticket["extension_requested_days"] is None
    assert api.events(number)[-1]["data"] == {"days": 3}


def test_refuse_extension(api: Api) -> None:
    number = api.signed()
    api.act(number, "request_extension", {"days": 3, "reason": "需更换主管道"}, "sw1")
    ticket = api.act(number, "refuse_extension", {"reason": "停水须当日解决"}, "adm")
    assert ticket["deadline"] == "2026-11-17T17:30:00+08:00"
    assert ticket["extension_requested_days"] is None
    assert ticket["extension_reason"] is None
    assert_error(
        api.post(f"/api/tickets/{number}/refuse_extension", {}, "sup"), 422, "ValidationError", "reason"
    )


def test_supervise(api: Api) -> None:
    number = api.dispatched()
    assert_error(api.post(f"/api/tickets/{number}/supervise", {}, "op1"), 403, "NotPermitted")
    ticket = api.act(number, "supervise", {"note": "请加快办理"}, "sup")
    assert ticket["state"] == "dispatched"
    assert ticket["supervision_count"] == 1
    assert api.act(number, "supervise", {}, "sup")["supervision_count"] == 2
    last = api.events(number)[-1]
    assert (last["action"], last["from_state"], last["to_state"]) == ("supervise", "dispatched", "dispatched")


def test_reopen(api: Api) -> None:
    number = api.archived()
    api.clock.set(datetime(2026, 11, 18, 9, 0))
    ticket = api.act(number, "reopen", {"reason": "市民再次来电反映仍停水"}, "sup")
    assert ticket["state"] == "in_progress"
    assert ticket["reopen_count"] == 1
    assert ticket["closed_at"] is None
    assert ticket["deadline"] == "2026-11-19T17:30:00+08:00"  # a fresh 1 working day from now
    assert_error(api.post(f"/api/tickets/{number}/reopen", {"reason": "x"}, "op1"), 403, "NotPermitted")


def test_archive(api: Api) -> None:
    number = api.replied()
    ticket = api.act(number, "archive", {"note": "市民无法联系，直接归档"}, "sup")
    assert ticket["state"] == "archived"
    assert ticket["closed_at"] is not None
    assert ticket["callback_result"] is None


def test_merge(api: Api) -> None:
    survivor = api.dispatched()
    duplicate = api.create(caller_phone="13900002222")["number"]
    ticket = api.act(duplicate, "merge", {"into": survivor, "note": "同一停水事件"}, "op1")
    assert ticket["state"] == "merged"
    assert ticket["merged_into"] == survivor
    assert api.events(survivor)[-1]["action"] == "absorb_duplicate"
    assert api.events(survivor)[-1]["data"] == {"duplicate": duplicate}
    assert api.ticket(survivor)["state"] == "dispatched"


def test_merge_refusals(api: Api) -> None:
    number = api.create()["number"]
    closed = api.create()["number"]
    api.act(closed, "answer_on_spot", {"answer": "已答复"}, "op1")
    assert_error(api.post(f"/api/tickets/{number}/merge", {"into": number}), 422, "RuleViolation", "itself")
    assert_error(api.post(f"/api/tickets/{number}/merge", {"into": closed}), 422, "RuleViolation", closed)
    assert_error(api.post(f"/api/tickets/{number}/merge", {"into": "20261116-9999"}), 404, "TicketNotFound")
    assert_error(
        api.post(f"/api/tickets/{number}/merge", {"into": "ticket-1"}), 422, "ValidationError", "into"
    )
    assert_error(api.post(f"/api/tickets/{closed}/merge", {"into": number}), 409, "IllegalTransition")
    assert api.ticket(number)["state"] == "registered"
    assert len(api.events(number)) == 1


def test_answer_on_spot(api: Api) -> None:
    number = api.create(subcategory_id=api.sub("办事指南"))["number"]
    ticket = api.act(
        number, "answer_on_spot", {"answer": "携带身份证到社保窗口补办", "kb_entry_id": "kb-42"}, "op1"
    )
    assert ticket["state"] == "closed"
    assert ticket["state_label"] == "直接答复"
    assert ticket["reply_text"] == "携带身份证到社保窗口补办"
    assert ticket["kb_entry_id"] == "kb-42"
    assert ticket["closed_at"] == "2026-11-16T09:00:00+08:00"
    assert_error(
        api.post(f"/api/tickets/{number}/answer_on_spot", {"answer": "再答"}), 409, "IllegalTransition"
    )


def test_whole_life_replays(api: Api) -> None:
    number = api.dispatched()
    api.act(number, "supervise", {}, "sup")
    api.act(number, "sign", {}, "sw1")
    api.act(number, "request_extension", {"days": 2, "reason": "等配件"}, "sw1")
    api.act(number, "approve_extension", {}, "sup")
    api.act(number, "reply", {"result": "已修复"}, "sw1")
    api.act(number, "record_callback", {"result": "dissatisfied"}, "op1")
    api.act(number, "return", {"reason": "实为燃气问题"}, "sw2")
    api.act(number, "redispatch", {"department": "rqgs", "subcategory_id": api.sub("燃气故障")}, "op1")
    ticket = api.act(number, "supervise", {}, "sup")
    events = api.events(number)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["action"] for e in events] == [
        "register",
        "dispatch",
        "supervise",
        "sign",
        "request_extension",
        "approve_extension",
        "reply",
        "record_callback",
        "reopen",
        "return",
        "redispatch",
        "supervise",
    ]
    with api.ctx.unit_of_work() as session:
        stored = session.scalar(select(Ticket).where(Ticket.number == number))
        assert stored is not None
        assert replay(stored.events) == TicketState(stored.state) == TicketState(ticket["state"])


# ---- bad requests change nothing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "content"),
        ({"content": "   "}, "content"),
        ({"content": "停水", "urgent": True}, "urgent"),
        ({"content": "停水", "category_id": "water"}, "category_id"),
        ({"content": 42}, "content"),
        ({"content": "停水", "caller_phone": "call me"}, "caller_phone"),
        ({"content": "停水", "channel": "pigeon"}, "channel"),
        ({"content": "停水", "subcategory_id": 0}, "subcategory_id"),
        ({"content": "x" * 4001}, "content"),
    ],
)
def test_bad_create_payload_is_422_and_creates_nothing(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.post("/api/tickets", body)
    result = assert_error(response, 422, "ValidationError", field)
    assert [p["field"] for p in result["problems"]] == [field]
    assert total_tickets(api.ctx) == 0
    with api.ctx.unit_of_work() as session:
        assert session.scalar(select(TicketCounter.last)) is None  # no serial was used up
    assert api.create()["number"] == "20261116-0001"


def test_non_json_body_is_422(api: Api) -> None:
    response = api.client.post(
        "/api/tickets",
        content=b"content=x",
        headers={**api.headers("op1"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert total_tickets(api.ctx) == 0


@pytest.mark.parametrize(
    ("action", "who", "body", "field"),
    [
        ("sign", "sw1", {"notes": "x"}, "notes"),
        ("reply", "sw1", {}, "result"),
        ("reply", "sw1", {"result": ""}, "result"),
        ("reply", "sw1", {"result": ["a"]}, "result"),
        ("request_extension", "sw1", {"days": 0, "reason": "x"}, "days"),
        ("request_extension", "sw1", {"days": 61, "reason": "x"}, "days"),
        ("request_extension", "sw1", {"days": "three", "reason": "x"}, "days"),
        ("request_extension", "sw1", {"days": 2}, "reason"),
        ("return", "sw1", {"reason": "  "}, "reason"),
        ("dispatch", "op1", {"department": "SW!", "subcategory_id": 1}, "department"),
        ("dispatch", "op1", {"department": "Sw", "subcategory_id": 1}, "department"),
        ("dispatch", "op1", {"department": "sw"}, "subcategory_id"),
        ("dispatch", "op1", {"department": "sw", "subcategory_id": 1, "assisting": ["a b"]}, "assisting.0"),
        ("redispatch", "op1", {"department": ""}, "department"),
        ("record_callback", "op1", {"result": "satisfied", "solved": "perhaps"}, "solved"),
        ("merge", "op1", {"into": "20261116-1"}, "into"),
        ("supervise", "sup", {"note": "x" * 2001}, "note"),
    ],
)
def test_bad_action_payload_is_422_and_changes_nothing(
    api: Api, action: str, who: str, body: dict[str, Any], field: str
) -> None:
    number = api.signed()
    before, events = api.ticket(number), api.events(number)
    result = assert_error(
        api.post(f"/api/tickets/{number}/{action}", body, who), 422, "ValidationError", field
    )
    assert field in [p["field"] for p in result["problems"]], result
    assert api.ticket(number) == before
    assert api.events(number) == events


@pytest.mark.parametrize("number", ["2026-1", "20261116-1", "20261116-000000001", "20261116_0001", "x" * 30])
def test_malformed_ticket_number_in_path_is_422(api: Api, number: str) -> None:
    api.create()
    for response in (
        api.get(f"/api/tickets/{number}"),
        api.get(f"/api/tickets/{number}/events"),
        api.post(f"/api/tickets/{number}/supervise", {}, "sup"),
    ):
        body = assert_error(response, 422, "ValidationError", "number")
        assert body["problems"][0]["field"] == "path.number"
    assert len(api.events("20261116-0001")) == 1


def test_action_body_may_be_left_out_only_when_every_field_is_optional(api: Api) -> None:
    number = api.dispatched()
    response = api.client.post(f"/api/tickets/{number}/sign", headers=api.headers("sw1"))
    assert response.status_code == 200 and response.json()["state"] == "in_progress"
    response = api.client.post(f"/api/tickets/{number}/reply", headers=api.headers("sw1"))
    assert_error(response, 422, "ValidationError", "body")
    assert api.ticket(number)["state"] == "in_progress"


# ---- illegal transitions --------------------------------------------------------------------------


def test_illegal_transition_is_409(api: Api) -> None:
    number = api.dispatched()
    body = assert_error(
        api.post(f"/api/tickets/{number}/dispatch", {"department": "sw", "subcategory_id": api.sub("停水")}),
        409,
        "IllegalTransition",
        number,
        "dispatched",
        "'dispatch'",
    )
    assert "已派单" in body["detail_zh"]
    assert "派单" in body["detail_zh"]
    body = assert_error(
        api.post(f"/api/tickets/{number}/reply", {"result": "已修复"}, "sw1"),
        409,
        "IllegalTransition",
        number,
        "dispatched",
        "'reply'",
    )
    for action, who, payload in (
        ("record_callback", "op1", {"result": "satisfied"}),
        ("archive", "sup", {}),
        ("reopen", "sup", {"reason": "x"}),
        ("redispatch", "op1", {"department": "sw"}),
        ("approve_extension", "sup", {}),
    ):
        assert_error(
            api.post(f"/api/tickets/{number}/{action}", payload, who), 409, "IllegalTransition", action
        )
    assert api.ticket(number)["state"] == "dispatched"
    assert len(api.events(number)) == 2


def test_nothing_follows_a_merge(api: Api) -> None:
    survivor = api.create()["number"]
    duplicate = api.dispatched()
    api.act(duplicate, "merge", {"into": survivor}, "op1")
    assert_error(api.post(f"/api/tickets/{duplicate}/sign", {}, "sw1"), 409, "IllegalTransition", "merged")
    assert_error(
        api.post(f"/api/tickets/{duplicate}/supervise", {}, "sup"), 409, "IllegalTransition", "merged"
    )


# ---- departments and privacy ----------------------------------------------------------------------


def test_liaison_of_another_department_is_refused(api: Api) -> None:
    water = api.dispatched()
    light = api.dispatched("路灯损坏", "cgj", caller_phone="13900002222")
    for response in (
        api.post(f"/api/tickets/{water}/sign", {}, "cg1"),
        api.post(f"/api/tickets/{water}/return", {"reason": "不归我管"}, "cg1"),
        api.get(f"/api/tickets/{water}", "cg1"),
        api.get(f"/api/tickets/{water}/events", "cg1"),
    ):
        body = assert_error(response, 403, "NotPermitted", water, "another department")
        assert "不属于本部门" in body["detail_zh"]
        assert WATER_PHONE not in response.text
    assert [t["number"] for t in api.listing("cg1")["items"]] == [light]
    assert api.listing("cg1", department="sw")["total"] == 0
    assert api.listing("cg1", caller_phone=WATER_PHONE)["total"] == 0
    assert [t["number"] for t in api.listing("sw1")["items"]] == [water]
    assert api.listing("op1")["total"] == 2
    assert api.ticket(water)["state"] == "dispatched"
    # A ticket still at the hotline is no department's business.
    registered = api.create()["number"]
    assert_error(api.get(f"/api/tickets/{registered}", "sw1"), 403, "NotPermitted")
    assert registered not in [t["number"] for t in api.listing("sw1")["items"]]


def test_assisting_department_sees_but_does_not_act(api: Api) -> None:
    number = api.create()["number"]
    api.act(
        number,
        "dispatch",
        {"department": "sw", "subcategory_id": api.sub("停水"), "assisting": ["cgj"]},
        "op1",
    )
    assert api.ticket(number, "cg1")["number"] == number
    assert [t["number"] for t in api.listing("cg1")["items"]] == [number]
    assert_error(api.post(f"/api/tickets/{number}/sign", {}, "cg1"), 403, "NotPermitted")
    assert api.act(number, "sign", {}, "sw1")["state"] == "in_progress"


def test_liaison_sees_the_phone_masked(api: Api) -> None:
    number = api.dispatched()
    as_liaison = api.ticket(number, "sw1")
    assert as_liaison["caller_phone"] == "139****1111"
    assert as_liaison["caller_name"] == "张**"
    assert api.listing("sw1")["items"][0]["caller_phone"] == "139****1111"
    assert api.act(number, "sign", {}, "sw1")["caller_phone"] == "139****1111"
    for events in (api.events(number, "sw1"),):
        assert WATER_PHONE not in str(events)
    as_operator = api.ticket(number, "op1")
    assert as_operator["caller_phone"] == WATER_PHONE
    assert as_operator["caller_name"] == "张三"
    assert api.listing("op1")["items"][0]["caller_phone"] == WATER_PHONE
    assert api.ticket(number, "sup")["caller_phone"] == WATER_PHONE
