"""Rate limits kept in the database (fixed windows), so they hold across requests, restarts and
several app processes alike. Keys are stored hashed: no address or phone number in this table."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.db import unit_of_work
from core.errors import RateLimited
from dispatch.intake.models import RateCounter
from dispatch.intake.settings import RateLimit

EPOCH = datetime(2000, 1, 1)


def window_of(now: datetime, rule: RateLimit) -> tuple[datetime, datetime]:
    """The fixed window `now` falls in: [start, end)."""
    seconds = int((now - EPOCH).total_seconds())
    start = EPOCH + timedelta(seconds=seconds - seconds % rule.seconds)
    return start, start + timedelta(seconds=rule.seconds)


def hashed(scope: str, key: str) -> str:
    return hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()


class RateLimiter:
    """Each call commits on its own: a request refused or failing afterwards still counts."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    def hit(self, scope: str, key: str, rule: RateLimit, what_zh: str) -> int:
        """Count one request of `key`; raise RateLimited if that makes more than the rule allows."""
        now = self.clock.now()
        start, end = window_of(now, rule)
        digest = hashed(scope, key)
        with unit_of_work(self.sessions) as session:
            count = _increment(session, scope, digest, start)
            # Older windows of this key are of no use any more.
            session.execute(
                delete(RateCounter).where(
                    RateCounter.scope == scope, RateCounter.key == digest, RateCounter.window_start < start
                )
            )
        if count > rule.limit:
            raise _limited(scope, what_zh, rule, end, now)
        return count

    def check(self, scope: str, key: str, rule: RateLimit, what_zh: str) -> None:
        """Raise RateLimited if `key` already used up its window (counting nothing)."""
        now = self.clock.now()
        start, end = window_of(now, rule)
        with self.sessions() as session:
            count = session.scalar(
                select(RateCounter.count).where(
                    RateCounter.scope == scope,
                    RateCounter.key == hashed(scope, key),
                    RateCounter.window_start == start,
                )
            )
        if count is not None and count >= rule.limit:
            raise _limited(scope, what_zh, rule, end, now)


def _limited(scope: str, what_zh: str, rule: RateLimit, end: datetime, now: datetime) -> RateLimited:
    wait = max(1, int((end - now).total_seconds()))
    minutes = (wait + 59) // 60
    return RateLimited(
        f"too many requests ({scope}: at most {rule.limit} per {rule.seconds} s); try again in {wait} s",
        f"{what_zh}过于频繁，请 {minutes} 分钟后再试",
        wait,
    )


def _increment(session: Session, scope: str, key: str, start: datetime) -> int:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = (
        insert(RateCounter)
        .values(scope=scope, key=key, window_start=start, count=1)
        .on_conflict_do_update(
            index_elements=[RateCounter.scope, RateCounter.key, RateCounter.window_start],
            set_={"count": RateCounter.count + 1},
        )
        .returning(RateCounter.count)
    )
    return session.execute(statement).scalar_one()
