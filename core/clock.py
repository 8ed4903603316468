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
    """Whole seconds by default (tickets, deadlines); `precise` keeps microseconds (call records,
    where the speed of answer is measured in fractions of a second)."""

    def __init__(self, timezone: str = "Asia/Shanghai", precise: bool = False) -> None:
        self._zone = ZoneInfo(timezone)
        self.timezone = timezone
        self.precise = precise

    def now(self) -> datetime:
        moment = datetime.now(self._zone).replace(tzinfo=None)
        return moment if self.precise else moment.replace(microsecond=0)

    def from_epoch(self, epoch: float) -> datetime:
        """A Unix time (as another process measured it) in the hotline's naive local time."""
        return datetime.fromtimestamp(epoch, self._zone).replace(tzinfo=None)


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
