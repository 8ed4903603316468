"""Live events across processes through PostgreSQL LISTEN/NOTIFY (`core.event_relay`).

Two buses, each with a relay of its own on the same database, stand in for two processes. Subscribers
are real asyncio subscribers, each on a loop in a thread of its own; the tests poll with deadlines.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from types import TracebackType

import psycopg
import pytest

from core.event_relay import BODIES_TABLE, PgEventRelay, libpq_url
from core.events import Event, EventBus

DEADLINE = 5.0


class Collector:
    """Subscribes to `bus` on an event loop of its own and keeps what arrives."""

    def __init__(self, bus: EventBus, topics: list[str] | None = None) -> None:
        self.bus = bus
        self.topics = topics
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        async with self.bus.subscribe(self.topics) as queue:
            self._ready.set()
            while not self._stop.is_set():
                try:
                    event = await asyncio.wait_for(queue.get(), 0.05)
                except TimeoutError:
                    continue
                with self._lock:
                    self._events.append(event)

    def __enter__(self) -> Collector:
        self._thread.start()
        assert self._ready.wait(DEADLINE), "subscriber did not start"
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def wait_for(self, topic: str, timeout: float = DEADLINE) -> list[Event]:
        """Everything received up to and including the first event of `topic`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events
            for index, event in enumerate(events):
                if event.topic == topic:
                    return events[: index + 1]
            time.sleep(0.01)
        raise AssertionError(f"no {topic} within {timeout} s; got {[e.topic for e in self.events]}")


def wait_until(check: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout} s: {what}")


def seen(events: list[Event]) -> list[tuple[str, dict[str, object]]]:
    return [(e.topic, e.payload) for e in events]


@pytest.fixture(scope="module")
def pg_url(pg_database: str) -> Iterator[str]:
    yield pg_database
    # The relay's scratch table is not one of the models: drop it, the migration tests compare the
    # shared database with the models.
    with psycopg.connect(libpq_url(pg_database), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {BODIES_TABLE}")


@pytest.fixture
def admin(pg_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def make_bus(pg_url: str) -> Iterator[Callable[..., tuple[EventBus, PgEventRelay]]]:
    """Buses with a relay each on one fresh channel (nothing left over from another test reaches them)."""
    channel = f"test_events_{uuid.uuid4().hex[:8]}"
    made: list[tuple[EventBus, PgEventRelay]] = []

    def make(
        max_pending: int = 10_000, start: bool = True, queue_size: int = 256
    ) -> tuple[EventBus, PgEventRelay]:
        relay = PgEventRelay(pg_url, channel, max_pending=max_pending)
        bus = EventBus(queue_size, relay=relay) if start else EventBus(queue_size)
        made.append((bus, relay))
        if start:
            wait_until(lambda: relay.connected, "relay connected")
        return bus, relay

    yield make
    for bus, relay in made:
        bus.close()
        relay.stop()
        assert not any(t.is_alive() for t in relay.threads)


def terminate(admin: psycopg.Connection[tuple[object, ...]], pid: int) -> None:
    row = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert row == (True,)
    wait_until(
        lambda: (
            admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() == (0,)
        ),
        f"backend {pid} gone",
    )


def test_url_for_libpq() -> None:
    assert libpq_url("postgresql+psycopg://u@127.0.0.1:5432/db") == "postgresql://u@127.0.0.1:5432/db"
    assert libpq_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert libpq_url("host=h dbname=a+b") == "host=h dbname=a+b"


def test_bus_without_relay_delivers_locally() -> None:
    bus = EventBus()

    async def scenario() -> tuple[list[Event], list[Event]]:
        async with bus.subscribe(["call."]) as calls, bus.subscribe() as everything:
            first = bus.publish("call.offered", {"call_uid": "c1"})
            bus.publish("queue", {"waiting": 2})
            assert first.id == 1  # given at once, as before
            got_calls = [await asyncio.wait_for(calls.get(), DEADLINE)]
            got_all = [await asyncio.wait_for(everything.get(), DEADLINE) for _ in range(2)]
            assert calls.empty()
            return got_calls, got_all

    got_calls, got_all = asyncio.run(scenario())
    assert [(e.topic, e.id) for e in got_calls] == [("call.offered", 1)]
    assert [(e.topic, e.id, e.payload) for e in got_all] == [
        ("call.offered", 1, {"call_uid": "c1"}),
        ("queue", 2, {"waiting": 2}),
    ]
    assert bus.relay is None
    bus.close()  # harmless without a relay


@pytest.mark.postgres
def test_event_reaches_both_processes_once_in_order(
    make_bus: Callable[..., tuple[EventBus, PgEventRelay]],
) -> None:
    bus_a, _ = make_bus()
    bus_b, _ = make_bus()
    with (
        Collector(bus_a, ["call."]) as a_calls,
        Collector(bus_b, ["call."]) as b_calls,
        Collector(bus_b, ["queue"]) as b_queue,
    ):
        returned = bus_a.publish("call.offered", {"call_uid": "c1", "caller": "张三"})
        bus_a.publish("queue", {"waiting": 1})
        bus_a.publish("call.answered", {"call_uid": "c1", "extension": "8001"})
        bus_a.publish("seat", {"extension": "8001"})  # nobody here wants seats
        bus_a.publish("call.ended", {"call_uid": "c1"})
        bus_a.publish("call.zz_end", {})  # marks the end: one sender's events arrive in order

        assert returned.id == 0 and returned.topic == "call.offered"
        expected = [
            ("call.offered", {"call_uid": "c1", "caller": "张三"}),
            ("call.answered", {"call_uid": "c1", "extension": "8001"}),
            ("call.ended", {"call_uid": "c1"}),
            ("call.zz_end", {}),
        ]
        for collector in (a_calls, b_calls):
            got = collector.wait_for("call.zz_end")
            assert seen(got) == expected
            ids = [e.id for e in got]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert b_calls.events[0].at == returned.at  # the publisher's time, not the receiver's
        assert seen(b_queue.wait_for("queue")) == [("queue", {"waiting": 1})]

        # And the other way round.
        bus_b.publish("call.offered", {"call_uid": "c2"})
        bus_b.publish("queue.zz_end", {})
        bus_b.publish("call.zz_end_b", {})
        for collector in (a_calls, b_calls):
            got = collector.wait_for("call.zz_end_b")
            assert seen(got) == [*expected, ("call.offered", {"call_uid": "c2"}), ("call.zz_end_b", {})]
        assert seen(b_queue.wait_for("queue.zz_end")) == [("queue", {"waiting": 1}), ("queue.zz_end", {})]


@pytest.mark.postgres
def test_publishers_on_many_threads(make_bus: Callable[..., tuple[EventBus, PgEventRelay]]) -> None:
    """Each thread's events arrive once and in its order (the relay numbers them as it queues them)."""
    bus_a, relay_a = make_bus()
    bus_b, _ = make_bus(queue_size=10_000)
    threads, per_thread = 4, 300

    def publish(name: int) -> None:
        for n in range(per_thread):
            bus_a.publish("call.offered", {"thread": name, "n": n})

    with Collector(bus_b, ["call."]) as b:
        workers = [threading.Thread(target=publish, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        bus_a.publish("call.zz_end", {})
        got = b.wait_for("call.zz_end", 10.0)
    assert len(got) == threads * per_thread + 1
    for t in range(threads):
        assert [e.payload["n"] for e in got if e.payload.get("thread") == t] == list(range(per_thread))
    assert relay_a.pending == 0


@pytest.mark.postgres
def test_payload_over_notify_limit_goes_through_the_table(
    make_bus: Callable[..., tuple[EventBus, PgEventRelay]], admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    bus_a, _ = make_bus()
    bus_b, _ = make_bus()
    text = ("市民来电反映噪声扰民" * 2000)[:20_000]
    assert len(text.encode()) > 8000
    with Collector(bus_b, ["transcript."]) as b:
        bus_a.publish("transcript.done", {"call_uid": "c9", "text": text})
        bus_a.publish("transcript.zz_end", {"call_uid": "c9"})
        got = b.wait_for("transcript.zz_end")
    assert seen(got) == [
        ("transcript.done", {"call_uid": "c9", "text": text}),
        ("transcript.zz_end", {"call_uid": "c9"}),
    ]
    row = admin.execute(f"SELECT count(*) FROM {BODIES_TABLE} WHERE body LIKE %s", ("%c9%",)).fetchone()
    assert row == (1,)


@pytest.mark.postgres
def test_listener_comes_back_after_its_connection_is_killed(
    make_bus: Callable[..., tuple[EventBus, PgEventRelay]], admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    bus_a, relay_a = make_bus()
    bus_b, _ = make_bus()
    old = relay_a.listener_backend_pid
    assert old is not None
    listening = admin.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%'").fetchall()
    assert (old,) in listening
    with Collector(bus_a, ["call."]) as a:
        terminate(admin, old)
        # NOTIFY is not stored: what is sent before the listener is back is lost, so wait for it.
        wait_until(lambda: relay_a.listener_backend_pid not in (None, old), "listener back", 3.0)
        bus_b.publish("call.offered", {"call_uid": "from-b"})
        bus_a.publish("call.ended", {"call_uid": "from-a"})
        a.wait_for("call.ended")
        wait_until(lambda: len(a.events) == 2, "both events at bus A")
        assert sorted(e.payload["call_uid"] for e in a.events) == ["from-a", "from-b"]
    assert relay_a.connected


@pytest.mark.postgres
def test_sender_resends_after_its_connection_is_killed(
    make_bus: Callable[..., tuple[EventBus, PgEventRelay]], admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    bus_a, relay_a = make_bus()
    bus_b, _ = make_bus()
    old = relay_a.sender_backend_pid
    assert old is not None
    with Collector(bus_b, ["call."]) as b:
        terminate(admin, old)
        # Published at once: the first attempt meets the dead connection, the event stays queued.
        bus_a.publish("call.offered", {"call_uid": "c1"})
        bus_a.publish("call.zz_end", {})
        got = b.wait_for("call.zz_end")
        assert seen(got) == [("call.offered", {"call_uid": "c1"}), ("call.zz_end", {})]
    assert relay_a.sender_backend_pid not in (None, old)  # it did reconnect
    assert relay_a.pending == 0


@pytest.mark.postgres
def test_events_wait_while_the_database_is_unreachable(
    make_bus: Callable[..., tuple[EventBus, PgEventRelay]], admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    bus_a, relay_a = make_bus()
    bus_b, _ = make_bus()
    url = relay_a.url
    relay_a.url = "postgresql://nobody@127.0.0.1:1/none"  # reconnecting fails until put back
    old = relay_a.sender_backend_pid
    assert old is not None
    with Collector(bus_b, ["call."]) as b:
        terminate(admin, old)
        for n in range(3):
            bus_a.publish("call.offered", {"n": n})
        wait_until(lambda: relay_a.sender_backend_pid is None, "sender noticed")
        time.sleep(0.6)  # at least one failed reconnection
        assert not relay_a.connected
        assert relay_a.pending == 3
        assert b.events == []
        relay_a.url = url
        bus_a.publish("call.zz_end", {})
        got = b.wait_for("call.zz_end", 10.0)  # the retry delay has grown meanwhile
    assert seen(got) == [("call.offered", {"n": n}) for n in range(3)] + [("call.zz_end", {})]


@pytest.mark.postgres
def test_full_queue_drops_the_oldest(
    make_bus: Callable[..., tuple[EventBus, PgEventRelay]], caplog: pytest.LogCaptureFixture
) -> None:
    bus_b, _ = make_bus()
    bus_a, relay_a = make_bus(max_pending=3, start=False)
    with caplog.at_level(logging.WARNING, "core.event_relay"):
        for n in range(4):
            relay_a.send("call.offered", {"n": n}, "2026-11-16T09:00:00")
        relay_a.send("call.zz_end", {}, "2026-11-16T09:00:00")
    assert relay_a.pending == 3
    assert "live-event queue full (3 waiting): 1 oldest dropped" in caplog.text  # then every 10 s
    with Collector(bus_b, ["call."]) as b:
        bus_a.attach(relay_a)  # sends what was kept
        got = b.wait_for("call.zz_end")
    assert seen(got) == [("call.offered", {"n": 2}), ("call.offered", {"n": 3}), ("call.zz_end", {})]


@pytest.mark.postgres
def test_publisher_never_fails_on_an_unencodable_payload(
    make_bus: Callable[..., tuple[EventBus, PgEventRelay]], caplog: pytest.LogCaptureFixture
) -> None:
    bus_a, relay_a = make_bus()
    with caplog.at_level(logging.ERROR, "core.event_relay"):
        bus_a.publish("call.offered", {"when": object()})
        bus_a.publish("call.offered", {"text": "\ud800"})  # a lone surrogate: not UTF-8
    assert caplog.text.count("cannot be encoded") == 2
    with Collector(bus_a, ["call."]) as a:
        bus_a.publish("call.zz_end", {})
        assert seen(a.wait_for("call.zz_end")) == [("call.zz_end", {})]
    assert relay_a.pending == 0


@pytest.mark.postgres
def test_stop_is_prompt_and_leaves_nothing_behind(
    make_bus: Callable[..., tuple[EventBus, PgEventRelay]], admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    bus, relay = make_bus()
    pids = (relay.sender_backend_pid, relay.listener_backend_pid)
    threads = relay.threads
    assert len(threads) == 2 and all(t.is_alive() for t in threads)
    started = time.monotonic()
    assert bus.detach() is relay
    assert time.monotonic() - started < 2.0
    assert not any(t.is_alive() for t in threads)
    assert not relay.connected
    wait_until(
        lambda: (
            admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)
            ).fetchone()
            == (0,)
        ),
        "relay connections closed",
    )

    async def local() -> Event:
        async with bus.subscribe() as events:
            bus.publish("queue", {"waiting": 3})
            return await asyncio.wait_for(events.get(), DEADLINE)

    event = asyncio.run(local())  # detached: local delivery again
    assert (event.topic, event.payload) == ("queue", {"waiting": 3})
