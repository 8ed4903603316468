"""Errors of the intake channels, on the one base of `core.errors`."""

from __future__ import annotations

from core.errors import Conflict, HotlineError


class IntakeError(HotlineError):
    """Bad input from another channel: nothing was created."""


class Replayed(Conflict):
    """The very same signed request came before."""
