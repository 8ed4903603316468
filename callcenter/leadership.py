"""Exactly one active call-centre controller per hotline.

Every `hotline controller` process tries to take a lock that dies with its holder; the one that holds
it is the active controller, the others wait on standby and try again every `RETRY_SECONDS`. On
PostgreSQL it is an advisory lock on a connection of its own: `kill -9` of the holder closes the
connection and the lock is free at once; a holder whose machine vanishes is found dead by TCP
keepalives within a few seconds (set on both ends). On one box (SQLite) it is a file lock.

A holder that cannot confirm its lock any more steps down (the lock may already be someone else's).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import zlib
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("callcenter.leadership")

RETRY_SECONDS = 0.5
# The keepalive settings of the lock's connection: a vanished holder's lock is free after about
# idle + interval * count seconds.
KEEPALIVE = {"idle": 2, "interval": 1, "count": 2}


class Lease(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if it is free; True while this process holds it."""
        ...

    def holds(self) -> bool:
        """Still ours (the lock's connection or file is alive)."""
        ...

    def release(self) -> None: ...

    def describe(self) -> str: ...


def lock_key(name: str) -> int:
    """A stable 32-bit key for the advisory lock of `name` (one per hotline database)."""
    return zlib.crc32(f"hotline:{name}".encode())


class AdvisoryLease:
    """A PostgreSQL session-level advisory lock held on a connection of its own."""

    def __init__(self, url: str, name: str = "controller") -> None:
        self.url = url.replace("postgresql+psycopg:", "postgresql:", 1)
        self.name = name
        self.key = lock_key(name)
        self._conn: Any = None

    def _connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=3,
            keepalives=1,
            keepalives_idle=KEEPALIVE["idle"],
            keepalives_interval=KEEPALIVE["interval"],
            keepalives_count=KEEPALIVE["count"],
            tcp_user_timeout=3000,
            application_name=f"hotline-{self.name}-lease",
        )
        # The server side too: the lock of a holder whose machine vanished is freed within seconds.
        conn.execute(f"SET tcp_keepalives_idle = {KEEPALIVE['idle']}")
        conn.execute(f"SET tcp_keepalives_interval = {KEEPALIVE['interval']}")
        conn.execute(f"SET tcp_keepalives_count = {KEEPALIVE['count']}")
        conn.execute("SET statement_timeout = 3000")
        return conn

    def try_acquire(self) -> bool:
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error as exc:
            log.warning("cannot reach the database for the controller lock: %s", exc)
            self._drop()
            return False
        return bool(row and row[0])

    def holds(self) -> bool:
        import psycopg

        if self._conn is None or self._conn.closed:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
                "AND pid = pg_backend_pid() AND granted",
                (self.key & 0xFFFFFFFF,),
            ).fetchone()
        except psycopg.Error as exc:
            log.error("the controller lock's connection failed: %s", exc)
            self._drop()
            return False
        return bool(row and row[0])

    def release(self) -> None:
        self._drop()  # closing the session frees the lock

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    @property
    def backend_pid(self) -> int | None:
        return None if self._conn is None or self._conn.closed else int(self._conn.info.backend_pid)

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self.key}"


class FileLease:
    """One box: an exclusive lock on a file, freed by the kernel when the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holds(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def describe(self) -> str:
        return f"file lock {self.path}"


def lease_for(database_url: str, runtime_dir: Path) -> Lease:
    if database_url.startswith("postgresql"):
        return AdvisoryLease(database_url)
    return FileLease(runtime_dir / "controller.lock")
