"""What the pages need of the running hotline: everything the domains they compose need. The
concrete context is `hotline.context.HotlineContext`, assembled on the floor above."""

from __future__ import annotations

from typing import Protocol

from callcenter.context import CallCentreContext, CallCentreSettings
from dispatch.context import DispatchContext, DispatchSettings
from sla.calendar import WorkCalendar
from sla.context import SlaSettings
from sla.deadlines import DeadlineRules


class UiSettings(DispatchSettings, SlaSettings, CallCentreSettings, Protocol):
    pass


class UiContext(DispatchContext, CallCentreContext, Protocol):
    @property
    def settings(self) -> UiSettings: ...
    @property
    def calendar(self) -> WorkCalendar: ...
    @property
    def rules(self) -> DeadlineRules: ...
