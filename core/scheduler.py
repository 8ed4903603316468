"""The one scheduler of a `hotline serve` process (APScheduler 3, in-memory job store, on the
running event loop). Each domain registers its periodic jobs in its own `scheduled.py`; a job that
is a plain function runs in a worker thread, a coroutine on the loop. Every job runs once at start-up
too, to catch up on what fell due while the process was down."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler


class Jobs:
    def __init__(self, timezone: str) -> None:
        self.timezone = timezone
        self._scheduler = AsyncIOScheduler(timezone=timezone)

    def every(self, seconds: float, func: Callable[..., Any], *, id: str, args: Sequence[Any] = ()) -> None:
        self._scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            args=list(args),
            id=id,
            max_instances=1,  # a slow run is never overtaken by the next
            coalesce=True,
            next_run_time=datetime.now(ZoneInfo(self.timezone)),
        )

    @property
    def ids(self) -> list[str]:
        return [job.id for job in self._scheduler.get_jobs()]

    def start(self) -> None:
        if self._scheduler.get_jobs():
            self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
