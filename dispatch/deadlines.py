"""The deadline rules as dispatch sees them: an interface, implemented by the working-day engine of
`sla` (`sla.deadlines.DeadlineRules`) and handed in by the top floor, so dispatch imports nothing above
it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol


class DeadlinePolicy(Protocol):
    """When a department's time runs out, and the limits on returns and extensions."""

    @property
    def return_window_working_days(self) -> int: ...
    @property
    def max_extension_working_days(self) -> int: ...
    def at_dispatch(
        self, working_days: int, emergency: bool, at: datetime
    ) -> tuple[datetime, datetime | None]: ...
    def return_deadline(self, dispatched_at: datetime) -> datetime: ...
    def return_allowed(self, dispatched_at: datetime, now: datetime) -> bool: ...
    def extended(self, deadline: datetime, days: int) -> datetime: ...
    def working_time_between(self, a: datetime, b: datetime) -> timedelta: ...
    def after_time_returned(
        self, deadline: datetime, returned_at: datetime, now: datetime, emergency: bool
    ) -> datetime: ...
