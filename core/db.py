"""Engine, sessions and the declarative base shared by every package's models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from core.errors import ConcurrentChange, HotlineError, Unavailable

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the pages read while a sweep writes; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # SQLite connections are cheap and its writers queue on the file lock (busy_timeout), not on
        # the pool: enough connections for every request thread, and a short wait when they are all
        # taken (a clear "busy" answer instead of 30 s and a 500).
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False},
            pool_size=SQLITE_POOL,
            max_overflow=SQLITE_POOL,
            pool_timeout=POOL_TIMEOUT_SECONDS,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql:"):
        url = "postgresql+psycopg:" + url[len("postgresql:") :]
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=POOL_TIMEOUT_SECONDS,
    )


# --- what a database error means for the person who asked -------------------------------------------

SQLITE_POOL = 40  # as many as the web server's request threads
POOL_TIMEOUT_SECONDS = 10
_LOCK_STATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available
_DISK_FULL = ("database or disk is full", "no space left", "could not extend file", "disk full")
_GONE = (
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "unable to open database",
    "readonly database",
    "could not connect",
    "connection refused",
    "ssl connection has been closed",
)


def database_fault(exc: BaseException) -> HotlineError:
    """The refusal a database error amounts to: a race lost (409, try again at once) or the database
    unavailable (503 with Retry-After: its disk is full, its connection was cut, it is closed, or
    every connection is in use). Nothing was saved in either case."""
    if isinstance(exc, (StaleDataError, IntegrityError)):
        return _collided()
    if isinstance(exc, PoolTimeout):
        return Unavailable(
            f"every database connection is in use ({exc}); try again in a moment",
            "系统繁忙（数据库连接已满），本次操作未保存，请稍后重试",
            2,
        )
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).lower()
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in _LOCK_STATES or "database is locked" in text_ or "deadlock" in text_:
        return _collided()
    if state == "53100" or any(m in text_ for m in _DISK_FULL):
        return Unavailable(
            f"the database's disk is full: {text_[:200]}", "数据库磁盘已满，本次操作未保存，请联系管理员", 30
        )
    invalidated = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if invalidated or (state or "").startswith(("08", "57P")) or any(m in text_ for m in _GONE):
        return Unavailable(
            f"the database connection was lost: {text_[:200]}", "数据库连接中断，本次操作未保存，请稍后重试"
        )
    return Unavailable(
        f"the database refused the request: {text_[:200]}", "数据库暂时不可用，本次操作未保存，请稍后重试"
    )


def _collided() -> ConcurrentChange:
    return ConcurrentChange(
        "the change collided with another one at the same moment; reload and try again",
        "与他人的操作冲突，请刷新后重试",
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back (changing nothing) on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(session: Session) -> None:
    """Raise unless the database answers (for the health check)."""
    session.execute(text("SELECT 1"))
