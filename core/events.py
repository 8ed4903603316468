"""Publish/subscribe for the pages' live updates (screen pop, queue, seats, inbox, warnings).

Publishers (the call-centre controller, ticket services, SLA sweeps) call `publish` from any thread;
subscribers (server-sent-event streams of the pages) read from an asyncio queue each. A slow page never
blocks a publisher: its queue is bounded and the oldest event is dropped when it is full.

Alone, a bus delivers within its process. With a relay attached (`core.event_relay.PgEventRelay`:
PostgreSQL LISTEN/NOTIFY), `publish` only hands the event to the relay, and the relay delivers every
event of every process, this one's included, to the local subscribers. Either way an event's `id` is
given here on local delivery, so ids increase per process (an SSE stream's `id:`), not across them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


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


class Relay(Protocol):
    """Carries events between processes (see `core.event_relay`)."""

    def start(self, deliver: Callable[[str, dict[str, Any], str], None]) -> None: ...

    def send(self, topic: str, payload: dict[str, Any], at: str) -> None:
        """Must not block nor raise: publishers call it on their own threads."""
        ...

    def stop(self) -> None: ...


class EventBus:
    def __init__(self, queue_size: int = 256, relay: Relay | None = None) -> None:
        self._subscribers: list[_Subscriber] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._queue_size = queue_size
        self._relay: Relay | None = None
        if relay is not None:
            self.attach(relay)

    def attach(self, relay: Relay) -> None:
        """From now on events go through `relay`, which delivers them back here (and elsewhere)."""
        if self._relay is not None:
            raise RuntimeError("a relay is already attached")
        relay.start(self._deliver)
        self._relay = relay

    def detach(self) -> Relay | None:
        """Stop the relay; publishing is local again. Returns the relay that was attached."""
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.stop()
        return relay

    def close(self) -> None:
        self.detach()

    @property
    def relay(self) -> Relay | None:
        return self._relay

    def publish(self, topic: str, payload: dict[str, Any]) -> Event:
        """With a relay the event comes back through it, and the one returned has no id yet (0)."""
        relay = self._relay
        if relay is None:
            event = Event(topic, payload, next(self._ids))
            self._offer(event)
            return event
        event = Event(topic, payload)
        relay.send(topic, payload, event.at)
        return event

    def _deliver(self, topic: str, payload: dict[str, Any], at: str) -> None:
        """The relay's way in, on its listener thread."""
        self._offer(Event(topic, payload, next(self._ids), at))

    def _offer(self, event: Event) -> None:
        with self._lock:
            subscribers = [s for s in self._subscribers if s.wants(event)]
        for sub in subscribers:
            # A subscriber whose loop has closed unsubscribes itself on the way out.
            with contextlib.suppress(RuntimeError):
                sub.loop.call_soon_threadsafe(sub.offer, event)

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
