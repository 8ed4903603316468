"""JSON API of the knowledge base, under /api/kb. Operators, supervisors and admins read; only
supervisors and admins change entries or import."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Query, Request, UploadFile, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.accounts.models import Role
from core.errors import Conflict, NotFound, NotPermitted
from core.web import ActorDep, ContextDep, Flag, IsoDate, SessionDep, api_router, commit
from knowledge_base import service
from knowledge_base.models import KbEntry
from knowledge_base.schemas import MatchOut, match_out

router = api_router(prefix="/api/kb", tags=["knowledge base"])

READERS = {Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN}
EDITORS = {Role.SUPERVISOR, Role.ADMIN}


class EntryIn(BaseModel):
    question: str = Field(min_length=1)
    alternatives: list[str] = []
    answer: str = Field(min_length=1)
    keywords: list[str] = []
    department: str | None = None
    topic: str | None = None
    valid_from: IsoDate | None = None
    valid_to: IsoDate | None = None
    active: Flag = True
    note: str | None = None


class EntryCreate(EntryIn):
    id: str = Field(min_length=1, max_length=64)


class EntryOut(BaseModel):
    id: str
    question: str
    alternatives: list[str]
    answer: str
    keywords: list[str]
    department: str | None
    topic: str | None
    valid_from: date | None
    valid_to: date | None
    active: bool
    version: int
    hit_count: int
    updated_at: datetime


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    version: int
    snapshot: dict[str, Any]
    changed_by: str | None
    changed_at: datetime
    note: str | None


def _require(actor: Actor, roles: set[Role]) -> None:
    if actor.role not in roles:
        raise NotPermitted("your role may not do this", "您的角色无权执行此操作")


def _out(e: KbEntry) -> EntryOut:
    return EntryOut(
        id=e.external_id,
        question=e.question,
        alternatives=list(e.alternatives or []),
        answer=e.answer,
        keywords=list(e.keywords or []),
        department=e.department_code,
        topic=e.topic,
        valid_from=e.valid_from,
        valid_to=e.valid_to,
        active=e.active,
        version=e.version,
        hit_count=e.hit_count,
        updated_at=e.updated_at,
    )


def _entry(session: Session, external_id: str) -> KbEntry:
    try:
        return service.get_entry(session, external_id)
    except service.EntryNotFound:
        raise NotFound(f"no knowledge-base entry {external_id}", f"知识库条目 {external_id} 不存在") from None


def _problems(exc: service.KbImportError) -> JSONResponse:
    lines = [{"line": p.line, "reason": p.reason, "reason_zh": p.zh} for p in exc.problems]
    return JSONResponse(
        status_code=422,
        content={
            "error": "KbImportError",
            "detail": f"nothing imported: {exc}",
            "detail_zh": "导入失败，未写入任何条目："
            + "；".join(f"第 {p.line} 行：{p.zh or p.reason}" for p in exc.problems),
            "problems": lines,
        },
    )


@router.get("/match")
def match(
    session: SessionDep,
    actor: ActorDep,
    ctx: ContextDep,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    k: Annotated[int, Query(ge=1, le=20)] = 3,
) -> list[MatchOut]:
    _require(actor, READERS)
    kb = service.cached_matcher(session, ctx.clock.now().date())
    return [match_out(kb, hit) for hit in kb.match(q, k=k)]


class IndexStatusOut(BaseModel):
    model: str
    state: str  # ok | degraded | off
    reason: str
    embedded: int  # entries whose embeddings fit their current version
    total: int


@router.get("/index")
def index(session: SessionDep, actor: ActorDep) -> IndexStatusOut:
    """How much of the knowledge base the embedding model has indexed (`hotline embed-kb` fills it)."""
    _require(actor, READERS)
    return IndexStatusOut(**service.index_status(session))


@router.get("/entries")
def list_entries(session: SessionDep, actor: ActorDep, active: bool | None = None) -> list[EntryOut]:
    _require(actor, READERS)
    rows = service.all_entries(session, active_only=bool(active))
    return [_out(e) for e in rows]


@router.get("/entries/{external_id}")
def get_entry(external_id: str, session: SessionDep, actor: ActorDep) -> EntryOut:
    _require(actor, READERS)
    return _out(_entry(session, external_id))


def _save(
    session: Session, actor: Actor, ctx: Any, record: dict[str, Any], note: str | None
) -> EntryOut | JSONResponse:
    try:
        entry = service.save_entry(session, record, ctx.clock.now(), actor.name, actor.user_id, note)
    except service.KbImportError as exc:
        return _problems(exc)
    commit(session)
    return _out(entry)


@router.post("/entries", status_code=status.HTTP_201_CREATED, response_model=EntryOut)
def create_entry(body: EntryCreate, session: SessionDep, actor: ActorDep, ctx: ContextDep) -> Any:
    _require(actor, EDITORS)
    if session.scalar(select(KbEntry.id).where(KbEntry.external_id == body.id)) is not None:
        raise Conflict(
            f"entry {body.id} exists; use PUT to change it",
            f"知识库条目 {body.id} 已存在：请打开该条目修改，或换一个编号",
        )
    return _save(session, actor, ctx, _record(body.id, body), body.note)


@router.put("/entries/{external_id}", response_model=EntryOut)
def update_entry(
    external_id: str, body: EntryIn, session: SessionDep, actor: ActorDep, ctx: ContextDep
) -> Any:
    _require(actor, EDITORS)
    _entry(session, external_id)
    return _save(session, actor, ctx, _record(external_id, body), body.note)


def _record(external_id: str, body: EntryIn) -> dict[str, Any]:
    record = body.model_dump(exclude={"note"}, mode="json")
    record["id"] = external_id
    return record


@router.get("/entries/{external_id}/history")
def entry_history(external_id: str, session: SessionDep, actor: ActorDep) -> list[VersionOut]:
    _require(actor, READERS)
    _entry(session, external_id)
    return [VersionOut.model_validate(v) for v in service.history(session, external_id)]


@router.post("/entries/{external_id}/hit", status_code=status.HTTP_204_NO_CONTENT)
def entry_hit(external_id: str, session: SessionDep, actor: ActorDep) -> Response:
    """The operator read this entry's answer out on a call."""
    _require(actor, READERS)
    _entry(session, external_id)
    service.record_hit(session, external_id)
    commit(session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/import")
async def import_entries(
    request: Request, file: UploadFile, session: SessionDep, actor: ActorDep, ctx: ContextDep
) -> Any:
    """Upload a JSON Lines (or .xlsx) file; all lines are imported or none."""
    _require(actor, EDITORS)
    data = await file.read()
    now = ctx.clock.now()
    try:
        if (file.filename or "").lower().endswith(".xlsx"):
            entries = service.import_xlsx(session, data, now, actor.name, actor.user_id)
        else:
            entries = service.import_jsonl(session, data, now, actor.name, actor.user_id)
    except service.KbImportError as exc:
        session.rollback()
        return _problems(exc)
    commit(session)
    return {
        "imported": len(entries),
        "ids": [e.external_id for e in entries],
        "message_zh": f"已导入 {len(entries)} 条知识库条目",
    }


EXPORT_TYPES = {
    200: {
        "description": "the entries as JSON Lines, or as an Excel workbook",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}
            },
        },
    }
}


@router.get("/export", response_class=Response, responses=EXPORT_TYPES)
def export_entries(
    session: SessionDep, actor: ActorDep, format: Annotated[str, Query(pattern="^(jsonl|xlsx)$")] = "jsonl"
) -> Response:
    _require(actor, READERS)
    if format == "xlsx":
        return Response(
            service.export_xlsx(session),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="knowledge_base.xlsx"'},
        )
    return Response(
        service.export_jsonl(session),
        media_type="application/x-ndjson; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="knowledge_base.jsonl"'},
    )
