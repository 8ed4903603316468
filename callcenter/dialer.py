"""Placing calls out, as other domains see the call centre: the callback surveys and an operator's
callback ring citizens through this interface, never the queue controller's insides. The controller
(`callcenter.controller.Controller`) is the real adapter; the tests drive it against Kamailio, pjsua2
workers and SIPp phones."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from callcenter.prompts import Prompts

if TYPE_CHECKING:
    from callcenter.controller import LiveCall, Menu


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
    ) -> LiveCall:
        """Call `number`; play `files` (or the `menu`) when it answers; `.done` tells how it ended."""
        ...

    async def call_for_seat(
        self, number: str, extension: str, ticket_id: int | None = None, timeout: float = 40
    ) -> LiveCall:
        """Call the citizen, then ring the operator's seat phone and bridge both."""
        ...
