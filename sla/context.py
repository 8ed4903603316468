"""What the SLA domain needs of the running hotline: its configuration, the working-day calendar and
the deadline rules built on it. `hotline.context.HotlineContext` fits."""

from __future__ import annotations

from typing import Protocol

from core.context import Context, CoreSettings
from dispatch.gazetteer import Gazetteer
from sla.calendar import WorkCalendar
from sla.deadlines import DeadlineRules
from sla.settings import SlaSection


class SlaSettings(CoreSettings, Protocol):
    @property
    def sla(self) -> SlaSection: ...


class SlaContext(Context, Protocol):
    @property
    def settings(self) -> SlaSettings: ...
    @property
    def calendar(self) -> WorkCalendar: ...
    @property
    def rules(self) -> DeadlineRules: ...
    @property
    def gazetteer(self) -> Gazetteer: ...
