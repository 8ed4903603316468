"""The one error base of the hotline. A refused request raises a `HotlineError` (or a subclass): it
carries an English message for logs and API clients, a Chinese one for screens, the HTTP status it
maps to and any headers; nothing was changed. The web application turns every one of them into the
same response shape with one handler."""

from __future__ import annotations


class HotlineError(Exception):
    """Base class: the request was refused and nothing was changed."""

    status = 400

    def __init__(self, message: str, zh: str | None = None) -> None:
        super().__init__(message)
        self.zh = zh or message

    @property
    def headers(self) -> dict[str, str] | None:
        return None


class Unauthenticated(HotlineError):
    """A missing or wrong credential, key, signature or timestamp."""

    status = 401


class NotPermitted(HotlineError):
    """The actor's role or department may not do this."""

    status = 403


class NotFound(HotlineError):
    status = 404


class Conflict(HotlineError):
    """The request collides with the current state of things."""

    status = 409


class ConcurrentChange(Conflict):
    """Someone else changed the same thing at the same moment; their change won."""


class TooLarge(HotlineError):
    status = 413


class UnsupportedMediaType(HotlineError):
    """The body is not in the format the endpoint takes (e.g. not JSON)."""

    status = 415


class RuleViolation(HotlineError):
    """A business rule refuses the action (a return after the window, a too-long extension …)."""

    status = 422


class RateLimited(HotlineError):
    status = 429

    def __init__(self, message: str, zh: str, retry_after: int) -> None:
        super().__init__(message, zh)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class Unavailable(HotlineError):
    """A part the request needs (the database, its disk) cannot take it now: nothing was saved, and
    trying again later may work. Not a race with another person (that is `ConcurrentChange`)."""

    status = 503

    def __init__(self, message: str, zh: str, retry_after: int = 5) -> None:
        super().__init__(message, zh)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}
