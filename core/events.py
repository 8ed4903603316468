"""In-process publish/subscribe for the pages' live updates (screen pop, queue, seats, inbox, warnings).

Publishers (the call-centre controller, ticket services, SLA sweeps) call `publish` from any thread;
subscribers (server-sent-event streams of the pages) read from an asyncio queue each. A slow page never
blocks a publisher: its queue is bounded and the oldest event is dropped when it is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Event:
    """`topic` names what happened: call.offered, call.answered, call.ended, queue, seat,
    ticket.dispatched, sla.warning, transcript.partial ...; `payload` is plain JSON."""

    topic: str
    payload: dict[str, Any]
    id: int = 0
    at: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop, topics: frozenset[str] | None, size: int) -> None:
        self.loop = loop
        self.topics = topics
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=size)

    def wants(self, event: Event) -> bool:
        return self.topics is None or any(event.topic.startswith(t) for t in self.topics)

    def offer(self, event: Event) -> None:
        """Runs on the subscriber's loop."""
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(event)


class EventBus:
    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: list[_Subscriber] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._queue_size = queue_size

    def publish(self, topic: str, payload: dict[str, Any]) -> Event:
        event = Event(topic, payload, next(self._ids))
        with self._lock:
            subscribers = [s for s in self._subscribers if s.wants(event)]
        for sub in subscribers:
            # A subscriber whose loop has closed unsubscribes itself on the way out.
            with contextlib.suppress(RuntimeError):
                sub.loop.call_soon_threadsafe(sub.offer, event)
        return event

    @asynccontextmanager
    async def subscribe(self, topics: list[str] | None = None) -> AsyncIterator[asyncio.Queue[Event]]:
        """`async with bus.subscribe(["call.", "queue"]) as events: event = await events.get()`."""
        sub = _Subscriber(asyncio.get_running_loop(), frozenset(topics) if topics else None, self._queue_size)
        with self._lock:
            self._subscribers.append(sub)
        try:
            yield sub.queue
        finally:
            with self._lock:
                self._subscribers.remove(sub)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)
