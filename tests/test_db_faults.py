"""Database faults are told apart from races: a full disk, a cut connection, a closed database or no
free connection is a 503 with Retry-After and a Chinese message ("nothing was saved, try again"), a
lost race stays a 409. Real SQLite and PostgreSQL errors, made for real."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from agent_ui.app import create_app
from core.db import database_fault, make_engine
from core.errors import ConcurrentChange, Unavailable
from dispatch.models import Ticket
from hotline.context import HotlineContext
from tests.conftest import PASSWORD, Staff


def _fault_of(statement: object) -> Exception:
    with pytest.raises((DBAPIError, PoolTimeout)) as info:
        statement()  # type: ignore[operator]
    return info.value


def test_a_busy_sqlite_writer_lock_is_a_race(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with engine.connect() as conn:
            error = _fault_of(lambda: conn.execute(text("INSERT INTO t VALUES (1)")))
        fault = database_fault(error)
        assert isinstance(fault, ConcurrentChange) and fault.status == 409
    finally:
        holder.close()
        engine.dispose()


def test_a_full_sqlite_disk_and_a_closed_database_are_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
    with engine.connect() as conn:
        conn.execute(text("PRAGMA max_page_count = 2"))  # the file may not grow: as a full disk
        error = _fault_of(lambda: conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": "满" * 5000}))
    fault = database_fault(error)
    assert isinstance(fault, Unavailable) and fault.status == 503 and "磁盘已满" in fault.zh
    assert fault.headers == {"Retry-After": "30"}
    engine.dispose()
    (tmp_path / "a-file").write_text("not a folder")
    closed = create_engine(f"sqlite:///{tmp_path / 'a-file' / 'hotline.db'}")
    error = _fault_of(lambda: closed.connect())
    assert "连接中断" in database_fault(error).zh


def test_no_free_connection_is_busy_not_a_crash(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'pool.db'}", pool_size=1, max_overflow=0, pool_timeout=0.1)
    with engine.connect():
        error = _fault_of(lambda: engine.connect())
    fault = database_fault(error)
    assert isinstance(fault, Unavailable) and "系统繁忙" in fault.zh and fault.headers == {"Retry-After": "2"}
    assert make_engine(f"sqlite:///{tmp_path / 'big.db'}").pool.size() >= 20  # one per request thread


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_killed_postgresql_session_is_unavailable(db_url: str) -> None:
    engine = make_engine(db_url)
    killer = make_engine(db_url)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            with killer.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            error = _fault_of(lambda: conn.execute(text("SELECT 1")))
        fault = database_fault(error)
        assert isinstance(fault, Unavailable) and "连接中断" in fault.zh
    finally:
        engine.dispose()
        killer.dispose()


@pytest.fixture
def client(ctx: HotlineContext, staff: Staff) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_full_disk_reaches_the_client_as_503_in_chinese_and_saves_nothing(
    client: TestClient, ctx: HotlineContext
) -> None:
    with ctx.unit_of_work() as session:
        before = session.scalar(select(func.count()).select_from(Ticket))
    with ctx.engine.connect() as conn:  # free pages (a migration's table copies) would be room to write
        conn.exec_driver_sql("VACUUM")

    def full(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.execute("PRAGMA max_page_count = 1")  # type: ignore[attr-defined]  # no growth

    event.listen(ctx.engine, "connect", full)
    ctx.engine.dispose()  # every connection from now on is on the "full disk"
    try:
        response = client.post(
            "/api/tickets",
            json={"content": "停水" * 1900, "caller_phone": "13900001111"},
            auth=("op1", PASSWORD),
        )
    finally:
        event.remove(ctx.engine, "connect", full)
        ctx.engine.dispose()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "30"
    body = response.json()
    assert (
        body["error"] == "Unavailable" and "磁盘已满" in body["detail_zh"] and "未保存" in body["detail_zh"]
    )
    with ctx.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == before
    page = client.get("/search?text=x", headers={"Accept": "text/html"}, auth=("op1", PASSWORD))
    assert page.status_code in (200, 303)  # the rest of the hotline goes on once space is back
