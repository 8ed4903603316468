"""Shared fixtures: a real database (SQLite file, and PostgreSQL when reachable), a controllable clock,
the demo catalogue, and staff of every role.

Database tests run once per backend: the `db_url` fixture is parametrised over SQLite and PostgreSQL.
Each test run creates its own PostgreSQL database and drops it at the end.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from core.accounts.actor import Actor, actor_of
from core.accounts.models import Role, User
from core.accounts.service import create_user
from core.clock import ManualClock
from core.migrate import upgrade
from dispatch.catalog import load_category_tree, sync_category_tree
from hotline.config import REPO_ROOT, Settings, parse_settings
from hotline.context import HotlineContext
from hotline.demo_data import load_departments
from hotline.schema import metadata

# One embedding thread per test worker: the suite runs two workers on two cores, and the embedding
# engine's OpenMP threads, two per process, wait on each other at every barrier when both workers
# embed at once (150 utterances: 2.8 s alone, 12.9 s each side by side; with one thread 5.2 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")
PG_ADMIN_URL = os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SHARED = REPO_ROOT.parent / "shared"
PASSWORD = "correct-horse-42"
# A Monday in an ordinary working week (no holiday near): 2026-11-16 09:00.
MONDAY_9 = datetime(2026, 11, 16, 9, 0)


def _postgres_reachable() -> str | None:
    try:
        engine = create_engine(
            PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: skip PostgreSQL with the reason
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    reason = _postgres_reachable()
    if reason:
        pytest.skip(reason)
    name = f"hotline_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing() -> None:
    """Real argon2, with light parameters: staff are created in nearly every test."""
    from argon2 import PasswordHasher

    from core.accounts import service

    service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head; each test gets a copy (migrating per test is slow)."""
    from core.db import make_engine

    path = tmp_path_factory.mktemp("template") / "hotline.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        target = tmp_path / "hotline.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    url = request.getfixturevalue("pg_database")
    yield url
    # Empty every table so the next test starts clean (faster than a new database per test).
    engine = create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def make_settings(db_url: str, **sections: dict[str, object]) -> Settings:
    data: dict[str, object] = {"database": {"url": db_url}, **sections}
    return parse_settings(data, "test", REPO_ROOT)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_9)


@pytest.fixture
def ctx(db_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[HotlineContext]:
    monkeypatch.delenv("HOTLINE_DATABASE_URL", raising=False)
    context = HotlineContext.from_settings(make_settings(db_url), clock=clock)
    with context.unit_of_work() as session:
        load_departments(session)
        sync_category_tree(session, load_category_tree(REPO_ROOT / "dispatch" / "category_tree.toml"))
    yield context
    context.close()


@dataclass
class Staff:
    operator: Actor
    operator2: Actor
    supervisor: Actor
    admin: Actor
    water: Actor  # liaison of the water company (sw)
    water2: Actor  # a second liaison of the same department
    city: Actor  # liaison of 城管局 (cgj)
    users: dict[str, User]


@pytest.fixture
def staff(ctx: HotlineContext) -> Staff:
    from sqlalchemy import select

    from core.departments import Department

    people = [
        ("op1", Role.OPERATOR, None),
        ("op2", Role.OPERATOR, None),
        ("sup", Role.SUPERVISOR, None),
        ("adm", Role.ADMIN, None),
        ("sw1", Role.LIAISON, "sw"),
        ("sw2", Role.LIAISON, "sw"),
        ("cg1", Role.LIAISON, "cgj"),
    ]
    users: dict[str, User] = {}
    with ctx.unit_of_work() as session:
        for username, role, dept in people:
            dept_id = session.scalar(select(Department.id).where(Department.code == dept)) if dept else None
            users[username] = create_user(
                session, username, PASSWORD, role, username, ctx.clock.now(), dept_id
            )
    a = {name: actor_of(u) for name, u in users.items()}
    return Staff(a["op1"], a["op2"], a["sup"], a["adm"], a["sw1"], a["sw2"], a["cg1"], users)


def subcategory_id(session: Session, name: str) -> int:
    from sqlalchemy import select

    from dispatch.models import SubCategory

    value = session.scalar(select(SubCategory.id).where(SubCategory.name == name))
    assert value is not None, name
    return value
