"""Deadline rules: when a department's time runs out, and the limits on returns and extensions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sla.calendar import WorkCalendar


@dataclass(frozen=True)
class DeadlineRules:
    calendar: WorkCalendar
    return_window_working_days: int = 2
    max_extension_working_days: int = 10
    emergency_first_reply_minutes: int = 60

    def at_dispatch(
        self, working_days: int, emergency: bool, at: datetime
    ) -> tuple[datetime, datetime | None]:
        """(deadline, first reply due) for a ticket dispatched at `at`.

        Emergencies run on the clock, 24 h a day: the first progress reply is due within the hour and
        that is also the deadline the on-time rate is measured against.
        """
        if emergency:
            due = at + timedelta(minutes=self.emergency_first_reply_minutes)
            return due, due
        return self.calendar.add_working_days(at, max(working_days, 1)), None

    def return_deadline(self, dispatched_at: datetime) -> datetime:
        return self.calendar.add_working_days(dispatched_at, self.return_window_working_days)

    def return_allowed(self, dispatched_at: datetime, now: datetime) -> bool:
        return now <= self.return_deadline(dispatched_at)

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        return self.calendar.working_time_between(a, b)

    def extended(self, deadline: datetime, days: int) -> datetime:
        return self.calendar.add_working_days(deadline, days)

    def after_time_returned(
        self, deadline: datetime, returned_at: datetime, now: datetime, emergency: bool
    ) -> datetime:
        """The same department gets back exactly the time the ticket spent at the hotline.

        Working time for ordinary tickets; clock time for emergencies, which run 24 h a day.
        """
        if emergency:
            return deadline + (now - returned_at)
        lost = self.calendar.working_time_between(returned_at, now)
        return self.calendar.add_working_time(deadline, lost) if lost else deadline
