"""Carries the live-update events between processes through PostgreSQL LISTEN/NOTIFY.

Every process of a hotline (the `hotline serve` processes, the call-centre controller) runs one relay
beside its `EventBus`: the bus hands each published event to `send`, a *sender* thread NOTIFYs it on
one channel, and a *listener* thread in every process (this one included) receives it and delivers it
to the local subscribers. Each thread has a connection of its own and reconnects by itself.

NOTIFY payloads must be shorter than 8000 bytes: a larger event is stored in `live_event_bodies`
(a scratch table this relay creates and sweeps) and only its row id is notified.

Delivery is best effort, as for the pages' live updates: events sent while the database is away wait
in a bounded queue, but a listener that is disconnected misses what is notified meanwhile (NOTIFY
is not stored). An event re-sent after a doubtful failure is delivered once: each carries its
sender's id and a sequence number, and listeners skip what they have already seen.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

Deliver = Callable[[str, dict[str, Any], str], None]

# pg_notify refuses payloads of 8000 bytes or more.
NOTIFY_LIMIT = 8000
BODIES_TABLE = "live_event_bodies"  # in core.migrate.RUNTIME_TABLES
MAX_PENDING = 10_000
BATCH = 500  # events per round trip
RETRY_FIRST, RETRY_MAX = 0.5, 5.0
POLL = 0.5  # how often the threads look at the stop flag
SWEEP_EVERY = 60.0
BODY_MAX_AGE = "10 minutes"
PING_IDLE = 30.0  # a connection that has been quiet this long is checked with SELECT 1
DROP_LOG_EVERY = 10.0
SEEN_ORIGINS = 1000
# A vanished server or network is noticed within seconds, not after the kernel's 15 minutes.
CONNECT_ARGS: dict[str, Any] = {
    "autocommit": True,
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


@dataclass(frozen=True)
class _Pending:
    seq: int
    message: str  # the event's JSON, as notified or stored
    large: bool


def libpq_url(url: str) -> str:
    """`postgresql+psycopg://…` (SQLAlchemy's spelling) → `postgresql://…` (libpq's)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url  # a key=value conninfo
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


class PgEventRelay:
    def __init__(self, url: str, channel: str = "hotline_events", max_pending: int = MAX_PENDING) -> None:
        self.url = libpq_url(url)
        self.channel = channel
        self.origin = uuid.uuid4().hex[:12]
        self._seq = 0
        self._pending: deque[_Pending] = deque(maxlen=max_pending)
        self._cond = threading.Condition()
        self._dropped = 0
        self._drop_logged_at = 0.0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._deliver: Deliver | None = None
        self._sender_pid: int | None = None
        self._listener_pid: int | None = None
        # Highest sequence number delivered per sender, to skip an event notified twice.
        self._seen: OrderedDict[str, int] = OrderedDict()

    # -- the publisher's side ------------------------------------------------------------------------

    def send(self, topic: str, payload: dict[str, Any], at: str) -> None:
        """Queue an event for every process; never blocks on the database, never raises."""
        try:
            # Encoded here: the publisher may change its dict afterwards.
            body = json.dumps({"t": topic, "p": payload, "at": at}, ensure_ascii=False, separators=(",", ":"))
            size = len(body.encode("utf-8"))
        except Exception as exc:  # not JSON, or text that is not valid Unicode
            log.error("live event %s not relayed, it cannot be encoded: %s", topic, exc)
            return
        try:
            with self._cond:
                # Numbered as queued, so the queue stays in seq order with publishers on many threads.
                self._seq += 1
                prefix = f'{{"o":"{self.origin}","s":{self._seq},'  # ASCII: as many bytes as characters
                message = prefix + body[1:]
                if len(self._pending) == self._pending.maxlen:
                    self._dropped += 1  # the deque drops the oldest itself
                self._pending.append(_Pending(self._seq, message, len(prefix) + size - 1 >= NOTIFY_LIMIT))
                self._cond.notify()
            self._log_drops()
        except Exception:  # a publisher must never fail because of the live updates
            log.exception("live event %s not relayed", topic)

    def _log_drops(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._cond:
            if not self._dropped or (not force and now - self._drop_logged_at < DROP_LOG_EVERY):
                return
            dropped, self._dropped, self._drop_logged_at = self._dropped, 0, now
        log.warning(
            "live-event queue full (%d waiting): %d oldest dropped since the last warning",
            self.pending,
            dropped,
        )

    # -- life cycle ----------------------------------------------------------------------------------

    def start(self, deliver: Deliver) -> None:
        if self._threads:
            raise RuntimeError("relay already started")
        self._deliver = deliver
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._run_sender, name="event-relay-sender", daemon=True),
            threading.Thread(target=self._run_listener, name="event-relay-listener", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop both threads; the sender first sends what is queued if it is connected."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.1f s", thread.name, timeout)
        self._threads = []

    @property
    def connected(self) -> bool:
        """Both threads hold a live connection (for health reports)."""
        return self._sender_pid is not None and self._listener_pid is not None

    @property
    def sender_backend_pid(self) -> int | None:
        return self._sender_pid

    @property
    def listener_backend_pid(self) -> int | None:
        return self._listener_pid

    @property
    def pending(self) -> int:
        """Events waiting to be sent."""
        return len(self._pending)

    @property
    def threads(self) -> list[threading.Thread]:
        return list(self._threads)

    def _connect(self, role: str) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, application_name=f"hotline-events-{role}", **CONNECT_ARGS)
        try:
            conn.execute("SET statement_timeout = 10000")
        except BaseException:
            conn.close()
            raise
        return conn

    def _pause(self, delay: float) -> float:
        """Wait before reconnecting (or until stopped); returns the next, longer delay."""
        self._stopping.wait(delay)
        return min(delay * 2, RETRY_MAX)

    # -- the sender ----------------------------------------------------------------------------------

    def _run_sender(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        delay = RETRY_FIRST
        swept_at = checked_at = 0.0
        careful_until = 0  # after a batch was refused, send up to this seq one by one
        while True:
            stopping = self._stopping.is_set()
            if conn is None:
                if stopping:
                    break
                try:
                    conn = self._connect("sender")
                    self._ensure_table(conn)
                except Exception as exc:
                    log.warning("live events: sender cannot connect (%s); retrying in %.1f s", exc, delay)
                    _close(conn)
                    conn = None
                    delay = self._pause(delay)
                    continue
                self._sender_pid = conn.info.backend_pid
                delay = RETRY_FIRST
                checked_at = time.monotonic()
                self._log_drops(force=True)
            # On the way out only what is queued is sent, without waiting for more.
            batch = self._take(wait=not stopping, limit=1 if careful_until else BATCH)
            if stopping and not batch:
                break
            if batch:
                try:
                    self._notify(conn, batch)
                    checked_at = time.monotonic()
                except Exception as exc:
                    if self._lost(conn, exc):
                        # Still queued: they go out again after reconnecting (if the batch did reach
                        # the server before the connection broke, the listeners skip it).
                        conn = None
                        if not stopping:
                            delay = self._pause(delay)
                        continue
                    if len(batch) > 1:
                        # One event spoils the batch: send them one by one to find it.
                        careful_until = batch[-1].seq
                        log.warning("live events: a batch was refused (%s); sending one by one", exc)
                        continue
                    log.error("live event dropped, the database refused it: %s", exc)
                self._done(batch[-1].seq)
                if careful_until and batch[-1].seq >= careful_until:
                    careful_until = 0
            if stopping:
                continue
            now = time.monotonic()
            try:
                if now - swept_at > SWEEP_EVERY:
                    swept_at = checked_at = now
                    conn.execute(
                        sql.SQL("DELETE FROM {} WHERE created_at < now() - %s::interval").format(
                            sql.Identifier(BODIES_TABLE)
                        ),
                        (BODY_MAX_AGE,),
                    )
                elif now - checked_at > PING_IDLE:
                    # A quiet sender notices a dead connection too (`connected` is for health reports).
                    checked_at = now
                    conn.execute("SELECT 1")
            except Exception as exc:
                if self._lost(conn, exc):
                    conn = None
                    delay = self._pause(delay)
                else:
                    log.warning("live events: sweeping %s failed: %s", BODIES_TABLE, exc)
        self._sender_pid = None
        _close(conn)

    def _lost(self, conn: psycopg.Connection[Any], exc: Exception) -> bool:
        """Whether `exc` means the sender's connection is gone (it is closed then)."""
        if not (conn.broken or conn.closed):
            return False
        log.warning("live events: sender lost its connection (%s); reconnecting", exc)
        self._sender_pid = None
        _close(conn)
        return True

    def _take(self, wait: bool, limit: int) -> list[_Pending]:
        """The oldest queued events (they stay queued until `_done`)."""
        with self._cond:
            if not self._pending and wait:
                self._cond.wait(POLL)
            return [self._pending[i] for i in range(min(limit, len(self._pending)))]

    def _done(self, last_seq: int) -> None:
        with self._cond:
            # By seq, not by count: the full queue may have dropped some of the batch meanwhile.
            while self._pending and self._pending[0].seq <= last_seq:
                self._pending.popleft()

    def _ensure_table(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute("SELECT to_regclass(%s)", (BODIES_TABLE,)).fetchone()
        if row and row[0] is not None:
            return
        try:
            # Unlogged: the bodies only live for minutes, they need no WAL nor crash safety.
            conn.execute(
                sql.SQL(
                    "CREATE UNLOGGED TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, body text NOT NULL,"
                    " created_at timestamptz DEFAULT now())"
                ).format(sql.Identifier(BODIES_TABLE))
            )
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            pass  # another process created it at the same moment
        except psycopg.errors.InsufficientPrivilege as exc:
            log.warning(
                "live events: cannot create %s (%s); events over 8000 bytes will fail", BODIES_TABLE, exc
            )

    def _notify(self, conn: psycopg.Connection[Any], batch: list[_Pending]) -> None:
        """One round trip for small events; large ones are stored in the same transaction."""
        messages = [p.message for p in batch]
        large = [i for i, p in enumerate(batch) if p.large]
        notify_all = "SELECT pg_notify(%s, m) FROM unnest(%s::text[]) WITH ORDINALITY AS t(m, n) ORDER BY n"
        if not large:
            conn.execute(notify_all, (self.channel, messages))
            return
        insert = sql.SQL("INSERT INTO {} (body) VALUES (%s) RETURNING id").format(
            sql.Identifier(BODIES_TABLE)
        )
        # Notifications go out at commit, so the listeners find the bodies stored.
        with conn.transaction():
            for i in large:
                row = conn.execute(insert, (messages[i],)).fetchone()
                assert row is not None
                ref = {"o": self.origin, "s": batch[i].seq, "ref": row[0]}
                messages[i] = json.dumps(ref, separators=(",", ":"))
            conn.execute(notify_all, (self.channel, messages))

    # -- the listener --------------------------------------------------------------------------------

    def _run_listener(self) -> None:
        delay = RETRY_FIRST
        while not self._stopping.is_set():
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = self._connect("listener")
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                self._listener_pid = conn.info.backend_pid
                delay = RETRY_FIRST
                self._listen(conn)
            except psycopg.Error as exc:
                if not self._stopping.is_set():
                    log.warning("live events: listener lost its connection (%s); reconnecting", exc)
            except Exception:  # a bug must not end live updates for good
                log.exception("live events: listener failed; reconnecting")
            finally:
                self._listener_pid = None
                _close(conn)
            if not self._stopping.is_set():
                delay = self._pause(delay)

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        heard_at = time.monotonic()
        while not self._stopping.is_set():
            # Drained to the end each time: leaving the generator early loses the rest of a packet.
            # stop_after=1 returns as soon as anything arrives, so a body can be fetched on this same
            # connection (the generator holds the connection's lock while it runs).
            notes = list(conn.notifies(timeout=POLL, stop_after=1))
            for note in notes:
                self._receive(conn, note.payload)
            if notes:
                heard_at = time.monotonic()
            elif time.monotonic() - heard_at > PING_IDLE:
                conn.execute("SELECT 1")  # a quiet channel or a dead connection: find out which
                heard_at = time.monotonic()

    def _receive(self, conn: psycopg.Connection[Any], text: str) -> None:
        try:
            note = json.loads(text)
            if "ref" in note:
                row = conn.execute(
                    sql.SQL("SELECT body FROM {} WHERE id = %s").format(sql.Identifier(BODIES_TABLE)),
                    (note["ref"],),
                ).fetchone()
                if row is None:
                    log.warning("live event body %s is gone; event skipped", note["ref"])
                    return
                event = json.loads(row[0])
            else:
                event = note
            topic, payload, at = event["t"], event["p"], event["at"]
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                raise
            log.warning("live event body not read: %s", exc)
            return
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("not a live event on %s, skipped: %.200s (%s)", self.channel, text, exc)
            return
        if self._seen_before(note.get("o"), note.get("s")):
            return
        assert self._deliver is not None
        try:
            self._deliver(topic, payload, at)
        except Exception:  # the bus's fault, not the connection's: keep listening
            log.exception("delivering live event %s failed", topic)

    def _seen_before(self, origin: Any, seq: Any) -> bool:
        if not isinstance(origin, str) or not isinstance(seq, int):
            return False
        last = self._seen.get(origin, 0)
        if seq <= last:
            return True
        self._seen[origin] = seq
        self._seen.move_to_end(origin)
        if len(self._seen) > SEEN_ORIGINS:
            self._seen.popitem(last=False)  # a process long gone
        return False


def _close(conn: psycopg.Connection[Any] | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception as exc:  # closing a broken connection may complain; it is closed anyway
            log.debug("closing a live-events connection: %s", exc)
