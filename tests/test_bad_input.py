"""Regressions of the 5xx that schemathesis found (tests/agent_ui/test_openapi_fuzz.py), each pinned
with the input that broke it: a clear 4xx (or a correct answer) now, on both backends."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agent_ui.app import create_app
from dispatch.models import Ticket
from hotline.context import HotlineContext
from tests.conftest import PASSWORD, Staff

TOO_BIG = 2**63


@pytest.fixture
def client(ctx: HotlineContext, staff: Staff) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


def test_an_unknown_category_is_refused_and_nothing_is_written(
    client: TestClient, ctx: HotlineContext
) -> None:
    for category, status in ((999_999, 404), (TOO_BIG, 422)):  # missing / beyond the column
        response = client.post(
            "/api/tickets", json={"content": "路灯坏了", "category_id": category}, auth=("op1", PASSWORD)
        )
        assert response.status_code == status, response.text
    with ctx.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_ids_beyond_the_columns_range_are_bad_input(client: TestClient) -> None:
    auth = ("adm", PASSWORD)
    assert client.get("/api/deadline", params={"subcategory_id": TOO_BIG}, auth=auth).status_code == 422
    assert client.delete(f"/api/admin/routing-words/{TOO_BIG}", auth=auth).status_code == 422
    listed = client.get("/api/tickets", params={"category_id": TOO_BIG}, auth=auth)
    assert listed.status_code == 422


def test_queue_figures_take_times_with_an_offset(client: TestClient) -> None:
    auth = ("sup", PASSWORD)
    # 16:00Z is midnight in Asia/Shanghai: the end of the clock's day, whichever way it is written.
    aware = client.get("/api/callcenter/stats", params={"end": "2026-11-16T16:00:00Z"}, auth=auth)
    assert aware.status_code == 200, aware.text
    naive = client.get("/api/callcenter/stats", params={"end": "2026-11-17T00:00:00"}, auth=auth)
    assert naive.json() == aware.json()
    both = {"start": "2026-11-16T00:00:00+08:00", "end": "2026-11-16T16:00:00Z"}
    assert client.get("/api/callcenter/stats", params=both, auth=auth).json() == aware.json()


def test_the_xlsx_export_survives_control_characters(client: TestClient) -> None:
    entry = {"id": "ctl-1", "question": "社保\x0f卡补办", "answer": "带身份证\x01到窗口办理"}
    assert client.post("/api/kb/entries", json=entry, auth=("adm", PASSWORD)).status_code == 201
    export = client.get("/api/kb/export", params={"format": "xlsx"}, auth=("adm", PASSWORD))
    assert export.status_code == 200
    assert export.content[:2] == b"PK"  # a real workbook


def test_a_nul_character_is_refused_in_every_kind_of_input_on_both_databases(ctx: HotlineContext) -> None:
    """PostgreSQL cannot store a NUL; SQLite would. Neither gets one: a clear 400, nothing stored."""
    from hotline.demo_data import load_staff

    with ctx.unit_of_work() as session:
        load_staff(session, ctx.clock.now())
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:hotline-demo").decode()}
    with TestClient(create_app(ctx)) as client:
        as_json = client.post("/api/admin/departments", json={"code": "nul", "name": "A\x00B"}, headers=auth)
        in_query = client.get("/api/tickets", params={"text": "A\x00B"}, headers=auth)
        in_form = client.post(
            "/open311/v2/requests.json", data={"description": "A\x00B", "service_code": "1"}
        )
        for response in (as_json, in_query):
            assert response.status_code == 400, response.text
            assert response.json()["detail_zh"] == "文字中不能含有空字符（NUL）"
        # Open311 clients get the specification's error list
        assert in_form.status_code == 400
        assert in_form.json() == [{"code": 400, "description": "text must not contain NUL characters"}]
        assert client.get("/api/admin/departments", headers=auth).json()[-1]["code"] != "nul"
