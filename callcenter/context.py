"""What the call centre needs of the running hotline: its configuration, plus what only the domains
above it know, as interfaces (the caller's earlier tickets for the screen pop, a ticket for a
callback request, suggestions from what the citizen said). `hotline.context.HotlineContext` fits."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session

from callcenter.settings import CallCenterSettings
from core.context import Context, CoreSettings


class CallCentreSettings(CoreSettings, Protocol):
    @property
    def callcenter(self) -> CallCenterSettings: ...


class CallTickets(Protocol):
    """The tickets a call touches (implemented by `dispatch.flows`)."""

    def earlier_tickets(self, session: Session, phone: str, limit: int = 5) -> list[dict[str, Any]]: ...
    def callback_request(self, session: Session, caller: str) -> tuple[int, str]:
        """Register a ticket asking an operator to call `caller` back; return its id and number."""
        ...


class Understanding(Protocol):
    """What the citizen's words mean (implemented by `knowledge_base.flows`)."""

    def knowledge_base(self, session: Session) -> Any:
        """Today's knowledge-base matcher: `.match(text, k)`, `.by_id`, `.entries`."""
        ...

    def classify(self, session: Session, text: str) -> dict[str, Any] | None:
        """Category, sub-category, department, transfer, confidence and evidence of a text, by the
        same router the console uses (with the admins' routing words)."""
        ...


class CallCentreContext(Context, Protocol):
    @property
    def settings(self) -> CallCentreSettings: ...
    @property
    def call_tickets(self) -> CallTickets: ...
    @property
    def understanding(self) -> Understanding: ...
