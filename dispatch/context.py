"""What the dispatch domain needs of the running hotline, stated here so that it imports nothing
above it: the deadline rules as an interface (the working-day engine of `sla` implements it), its
configuration sections and a ticket service per session. `hotline.context.HotlineContext` fits."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from core.context import Context, CoreSettings
from dispatch.callbacks.settings import CallbackSettings
from dispatch.deadlines import DeadlinePolicy
from dispatch.intake.settings import IntakeSettings
from dispatch.service import TicketService
from dispatch.settings import DispatchSection


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
