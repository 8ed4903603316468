"""Everything a running hotline process shares: settings, database, calendar, deadline rules, clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, SystemClock
from core.db import make_engine, make_session_factory, unit_of_work
from core.events import EventBus
from dispatch.county_map import CountyMap, county_map_at
from dispatch.duplicates import DuplicateIndex
from dispatch.flows import CallTickets, Understanding
from dispatch.gazetteer import Gazetteer, GazetteerError, gazetteer_at
from dispatch.service import RegistrationWatcher, TicketService
from hotline.config import Settings
from sla.calendar import WorkCalendar
from sla.deadlines import DeadlineRules

log = logging.getLogger(__name__)


@dataclass
class HotlineContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    calendar: WorkCalendar
    rules: DeadlineRules
    clock: Clock = field(default_factory=SystemClock)
    # Live updates for the pages; publishers anywhere in the process, subscribers are SSE streams.
    events: EventBus = field(default_factory=EventBus)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> HotlineContext:
        engine = make_engine(settings.database_url, settings.database.echo)
        calendar = WorkCalendar.from_config(settings.sla.calendar)
        rules = DeadlineRules(
            calendar=calendar,
            return_window_working_days=settings.sla.return_window_working_days,
            max_extension_working_days=settings.sla.max_extension_working_days,
            emergency_first_reply_minutes=settings.sla.emergency_first_reply_minutes,
        )
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            calendar=calendar,
            rules=rules,
            clock=clock or SystemClock(settings.hotline.timezone),
        )

    @cached_property
    def understanding(self) -> Understanding:
        """What the speech service asks of the knowledge base and the router."""
        return Understanding(self.clock)

    @property
    def call_tickets(self) -> CallTickets:
        """What the call centre asks of the tickets (screen pop, callback requests)."""
        return CallTickets(self.rules, self.clock, self.settings.dispatch.ticket_number_digits)

    @property
    def gazetteer(self) -> Gazetteer:
        """The county's gazetteer, read again when its file changes."""
        return gazetteer_at(self.settings.resolve(self.settings.dispatch.gazetteer))

    @property
    def county_map(self) -> CountyMap:
        """The county's community polygons, read again when the file changes."""
        return county_map_at(self.settings.resolve(self.settings.dispatch.county_map), self.gazetteer)

    def tickets(self, session: Session) -> TicketService:
        digits, review = self.settings.dispatch.ticket_number_digits, self.settings.dispatch.review_replies
        try:
            places: Gazetteer | None = self.gazetteer
        except GazetteerError as exc:
            # Edited into a broken state while running: tickets are still taken, just not placed.
            log.error("tickets are registered without a place: %s", exc)
            places = None
        return TicketService(session, self.rules, self.clock, digits, review, places, self.watchers)

    @cached_property
    def watchers(self) -> list[RegistrationWatcher]:
        """What looks at every new ticket: the hotspot warning's sensitive-words lane, and the duplicate
        finder's vectors (made while the ticket is registered, so the next call about it is compared
        at once)."""
        from sla.hotspots import SensitiveLane

        return [
            SensitiveLane(self.settings.sla.hotspots, lambda: self.gazetteer, self.events.publish),
            DuplicateIndex(self._gazetteer_or_none),
        ]

    def _gazetteer_or_none(self) -> Gazetteer | None:
        try:
            return self.gazetteer
        except GazetteerError:
            return None

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        with unit_of_work(self.sessions) as session:
            yield session

    def relay_events(self) -> None:
        """Split mode: live updates go through PostgreSQL (LISTEN/NOTIFY), so a console sees what any
        process did, whichever web process it is connected to."""
        from core.event_relay import PgEventRelay

        self.events.attach(PgEventRelay(self.settings.database_url))

    def close(self) -> None:
        self.events.close()
        self.engine.dispose()
