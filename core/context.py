"""What every domain may ask of the running hotline, as a protocol: settings, the database, the
clock and the live-event bus. The concrete context is assembled on the top floor
(`hotline.context.HotlineContext`); each domain states what more it needs in its own `context.py`
(e.g. `dispatch.context.DispatchContext`), so no domain imports the floor that composes it."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.events import EventBus
from core.settings import AuthSection, HotlineSection


class CoreSettings(Protocol):
    @property
    def hotline(self) -> HotlineSection: ...
    @property
    def auth(self) -> AuthSection: ...
    @property
    def base_dir(self) -> Path: ...
    @property
    def database_url(self) -> str: ...
    @property
    def config_file(self) -> Path | None: ...
    def resolve(self, path: Path) -> Path: ...


class Context(Protocol):
    @property
    def settings(self) -> CoreSettings: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def sessions(self) -> sessionmaker[Session]: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def events(self) -> EventBus: ...
    def unit_of_work(self) -> AbstractContextManager[Session]: ...
