"""Errors of the ticket core. Each carries an English message and a Chinese one for screens."""

from __future__ import annotations


class TicketError(Exception):
    """Base class: the action was refused and nothing was changed."""

    status = 400

    def __init__(self, message: str, zh: str | None = None) -> None:
        super().__init__(message)
        self.zh = zh or message


class TicketNotFound(TicketError):
    status = 404


class NotPermitted(TicketError):
    """The actor's role or department may not do this."""

    status = 403


class IllegalTransition(TicketError):
    """The action does not lead anywhere from the ticket's current state."""

    status = 409

    def __init__(self, number: str, state: str, action: str, state_zh: str, action_zh: str) -> None:
        super().__init__(
            f"ticket {number} is {state}; action '{action}' is not allowed in that state",
            f"工单 {number} 当前状态为「{state_zh}」，不能执行「{action_zh}」",
        )
        self.number, self.state, self.action = number, state, action


class RuleViolation(TicketError):
    """A business rule refuses the action (a return after the window, a too-long extension …)."""

    status = 422


class ConcurrentChange(TicketError):
    """Someone else changed the ticket at the same moment; their change won."""

    status = 409
