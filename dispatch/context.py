"""What the dispatch domain needs of the running hotline, stated here so that it imports nothing
above it: the deadline rules as an interface (the working-day engine of `sla` implements it), its
configuration sections and a ticket service per session. `hotline.context.HotlineContext` fits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session

from core.context import Context, CoreSettings
from dispatch.callbacks.settings import CallbackSettings
from dispatch.intake.settings import IntakeSettings
from dispatch.settings import DispatchSection

if TYPE_CHECKING:  # the service imports this module for DeadlinePolicy
    from dispatch.service import TicketService


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


class DispatchSettings(CoreSettings, Protocol):
    @property
    def dispatch(self) -> DispatchSection: ...
    @property
    def intake(self) -> IntakeSettings: ...
    @property
    def callbacks(self) -> CallbackSettings: ...


class DispatchContext(Context, Protocol):
    @property
    def settings(self) -> DispatchSettings: ...
    @property
    def rules(self) -> DeadlinePolicy: ...
    def tickets(self, session: Session) -> TicketService: ...
