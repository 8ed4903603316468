"""The call centre started for real on loopback, for the end-to-end tests and the benchmark.

It runs `CallCentre` (Kamailio, the media workers, the controller) on an event loop of its own in a
background thread, as `hotline serve` would, against a database of the caller's choice, on free ports.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from callcenter.context import CallCentreContext
from callcenter.models import CallRecord, Seat
from callcenter.runtime import CallCentre
from callcenter.settings import CallCenterSettings

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], timeout: float = 20, what: str = "condition", every: float = 0.1
) -> T:
    """The condition's first true value, polled every `every` seconds; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        try:
            udp.bind(("127.0.0.1", port))
            tcp.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(size: int, start: int = 21000, stop: int = 60000, step: int = 97) -> int:
    """The first port of `size` consecutive free UDP/TCP ports on loopback."""
    for base in range(start, stop - size, step):
        if all(port_is_free(p) for p in range(base, base + size)):
            return base
    raise RuntimeError(f"no block of {size} free ports between {start} and {stop}")


def loopback_settings(workers: int, seats: list[str], **overrides: Any) -> CallCenterSettings:
    """Call-centre settings on free loopback ports: Kamailio, workers' SIP ports, RTP ranges."""
    rtp_per_worker = 20
    block = free_port_block(1 + workers)
    rtp = free_port_block(workers * rtp_per_worker, start=block + 1 + workers + 50)
    values: dict[str, Any] = {
        "enabled": True,
        "sip_port": block,
        "worker_sip_port_base": block + 1,
        "workers": workers,
        "rtp_port_base": rtp,
        "rtp_ports_per_worker": rtp_per_worker,
        "seats": seats,
        **overrides,
    }
    return CallCenterSettings.model_validate(values)


class LiveCallCentre:
    """`with LiveCallCentre(ctx, cc) as centre:` — everything stopped on the way out, also on failure."""

    def __init__(self, ctx: CallCentreContext, cc: CallCenterSettings) -> None:
        self.ctx = ctx
        self.cc = cc
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="callcentre", daemon=True)
        self.centre = CallCentre(ctx, cc)

    def __enter__(self) -> LiveCallCentre:
        self.thread.start()
        try:
            self.run(self.centre.start(wait_seconds=90), timeout=120)
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.run(self.centre.stop(), timeout=30)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a plain function on the controller's loop (the controller is not thread-safe)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def invoke() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(invoke)
        return future.result(10)

    @property
    def controller(self) -> Any:
        return self.centre.controller

    # --- looking at the database -------------------------------------------------------------------
    def records(self) -> list[CallRecord]:
        with self.ctx.sessions() as session:
            rows = list(session.scalars(select(CallRecord).order_by(CallRecord.id)))
            session.expunge_all()
            return rows

    def seat(self, extension: str) -> Seat:
        with self.ctx.sessions() as session:
            seat = session.scalar(select(Seat).where(Seat.extension == extension))
            assert seat is not None
            session.expunge(seat)
            return seat

    def wait_for(self, condition: Callable[[], T], timeout: float = 20, what: str = "condition") -> T:
        return wait_for(condition, timeout, what)

    def recordings_dir(self) -> Path:
        return self.centre.recordings_dir
