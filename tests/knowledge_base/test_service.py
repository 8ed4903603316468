"""Entries in the database (SQLite and PostgreSQL): import/export round trips, all-or-nothing imports
with line numbers, version history, hit counts, and the JSON API with its permissions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agent_ui.app import create_app
from core.accounts.service import issue_token
from core.clock import ManualClock
from hotline.context import HotlineContext
from knowledge_base import service
from knowledge_base.models import KbEntry
from tests.conftest import Staff
from tests.knowledge_base.test_matcher import DEMO

DEMO_TEXT = DEMO.read_text(encoding="utf-8")


def _count(ctx: HotlineContext) -> int:
    with ctx.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(KbEntry)) or 0


def _import(ctx: HotlineContext, text: str) -> None:
    with ctx.unit_of_work() as session:
        service.import_jsonl(session, text, ctx.clock.now(), "tester")


def test_jsonl_round_trip_is_lossless(ctx: HotlineContext) -> None:
    _import(ctx, DEMO_TEXT)
    with ctx.unit_of_work() as session:
        exported = service.export_jsonl(session)
    assert [json.loads(x) for x in exported.splitlines()] == [json.loads(x) for x in DEMO_TEXT.splitlines()]
    _import(ctx, exported)  # importing the same again changes nothing
    with ctx.unit_of_work() as session:
        assert service.export_jsonl(session) == exported
        assert {e.version for e in service.all_entries(session)} == {1}


def test_xlsx_round_trip_is_lossless(ctx: HotlineContext) -> None:
    _import(ctx, DEMO_TEXT)
    with ctx.unit_of_work() as session:
        entry = service.get_entry(session, "demo-001")
        record = service.entry_record(entry) | {"valid_from": "2026-01-01", "valid_to": "2026-12-31"}
        service.save_entry(session, record, ctx.clock.now(), "tester")
        before = service.export_jsonl(session)
        data = service.export_xlsx(session)
    records, problems = service.parse_xlsx(data)
    assert not problems
    assert records[0][1]["valid_from"] == "2026-01-01"
    with ctx.unit_of_work() as session:
        service.import_xlsx(session, data, ctx.clock.now(), "tester")
        assert service.export_jsonl(session) == before


def test_bad_lines_import_nothing_and_are_reported(ctx: HotlineContext) -> None:
    good = DEMO_TEXT.splitlines()
    bad_lines = [
        good[0],
        '{"id": "x-1", "question": "缺括号"',  # 2: broken JSON
        json.dumps({"id": "x-2", "answer": "没有问题字段"}, ensure_ascii=False),  # 3: missing field
        json.dumps(
            {"id": "x-3", "question": "问", "answer": "答", "keywords": "不是列表"}, ensure_ascii=False
        ),  # 4
        json.dumps(
            {"id": "x-4", "question": "问", "answer": "答", "department": "nosuch"}, ensure_ascii=False
        ),  # 5
        good[1],
    ]
    with pytest.raises(service.KbImportError) as caught, ctx.unit_of_work() as session:
        service.import_jsonl(session, "\n".join(bad_lines), ctx.clock.now(), "tester")
    by_line = {p.line: p.reason for p in caught.value.problems}
    assert set(by_line) == {2, 3, 4, 5}
    assert "invalid JSON" in by_line[2]
    assert "question" in by_line[3]
    assert "keywords" in by_line[4]
    assert "unknown department" in by_line[5]
    assert _count(ctx) == 0


def test_versions_and_hits(ctx: HotlineContext) -> None:
    _import(ctx, DEMO_TEXT)
    with ctx.unit_of_work() as session:
        record = service.entry_record(service.get_entry(session, "demo-007"))
        old_answer = record["answer"]
        record["answer"] = "新的答复口径。"
        service.save_entry(session, record, ctx.clock.now(), "班长", note="口径更新")
    with ctx.unit_of_work() as session:
        versions = service.history(session, "demo-007")
        assert [v.version for v in versions] == [1, 2]
        assert versions[0].snapshot["answer"] == old_answer
        assert versions[1].snapshot["answer"] == "新的答复口径。"
        assert versions[1].changed_by == "班长" and versions[1].note == "口径更新"
        service.record_hit(session, "demo-007")
        service.record_hit(session, "demo-007")
    with ctx.unit_of_work() as session:
        entry = service.get_entry(session, "demo-007")
        assert entry.hit_count == 2 and entry.version == 2  # a hit is not a new version
        kb = service.knowledge_base(session)
        assert kb.match("户口本丢了")[0].entry_id == "demo-007"


# --- the API --------------------------------------------------------------------------------------


class Api:
    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def api(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> Iterator[Api]:
    with ctx.unit_of_work() as session:
        tokens = {name: issue_token(session, user, clock.now(), "test") for name, user in staff.users.items()}
    with TestClient(create_app(ctx)) as client:
        yield Api(client, tokens)


def _upload(api: Api, text: str, who: str = "sup") -> Any:
    files = {"file": ("kb.jsonl", text.encode("utf-8"), "application/x-ndjson")}
    return api.client.post("/api/kb/import", headers=api.h(who), files=files)


def test_api_import_match_edit_history_export(api: Api) -> None:
    assert _upload(api, DEMO_TEXT, who="op1").status_code == 403
    response = _upload(api, DEMO_TEXT)
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == len(DEMO_TEXT.splitlines())

    hits = api.client.get(
        "/api/kb/match", headers=api.h("op1"), params={"q": "户口本找不着了咋整", "k": 3}
    ).json()
    assert hits[0]["id"] == "demo-007" and hits[0]["confident"] and hits[0]["department"] == "gaj"
    assert hits[0]["answer"] and 0 <= hits[0]["score"] <= 1

    body = {
        "question": "户口本丢了怎么补办？",
        "answer": "改过的答复。",
        "keywords": ["户口本"],
        "department": "gaj",
    }
    assert api.client.put("/api/kb/entries/demo-007", headers=api.h("op1"), json=body).status_code == 403
    response = api.client.put("/api/kb/entries/demo-007", headers=api.h("adm"), json=body)
    assert response.status_code == 200 and response.json()["version"] == 2
    history = api.client.get("/api/kb/entries/demo-007/history", headers=api.h("op1")).json()
    assert [v["version"] for v in history] == [1, 2] and history[1]["snapshot"]["answer"] == "改过的答复。"

    new = {"id": "demo-900", "question": "测试问题？", "answer": "测试答复。", "department": "zwzx"}
    assert api.client.post("/api/kb/entries", headers=api.h("sup"), json=new).status_code == 201
    assert api.client.post("/api/kb/entries", headers=api.h("sup"), json=new).status_code == 409
    bad = new | {"id": "demo-901", "department": "nosuch"}
    assert api.client.post("/api/kb/entries", headers=api.h("sup"), json=bad).status_code == 422
    assert api.client.get("/api/kb/entries/nope", headers=api.h("op1")).status_code == 404

    assert api.client.post("/api/kb/entries/demo-007/hit", headers=api.h("op1")).status_code == 204
    assert api.client.get("/api/kb/entries/demo-007", headers=api.h("op1")).json()["hit_count"] == 1

    exported = api.client.get("/api/kb/export", headers=api.h("op1"), params={"format": "jsonl"})
    assert exported.status_code == 200 and len(exported.text.splitlines()) == len(DEMO_TEXT.splitlines()) + 1
    xlsx = api.client.get("/api/kb/export", headers=api.h("sup"), params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert api.client.get("/api/kb/entries", headers=api.h("sw1")).status_code == 403  # a liaison


def test_api_bad_import_is_422_with_lines(api: Api) -> None:
    text = DEMO_TEXT.splitlines()[0] + "\n{broken\n"
    response = _upload(api, text)
    assert response.status_code == 422
    assert response.json()["problems"][0]["line"] == 2
    assert api.client.get("/api/kb/entries", headers=api.h("op1")).json() == []


def _kept(ctx: HotlineContext) -> dict[str, int]:
    from knowledge_base.models import KbEntryVector

    with ctx.unit_of_work() as session:
        rows = session.execute(
            select(KbEntry.external_id, KbEntryVector.version).join(
                KbEntryVector, KbEntryVector.entry_id == KbEntry.id
            )
        )
        return {external_id: version for external_id, version in rows}


def test_embeddings_are_kept_with_each_entry_version(ctx: HotlineContext) -> None:
    _import(ctx, DEMO_TEXT)
    with ctx.unit_of_work() as session:
        first = service.knowledge_base(session)
        assert first.mode == "hybrid" and len(first.embedded_now) == len(first)
    kept = _kept(ctx)
    assert len(kept) == len(first) and set(kept.values()) == {1}
    # built again: every embedding comes from the database, none is made
    with ctx.unit_of_work() as session:
        again = service.knowledge_base(session)
        assert again.embedded_now == []
        assert [h.entry_id for h in again.match("户口本找不着了咋整")] == [
            h.entry_id for h in first.match("户口本找不着了咋整")
        ]
    # an edit makes a new version: that entry alone is embedded again
    with ctx.unit_of_work() as session:
        record = service.entry_record(service.get_entry(session, "demo-007"))
        record["alternatives"] = [*record["alternatives"], "户口簿不见了"]
        service.save_entry(session, record, ctx.clock.now(), "tester")
    with ctx.unit_of_work() as session:
        assert service.knowledge_base(session).embedded_now == ["demo-007"]
    assert _kept(ctx)["demo-007"] == 2
    # another model version: nothing fits, `hotline embed-kb` makes them all, showing progress
    with ctx.unit_of_work() as session:
        assert service.stored_vectors(session, service.all_entries(session), "another-model") == {}
        status = service.index_status(session)
        assert status["state"] == "ok" and status["embedded"] == status["total"] == len(first)
        assert service.embed_all(session) == 0  # nothing missing for the current model


def test_embed_all_fills_what_is_missing_with_progress(ctx: HotlineContext) -> None:
    from knowledge_base.models import KbEntryVector

    _import(ctx, DEMO_TEXT)
    with ctx.unit_of_work() as session:
        assert service.index_status(session)["embedded"] == 0
        steps: list[tuple[int, int]] = []
        made = service.embed_all(session, lambda done, total: steps.append((done, total)), batch=5)
        total = session.scalar(select(func.count()).select_from(KbEntry))
        assert made == total and steps[-1] == (total, total) and len(steps) == -(-total // 5)
    with ctx.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(KbEntryVector)) == total
        assert service.index_status(session)["embedded"] == total
