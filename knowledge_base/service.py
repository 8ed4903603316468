"""Knowledge-base entries in the database: create, update (a new version each time), history, hits,
and import/export as JSON Lines (the samples' format) and XLSX.

An import is all or nothing: every line is checked first and, if any is bad, nothing is written and
`KbImportError` lists each bad line with its number and the reason.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core import semantics
from core.errors import RuleViolation
from knowledge_base.matcher import EntryVectors, KnowledgeBase, embed_entries
from knowledge_base.models import KbEntry, KbEntryVector, KbEntryVersion

REQUIRED: dict[str, type] = {"id": str, "question": str, "answer": str}
LISTS = ("alternatives", "keywords")
OPTIONAL_STR = ("department", "topic")
DATES = ("valid_from", "valid_to")
FIELDS = ("id", "question", "alternatives", "answer", "keywords", "department", "topic", *DATES, "active")


@dataclass(frozen=True)
class LineProblem:
    line: int
    reason: str
    zh: str = ""  # the same for the admin's screen


# Field names as the admin sees them.
FIELD_ZH = {
    "id": "编号",
    "question": "问题",
    "alternatives": "相似问法",
    "answer": "答复",
    "keywords": "关键词",
    "department": "部门代码",
    "topic": "主题",
    "valid_from": "生效日期",
    "valid_to": "失效日期",
    "active": "是否启用",
}


def _zh(name: str) -> str:
    return f"「{FIELD_ZH.get(name, name)}」"


log = logging.getLogger(__name__)


class KbImportError(ValueError):
    """Nothing was imported; `problems` says which lines are bad and why."""

    def __init__(self, problems: list[LineProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"line {p.line}: {p.reason}" for p in problems))


class EntryNotFound(LookupError):
    pass


# --- conversion -----------------------------------------------------------------------------------


def entry_record(entry: KbEntry) -> dict[str, Any]:
    """The entry in the samples' format (plus validity and `active` when they are not the defaults)."""
    record: dict[str, Any] = {
        "id": entry.external_id,
        "question": entry.question,
        "alternatives": list(entry.alternatives or []),
        "answer": entry.answer,
        "keywords": list(entry.keywords or []),
        "department": entry.department_code,
        "topic": entry.topic,
    }
    if entry.valid_from:
        record["valid_from"] = entry.valid_from.isoformat()
    if entry.valid_to:
        record["valid_to"] = entry.valid_to.isoformat()
    if not entry.active:
        record["active"] = False
    return record


def _check(record: Any, known_departments: set[str] | None) -> list[tuple[str, str]]:
    """What is wrong with one record: (English, Chinese) pairs."""
    if not isinstance(record, dict):
        return [("a line must be a JSON object", "每行须为一个 JSON 对象")]
    reasons: list[tuple[str, str]] = []
    for name, kind in REQUIRED.items():
        if name not in record or record[name] is None:
            reasons.append((f"missing field '{name}'", f"缺少{_zh(name)}"))
        elif not isinstance(record[name], kind) or not record[name].strip():
            reasons.append((f"field '{name}' must be a non-empty string", f"{_zh(name)}不能为空"))
    for name in LISTS:
        value = record.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            reasons.append((f"field '{name}' must be a list of strings", f"{_zh(name)}须为文字列表"))
    for name in OPTIONAL_STR:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            reasons.append((f"field '{name}' must be a string or null", f"{_zh(name)}须为文字或留空"))
    for name in DATES:
        value = record.get(name)
        if value is not None:
            try:
                date.fromisoformat(value)
            except (TypeError, ValueError):
                reasons.append(
                    (f"field '{name}' must be a date YYYY-MM-DD", f"{_zh(name)}须为日期，如 2026-12-01")
                )
    if "active" in record and not isinstance(record["active"], bool):
        reasons.append(("field 'active' must be true or false", "「是否启用」须为 true 或 false"))
    dept = record.get("department")
    if known_departments and isinstance(dept, str) and dept not in known_departments:
        reasons.append((f"unknown department code '{dept}'", f"部门代码「{dept}」不存在"))
    return reasons


def validate(numbered: list[tuple[int, Any]], known_departments: set[str] | None) -> list[LineProblem]:
    problems: list[LineProblem] = []
    seen: dict[str, int] = {}
    for line, record in numbered:
        problems.extend(LineProblem(line, en, zh) for en, zh in _check(record, known_departments))
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            if record["id"] in seen:
                first = seen[record["id"]]
                en = f"duplicate id '{record['id']}' (first on line {first})"
                problems.append(LineProblem(line, en, f"编号「{record['id']}」重复（第 {first} 行已有）"))
            seen.setdefault(record["id"], line)
    return problems


def parse_jsonl(data: bytes | str) -> tuple[list[tuple[int, Any]], list[LineProblem]]:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return [], [LineProblem(1, f"not UTF-8 text: {exc}", "文件不是 UTF-8 编码的文本")]
    records: list[tuple[int, Any]] = []
    problems: list[LineProblem] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            en = f"invalid JSON: {exc.msg} (column {exc.colno})"
            problems.append(LineProblem(number, en, f"不是有效的 JSON（第 {exc.colno} 列）"))
    return records, problems


XLSX_COLUMNS = FIELDS


def parse_xlsx(data: bytes) -> tuple[list[tuple[int, Any]], list[LineProblem]]:
    """Rows of the first sheet (row 1 is the header); lists are cells holding JSON arrays."""
    from openpyxl import load_workbook

    try:
        sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        en = f"not a readable XLSX file: {type(exc).__name__}"
        return [], [LineProblem(1, en, "无法读取该 Excel（.xlsx）文件")]
    rows = list(sheet.iter_rows(values_only=True))
    if not rows:
        return [], [LineProblem(1, "empty sheet", "工作表为空")]
    header = [str(h).strip() if h is not None else "" for h in rows[0]]
    records: list[tuple[int, Any]] = []
    problems: list[LineProblem] = []
    for number, row in enumerate(rows[1:], start=2):
        if all(v is None or v == "" for v in row):
            continue
        record: dict[str, Any] = {}
        for name, value in zip(header, row, strict=False):
            if not name or value is None or value == "":
                continue
            if name in LISTS:
                try:
                    value = json.loads(value) if isinstance(value, str) else value
                except json.JSONDecodeError:
                    en = f"column '{name}' must hold a JSON list"
                    problems.append(LineProblem(number, en, f'{_zh(name)}列须为 JSON 列表，如 ["甲", "乙"]'))
                    continue
            elif name in DATES and isinstance(value, datetime):
                value = value.date().isoformat()
            elif name == "active" and isinstance(value, str):
                value = {"true": True, "false": False}.get(value.strip().lower(), value)
            record[name] = value
        records.append((number, record))
    return records, problems


def records_to_xlsx(records: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "knowledge_base"
    ws.append(list(XLSX_COLUMNS))
    for r in records:
        row: list[Any] = []
        for name in XLSX_COLUMNS:
            value = r.get(name)
            if name in LISTS:
                value = json.dumps(value or [], ensure_ascii=False)
            elif name == "active":
                value = "true" if r.get("active", True) else "false"
            if isinstance(value, str):  # control characters cannot be stored in a worksheet
                value = ILLEGAL_CHARACTERS_RE.sub("", value)
            row.append(value)
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- the service ----------------------------------------------------------------------------------


def known_department_codes(session: Session) -> set[str]:
    from core.departments import Department

    return set(session.scalars(select(Department.code)))


def _snapshot(entry: KbEntry) -> dict[str, Any]:
    return entry_record(entry) | {"active": entry.active}


def _apply(entry: KbEntry, record: dict[str, Any]) -> None:
    entry.question = record["question"]
    entry.alternatives = list(record.get("alternatives") or [])
    entry.answer = record["answer"]
    entry.keywords = list(record.get("keywords") or [])
    entry.department_code = record.get("department")
    entry.topic = record.get("topic")
    entry.valid_from = date.fromisoformat(record["valid_from"]) if record.get("valid_from") else None
    entry.valid_to = date.fromisoformat(record["valid_to"]) if record.get("valid_to") else None
    entry.active = bool(record.get("active", True))


def _version(
    session: Session, entry: KbEntry, by: str | None, user_id: int | None, now: datetime, note: str | None
) -> None:
    session.add(
        KbEntryVersion(
            entry=entry,
            version=entry.version,
            snapshot=_snapshot(entry),
            changed_by=by,
            changed_by_user_id=user_id,
            changed_at=now,
            note=note,
        )
    )


def get_entry(session: Session, external_id: str) -> KbEntry:
    entry = session.scalar(select(KbEntry).where(KbEntry.external_id == external_id))
    if entry is None:
        raise EntryNotFound(external_id)
    return entry


def save_entry(
    session: Session,
    record: dict[str, Any],
    now: datetime,
    changed_by: str | None = None,
    user_id: int | None = None,
    note: str | None = None,
    check_departments: bool = True,
) -> KbEntry:
    """Create the entry, or update it (a new version) when its content changed; checks the record."""
    known = known_department_codes(session) if check_departments else None
    problems = validate([(1, record)], known)
    if problems:
        raise KbImportError(problems)
    entry = session.scalar(select(KbEntry).where(KbEntry.external_id == record["id"]))
    if entry is None:
        entry = KbEntry(external_id=record["id"], version=1, hit_count=0, created_at=now, updated_at=now)
        _apply(entry, record)
        session.add(entry)
        _version(session, entry, changed_by, user_id, now, note or "created")
        session.flush()
        return entry
    before = _snapshot(entry)
    _apply(entry, record)
    if _snapshot(entry) == before:
        return entry
    entry.version += 1
    entry.updated_at = now
    _version(session, entry, changed_by, user_id, now, note or "updated")
    session.flush()
    return entry


def history(session: Session, external_id: str) -> list[KbEntryVersion]:
    entry = get_entry(session, external_id)
    return list(
        session.scalars(
            select(KbEntryVersion).where(KbEntryVersion.entry_id == entry.id).order_by(KbEntryVersion.version)
        )
    )


def record_hit(session: Session, external_id: str) -> None:
    """Count one use of the entry (an atomic increment, safe under concurrent calls; no new version)."""
    result = session.execute(
        update(KbEntry).where(KbEntry.external_id == external_id).values(hit_count=KbEntry.hit_count + 1)
    )
    if not getattr(result, "rowcount", 1):
        raise EntryNotFound(external_id)


def import_records(
    session: Session,
    numbered: list[tuple[int, Any]],
    problems: list[LineProblem],
    now: datetime,
    changed_by: str | None = None,
    user_id: int | None = None,
) -> list[KbEntry]:
    problems = sorted([*problems, *validate(numbered, known_department_codes(session))], key=lambda p: p.line)
    if problems:
        raise KbImportError(problems)
    with session.begin_nested():
        return [
            save_entry(session, record, now, changed_by, user_id, "批量导入", check_departments=False)
            for _line, record in numbered
        ]


def import_jsonl(
    session: Session,
    data: bytes | str,
    now: datetime,
    changed_by: str | None = None,
    user_id: int | None = None,
) -> list[KbEntry]:
    records, problems = parse_jsonl(data)
    return import_records(session, records, problems, now, changed_by, user_id)


def import_xlsx(
    session: Session, data: bytes, now: datetime, changed_by: str | None = None, user_id: int | None = None
) -> list[KbEntry]:
    records, problems = parse_xlsx(data)
    return import_records(session, records, problems, now, changed_by, user_id)


def all_entries(session: Session, active_only: bool = False) -> list[KbEntry]:
    stmt = select(KbEntry).order_by(KbEntry.external_id)
    if active_only:
        stmt = stmt.where(KbEntry.active)
    return list(session.scalars(stmt))


def export_jsonl(session: Session) -> str:
    return "".join(json.dumps(entry_record(e), ensure_ascii=False) + "\n" for e in all_entries(session))


def export_xlsx(session: Session) -> bytes:
    return records_to_xlsx([entry_record(e) for e in all_entries(session)])


def knowledge_base(session: Session, today: date | None = None) -> KnowledgeBase:
    """A matcher over the active entries valid today, with the embeddings kept in the database (those
    missing, or made from an older version of the entry or by another model, are made and kept)."""
    rows = [
        e
        for e in all_entries(session, active_only=True)
        if today is None
        or ((e.valid_from is None or e.valid_from <= today) and (e.valid_to is None or e.valid_to >= today))
    ]
    encoder = semantics.encoder()
    stored = stored_vectors(session, rows, encoder.version) if encoder is not None else {}
    kb = KnowledgeBase(rows, vectors=stored)
    if kb.embedded_now:
        by_id = {e.external_id: e for e in rows}
        keep_vectors(session, [(by_id[i], kb.vectors[i]) for i in kb.embedded_now], kb.encoder.version)
    return kb


def stored_vectors(session: Session, rows: list[KbEntry], model: str) -> dict[str, EntryVectors]:
    """The kept embeddings that still fit: made by `model` from the entry's current version."""
    if not rows:
        return {}
    by_id = {e.id: e for e in rows}
    out: dict[str, EntryVectors] = {}
    for start in range(0, len(rows), 500):
        ids = [e.id for e in rows[start : start + 500]]
        found = session.scalars(
            select(KbEntryVector).where(KbEntryVector.model == model, KbEntryVector.entry_id.in_(ids))
        )
        for v in found:
            entry = by_id[v.entry_id]
            phrasings = np.frombuffer(v.phrasings, dtype=np.float32)
            if v.version != entry.version or phrasings.size != v.dim * (1 + len(entry.alternatives or ())):
                continue
            out[entry.external_id] = EntryVectors(phrasings.reshape(-1, v.dim))
    return out


def keep_vectors(session: Session, made: list[tuple[KbEntry, EntryVectors]], model: str) -> None:
    """Keep new embeddings, in a transaction of their own: a request that only reads, or one that
    fails later, keeps them all the same; if they cannot be written they are made again next time."""
    if not made:
        return
    try:
        with Session(session.get_bind()) as own, own.begin():
            own.execute(
                delete(KbEntryVector).where(
                    KbEntryVector.model == model, KbEntryVector.entry_id.in_([e.id for e, _v in made])
                )
            )
            for entry, vectors in made:
                own.add(
                    KbEntryVector(
                        entry_id=entry.id,
                        version=entry.version,
                        model=model,
                        dim=int(vectors.phrasings.shape[1]),
                        phrasings=vectors.phrasings.astype(np.float32).tobytes(),
                        created_at=entry.updated_at,
                    )
                )
    except SQLAlchemyError as exc:
        log.warning("knowledge-base embeddings not kept (made again next time): %s", exc)


def embed_all(session: Session, progress: Callable[[int, int], None] | None = None, batch: int = 32) -> int:
    """Make the embeddings every entry lacks for the current model (`hotline embed-kb`, after a model
    change), `batch` entries at a time, reporting progress; returns how many were made."""
    encoder = semantics.encoder()
    if encoder is None:
        raise RuleViolation(
            "the embedding model is not available", "语义模型不可用：" + semantics.status().reason
        )
    rows = all_entries(session)
    stored = stored_vectors(session, rows, encoder.version)
    todo = [e for e in rows if e.external_id not in stored]
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        made = embed_entries(encoder, [KnowledgeBase._entry(e) for e in chunk])
        keep_vectors(session, [(e, made[e.external_id]) for e in chunk], encoder.version)
        if progress is not None:
            progress(min(start + batch, len(todo)), len(todo))
    return len(todo)


def index_status(session: Session) -> dict[str, Any]:
    """How many entries have embeddings of the current model (for the admin's knowledge-base page)."""
    status = semantics.status()
    total = int(session.scalar(select(func.count()).select_from(KbEntry)) or 0)
    if status.state != "ok":
        return {
            "model": status.model,
            "state": status.state,
            "reason": status.reason,
            "embedded": 0,
            "total": total,
        }
    encoder = semantics.encoder()
    assert encoder is not None
    embedded = int(
        session.scalar(
            select(func.count())
            .select_from(KbEntryVector)
            .join(KbEntry, KbEntry.id == KbEntryVector.entry_id)
            .where(KbEntryVector.model == encoder.version, KbEntryVector.version == KbEntry.version)
        )
        or 0
    )
    return {"model": encoder.version, "state": "ok", "reason": "", "embedded": embedded, "total": total}


# The matcher is built from the database once and rebuilt only when entries change.
_cache: dict[int, tuple[tuple[Any, ...], KnowledgeBase]] = {}
_cache_lock = threading.Lock()


def cached_matcher(session: Session, today: date) -> KnowledgeBase:
    """The matcher over today's active entries, rebuilt only when entries change."""
    signature = tuple(
        session.execute(select(func.count(), func.max(KbEntry.updated_at), func.sum(KbEntry.version))).one()
    )
    key = id(session.get_bind())
    with _cache_lock:
        cached = _cache.get(key)
        if cached and cached[0] == (*signature, today):
            return cached[1]
    kb = knowledge_base(session, today)
    with _cache_lock:
        _cache[key] = ((*signature, today), kb)
    return kb
