"""A media host's speech events reach the consoles once, whatever happens to the controller between:
each is kept on the host until the controller that published it acknowledges it."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import pytest

from callcenter.asr import runtime as asr_runtime
from callcenter.asr.hostlive import HostLiveSpeech
from callcenter.control import ControlServer
from callcenter.protocol import encode
from callcenter.settings import AsrSettings
from callcenter.standby import speech_events
from hotline.context import HotlineContext
from tests.conftest import make_settings

TOKEN = "t0ken"
EVENTS = [
    {"type": "started", "call": "mh-7"},
    {"type": "partial", "call": "mh-7", "text": "我家楼下"},
    {"type": "ended", "call": "mh-7"},
]


class DyingController:
    """Takes the speech channel, reads every event and dies before publishing or acknowledging any
    (as a controller killed mid-write does); it listens only once."""

    def __init__(self) -> None:
        self.read: list[dict] = []
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._take, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _take(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.server is not None
        self.server.close()  # the next attempt finds nobody here
        hello = json.loads(await reader.readline())
        assert hello["type"] == "speech" and hello["epoch"]
        while len(self.read) < len(EVENTS):
            self.read.append(json.loads(await reader.readline()))
        writer.transport.abort()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_events_a_dead_controller_read_are_published_by_the_next_once(db_url: str) -> None:
    runtime_dir = Path(tempfile.mkdtemp(prefix="asr-hl-"))
    ctx = HotlineContext.from_settings(make_settings(db_url, callcenter={"runtime_dir": str(runtime_dir)}))
    try:
        asyncio.run(_takeover(ctx, runtime_dir))
    finally:
        ctx.close()


async def _takeover(ctx: HotlineContext, runtime_dir: Path) -> None:
    await asr_runtime.start(ctx, AsrSettings(live_streams=0))
    dying = DyingController()
    first = await dying.start()
    server = ControlServer(TOKEN, {})
    server.channels["speech"] = speech_events
    await server.start("127.0.0.1", 0)
    controllers = [f"127.0.0.1:{first}", f"127.0.0.1:{server.port}"]
    host = HostLiveSpeech(AsrSettings(), Path, controllers, TOKEN, runtime_dir, "m1")
    delivering = asyncio.create_task(host.deliver())
    try:
        async with ctx.events.subscribe(["transcript."]) as events:
            for event in EVENTS:
                host.keep(event)
            published = [await asyncio.wait_for(events.get(), 15) for _ in EVENTS]
            await _sent(host, len(EVENTS))
            # the same numbers again over a new link (a host that missed the acknowledgements):
            # acknowledged, not published twice
            answers = await _send_again(server.port, host.epoch, [{**EVENTS[1], "seq": 2}])
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(events.get(), 0.5)
    finally:
        delivering.cancel()
        await server.stop()
        await asr_runtime.stop()
    assert [e["seq"] for e in dying.read] == [1, 2, 3]  # the dead one had read them all
    assert [(e.topic, e.payload["call_uid"]) for e in published] == [
        ("transcript.live", "mh-7"),
        ("transcript.partial", "mh-7"),
        ("transcript.live", "mh-7"),
    ]
    assert published[1].payload["partial"] == "我家楼下"
    assert not host.pending and host.sent == len(EVENTS)
    assert answers == [{"ack": 2}]


async def _sent(host: HostLiveSpeech, count: int) -> None:
    for _ in range(100):
        if host.sent == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"acknowledged {host.sent} of {count}; waiting {list(host.pending)}")


async def _send_again(port: int, epoch: str, events: list[dict]) -> list[dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode({"type": "speech", "token": TOKEN, "media_host": "m1", "epoch": epoch}))
    for event in events:
        writer.write(encode(event))
    await writer.drain()
    answers = [json.loads(await asyncio.wait_for(reader.readline(), 5)) for _ in events]
    writer.close()
    return answers


def test_a_full_queue_drops_partial_text_first() -> None:
    host = HostLiveSpeech(AsrSettings(), Path, [], TOKEN, Path(tempfile.mkdtemp(prefix="asr-q-")), "m1")
    from callcenter.asr import hostlive

    for n in range(hostlive.PENDING_LIMIT - 1):
        host.keep({"type": "final", "call": f"c{n}", "text": "好"})
    host.keep({"type": "partial", "call": "x", "text": "半句"})
    host.keep({"type": "opening", "call": "y", "text": "开场"})
    assert len(host.pending) == hostlive.PENDING_LIMIT
    assert all(e["type"] != "partial" for e in host.pending)
    assert host.pending[-1]["type"] == "opening" and host.pending[-1]["seq"] == hostlive.PENDING_LIMIT + 1
    host.acknowledged(10)
    assert host.sent == 10 and int(host.pending[0]["seq"]) == 11


def test_a_garbled_line_from_the_recogniser_is_skipped() -> None:
    """The recogniser's events go on after a line that is not JSON (it used to end the live text)."""
    from callcenter.asr.runtime import read_events

    seen: list[dict] = []

    async def heard(event: dict) -> None:
        seen.append(event)

    async def feed() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(b'{"type": "started", "call": "c1"}\n{not json\n{"type": "ended", "call": "c1"}\n')
        reader.feed_eof()
        await read_events(reader, heard)

    asyncio.run(feed())
    assert [e["type"] for e in seen] == ["started", "ended"]
