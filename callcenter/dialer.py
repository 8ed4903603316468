"""Placing calls out, as other domains see the call centre: the callback surveys and an operator's
callback ring citizens through this interface, never the queue controller's insides. The controller
(`callcenter.controller.Controller`) is the real adapter; the tests drive it against Kamailio, pjsua2
workers and SIPp phones."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from callcenter.prompts import Prompts


class PlacedCall(Protocol):
    """A call placed out: its id, and a future resolved with how it ended (keys pressed, cause)."""

    uid: str
    done: asyncio.Future[dict[str, Any]] | None


@dataclass
class Menu:
    """Prompts and keys to press on an outbound call (the callback survey): `opening` and `question`
    play when the citizen answers; no key or a wrong one within `wait_seconds` plays `retry` and the
    question again (`repeats` times), then `goodbye`. A valid key asks the `follow_up` question, if
    any, the same way (without an answer to it the first one still stands), then plays `thanks`.
    Then the call is hung up."""

    opening: list[Path]
    question: list[Path]
    retry: list[Path]
    thanks: list[Path]
    goodbye: list[Path]
    valid: str = "123"
    wait_seconds: float = 6.0
    repeats: int = 1
    follow_up: list[Path] = field(default_factory=list)
    follow_valid: str = "12"
    stage: int = 1
    tries: int = 0
    wrong_key: bool = False
    choice: str | None = None
    follow_choice: str | None = None
    outcome: str | None = None  # chosen, no_input, invalid_input; None while asking (or hung up)
    deadline: float | None = None


class Dialer(Protocol):
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the dialer runs on (it is not thread-safe: call it there)."""
        ...

    @property
    def prompts(self) -> Prompts: ...

    def idle_workers(self) -> int:
        """Media workers free to place a call now."""
        ...

    async def dial(
        self,
        number: str,
        files: list[Path],
        timeout: float = 30,
        ticket_id: int | None = None,
        hold: float | None = None,
        menu: Menu | None = None,
    ) -> PlacedCall:
        """Call `number`; play `files` (or the `menu`) when it answers; `.done` tells how it ended."""
        ...

    async def call_for_seat(
        self, number: str, extension: str, ticket_id: int | None = None, timeout: float = 40
    ) -> PlacedCall:
        """Call the citizen, then ring the operator's seat phone and bridge both."""
        ...
