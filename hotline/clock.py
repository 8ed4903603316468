"""The hotline's clock.

All datetimes are naive local time of the hotline (config `hotline.timezone`; China has no
daylight saving, so local time is unambiguous). Deadlines and working days are local notions,
and storing local time keeps SQL on dates (today's tickets, this month's KPIs) simple.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def __init__(self, timezone: str = "Asia/Shanghai") -> None:
        self._zone = ZoneInfo(timezone)

    def now(self) -> datetime:
        return datetime.now(self._zone).replace(tzinfo=None, microsecond=0)


class ManualClock:
    """A clock that only moves when told to: lets tests and the demo data control time."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, delta: timedelta) -> None:
        self._now += delta
