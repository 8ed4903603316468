"""Errors of the ticket core, on the one base of `core.errors` (English and Chinese message, HTTP
status). The refusals every domain shares (not permitted, a rule, a concurrent change) live there."""

from __future__ import annotations

from core.errors import HotlineError, NotFound


class TicketError(HotlineError):
    """A ticket action was refused and nothing was changed."""


class TicketNotFound(TicketError, NotFound):
    status = 404


class IllegalTransition(TicketError):
    """The action does not lead anywhere from the ticket's current state."""

    status = 409

    def __init__(self, number: str, state: str, action: str, state_zh: str, action_zh: str) -> None:
        super().__init__(
            f"ticket {number} is {state}; action '{action}' is not allowed in that state",
            f"工单 {number} 当前状态为「{state_zh}」，不能执行「{action_zh}」",
        )
        self.number, self.state, self.action = number, state, action
