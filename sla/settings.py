"""Configuration of the working-day calendar (local holidays, make-up days, office hours)."""

from __future__ import annotations

import datetime
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from core.settings import Section

# Strict "HH:MM-HH:MM": a typo in office hours silently shifts every deadline, so reject rather than guess.
_PERIOD_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

Period = tuple[datetime.time, datetime.time]


def parse_period(text: str) -> Period:
    """Parse one "HH:MM-HH:MM" working-hours period; raise ValueError naming the value and the reason."""
    match = _PERIOD_RE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"working_hours entry {text!r} is not of the form 'HH:MM-HH:MM'")
    sh, sm, eh, em = (int(g) for g in match.groups())
    try:
        start, end = datetime.time(sh, sm), datetime.time(eh, em)
    except ValueError as exc:
        raise ValueError(f"working_hours entry {text!r} has an invalid time: {exc}") from None
    if start >= end:
        raise ValueError(f"working_hours entry {text!r} does not start before it ends")
    return start, end


class CalendarSettings(BaseModel):
    """Local overrides on top of the official Chinese calendar, plus the office hours of a working day."""

    model_config = ConfigDict(extra="forbid")

    extra_holidays: list[datetime.date] = []
    extra_workdays: list[datetime.date] = []
    working_hours: list[str] = ["08:30-12:00", "14:30-17:30"]

    @field_validator("working_hours")
    @classmethod
    def _check_working_hours(cls, value: list[str]) -> list[str]:
        if not value:
            # The deadline is "end of the last period", so at least one period is required.
            raise ValueError("working_hours must contain at least one 'HH:MM-HH:MM' period")
        previous: tuple[str, Period] | None = None
        for text in value:
            period = parse_period(text)
            if previous is not None and period[0] < previous[1][1]:
                raise ValueError(
                    f"working_hours entry {text!r} starts before the previous entry {previous[0]!r} ends "
                    "(periods must be sorted and must not overlap)"
                )
            previous = (text, period)
        return [text.strip() for text in value]

    @field_validator("extra_workdays")
    @classmethod
    def _check_no_conflict(cls, value: list[datetime.date], info: ValidationInfo) -> list[datetime.date]:
        # extra_holidays is declared first, so it is already validated here (absent if it failed).
        holidays = set(info.data.get("extra_holidays", ()))
        both = sorted(set(value) & holidays)
        if both:
            days = ", ".join(day.isoformat() for day in both)
            raise ValueError(f"date(s) {days} listed in both extra_holidays and extra_workdays")
        return value

    def periods(self) -> list[Period]:
        """The working-hours periods as (start, end) times, sorted and non-overlapping."""
        return [parse_period(text) for text in self.working_hours]


class WarningLevel(BaseModel):
    """One level of electronic supervision (电子督办), raised once per ticket and deadline."""

    model_config = ConfigDict(extra="forbid")

    # Short code stored with each warning ("due_soon", "overdue" …).
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,23}$")
    # Shown on screen.
    label: str = Field(min_length=1, max_length=32)
    # due_within: the deadline is less than `working_hours` of working time away;
    # overdue: the deadline has passed; not_signed: dispatched `minutes` ago and nobody signed.
    kind: Literal["due_within", "overdue", "not_signed"]
    working_hours: float | None = Field(default=None, gt=0, le=24 * 30)
    minutes: int | None = Field(default=None, gt=0, le=24 * 60)
    # Only tickets of these category handlings (empty: all): "department", "supervision_centre", "emergency".
    handlings: list[Literal["department", "supervision_centre", "emergency"]] = []
    # Put the ticket under supervision (督办) as a ticket event when this level is raised.
    supervise: bool = False

    @model_validator(mode="after")
    def _parameters_of_kind(self) -> WarningLevel:
        if self.kind == "due_within" and self.working_hours is None:
            raise ValueError(f"warning {self.name!r}: kind due_within needs working_hours")
        if self.kind == "not_signed" and self.minutes is None:
            raise ValueError(f"warning {self.name!r}: kind not_signed needs minutes")
        return self


DEFAULT_WARNINGS = [
    WarningLevel(name="due_soon", label="即将到期", kind="due_within", working_hours=7.0),
    WarningLevel(name="overdue", label="已超期", kind="overdue", supervise=True),
    WarningLevel(
        name="emergency_unsigned",
        label="应急工单15分钟未签收",
        kind="not_signed",
        minutes=15,
        handlings=["emergency"],
    ),
]


class SlaSection(Section):
    calendar: CalendarSettings = CalendarSettings()
    # National guidance: a department may return (退单) only within this many working days of dispatch.
    return_window_working_days: int = Field(default=2, ge=0, le=30)
    # National guidance: one extension adds at most this many working days.
    max_extension_working_days: int = Field(default=10, ge=1, le=60)
    # 应急处突: the first progress reply is due this many minutes after dispatch, in clock time.
    emergency_first_reply_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # Run the supervision sweeps inside `hotline serve` (one process at a time sweeps anyway).
    sweeps_enabled: bool = True
    sweep_interval_seconds: int = Field(default=60, ge=5, le=3600)
    warnings: list[WarningLevel] = Field(default_factory=lambda: list(DEFAULT_WARNINGS))

    @field_validator("warnings")
    @classmethod
    def _unique_names(cls, value: list[WarningLevel]) -> list[WarningLevel]:
        names = [level.name for level in value]
        if len(set(names)) != len(names):
            raise ValueError(f"warning names must be unique, got {names}")
        return value
