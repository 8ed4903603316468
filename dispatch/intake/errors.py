"""Errors of the intake channels; like the ticket core's, each has an English and a Chinese message."""

from __future__ import annotations

from dispatch.errors import TicketError


class IntakeError(TicketError):
    """Bad input from another channel: nothing was created."""

    status = 400


class Unauthenticated(IntakeError):
    """A missing or wrong key, signature or timestamp."""

    status = 401


class Replayed(IntakeError):
    """The very same signed request came before."""

    status = 409


class TooLarge(IntakeError):
    status = 413


class NotFound(IntakeError):
    status = 404


class RateLimited(IntakeError):
    status = 429

    def __init__(self, message: str, zh: str, retry_after: int) -> None:
        super().__init__(message, zh)
        self.retry_after = retry_after
