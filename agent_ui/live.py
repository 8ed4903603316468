"""Live updates for the pages: server-sent events from the in-process event bus, filtered by what the
logged-in user may see. A liaison only gets events of their own department's tickets; an operator
gets the call events of their own seat; supervisors and admins get everything."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from callcenter.service import SeatService
from core.accounts.models import Role
from core.events import Event
from core.web import ContextDep, read_session, unauthorized, user_of_session

router = APIRouter(include_in_schema=False)

KEEPALIVE_SECONDS = 15.0
CALL_TOPICS = ("call.", "transcript.", "kb.")


@dataclass
class Viewer:
    """What one stream may show; an operator's calls are followed as they are offered to their seat."""

    role: Role
    department_id: int | None
    extension: str | None = None
    calls: set[str] = field(default_factory=set)

    def topics(self) -> list[str]:
        if self.role == Role.LIAISON:
            return ["ticket.", "sla."]
        return ["ticket.", "sla.", "seat", "queue", *CALL_TOPICS]

    def may_see(self, event: Event) -> bool:
        if self.role in (Role.SUPERVISOR, Role.ADMIN):
            return True
        payload = event.payload
        if self.role == Role.LIAISON:
            if event.topic.startswith("ticket."):
                return self.department_id in payload.get("department_ids", [])
            return payload.get("department_id") == self.department_id
        if event.topic.startswith(CALL_TOPICS):
            return self._own_call(event)
        return True

    def _own_call(self, event: Event) -> bool:
        uid = event.payload.get("call_uid")
        if self.extension is not None and event.payload.get("extension") == self.extension:
            if event.topic == "call.ended":
                self.calls.discard(uid)
            elif uid:
                self.calls.add(uid)
            return True
        return uid in self.calls


def viewer(request: Request, ctx: ContextDep) -> Viewer:
    """Who is watching, read in a short transaction of its own: a stream must not hold a database
    connection for as long as the page stays open."""
    with ctx.unit_of_work() as session:
        user = user_of_session(session, read_session(request))
        if user is None:
            raise unauthorized()
        seat = SeatService(session, ctx.clock).of_operator(user.id)
        return Viewer(Role(user.role), user.department_id, seat.extension if seat else None)


def _frame(event: Event) -> str:
    data = json.dumps({"topic": event.topic, "payload": event.payload, "at": event.at}, ensure_ascii=False)
    return f"id: {event.id}\ndata: {data}\n\n"


@router.get("/events")
async def events(
    request: Request, ctx: ContextDep, who: Annotated[Viewer, Depends(viewer)]
) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        async with ctx.events.subscribe(who.topics()) as queue:
            yield f"retry: 3000\n: connected to web process {os.getpid()}\n\n"
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if who.may_see(event):
                    yield _frame(event)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
