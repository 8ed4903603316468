"""Split mode (issue 17 item 4): the controller in a process of its own, one active and one on standby,
and web processes that hold no call. Real processes (`hotline controller`), real PostgreSQL, and for the
takeover with telephony a real Kamailio, real media workers and a SIPp citizen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from callcenter.control import RemoteCallCentre, RemoteControl, control_token
from callcenter.leadership import AdvisoryLease, FileLease, lock_key
from callcenter.lifeline import process_alive
from callcenter.testing.harness import free_port_block, wait_for
from core.clock import SystemClock
from core.db import make_engine, make_session_factory
from core.errors import Unavailable
from hotline.cli import main as hotline_main

ROOT = Path(__file__).resolve().parents[2]
SECRET = "split-mode-test-secret-0123456789"


# --- the lock -------------------------------------------------------------------------------------------


def test_one_advisory_lock_holder_and_the_lock_is_free_when_its_session_dies(pg_database: str) -> None:
    first, second = AdvisoryLease(pg_database, "test-a"), AdvisoryLease(pg_database, "test-a")
    try:
        assert first.try_acquire() and first.holds()
        assert not second.try_acquire() and not second.holds()
        assert first.try_acquire()  # asking again while holding it keeps it
        pid = first.backend_pid
        engine = create_engine(pg_database)
        with engine.begin() as conn:  # the holder's connection dies (as with kill -9 of its process)
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        engine.dispose()
        assert not first.holds()
        assert wait_for(second.try_acquire, 3, "the standby to take the lock")
        assert not first.try_acquire()  # the old holder comes back as a standby
    finally:
        first.release()
        second.release()


def test_other_names_have_other_locks(pg_database: str) -> None:
    assert lock_key("a") != lock_key("b")
    a, b = AdvisoryLease(pg_database, "test-x"), AdvisoryLease(pg_database, "test-y")
    try:
        assert a.try_acquire() and b.try_acquire()
    finally:
        a.release()
        b.release()


HOLD = (
    "import time; from pathlib import Path; from callcenter.leadership import {cls} as L; "
    "lease = L({arg}); print(lease.try_acquire(), flush=True); time.sleep(60)"
)


@pytest.mark.parametrize("kind", ["postgresql", "file"])
def test_kill_9_of_the_holder_frees_the_lock_at_once(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if kind == "postgresql":
        url = request.getfixturevalue("pg_database")
        code, standby = HOLD.format(cls="AdvisoryLease", arg=repr(url)), AdvisoryLease(url)
    else:
        path = tmp_path / "controller.lock"
        code, standby = HOLD.format(cls="FileLease", arg=f"Path({str(path)!r})"), FileLease(path)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        assert not standby.try_acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        started = time.monotonic()
        wait_for(standby.try_acquire, 3, "the lock after kill -9 of its holder")
        assert time.monotonic() - started < 2
    finally:
        holder.kill()
        standby.release()


# --- two controllers and a web process ------------------------------------------------------------------


def write_config(folder: Path, url: str, callcenter: dict[str, Any]) -> Path:
    lines = [
        "[database]", f'url = "{url}"',
        "[auth]", f'session_secret = "{SECRET}"',
        "[dispatch]", f'category_tree = "{ROOT / "dispatch" / "category_tree.toml"}"',
        "[understanding]", 'encoder = "none"',
        "[callbacks]", "enabled = false",
        "[callcenter]", 'mode = "split"', 'control_host = "127.0.0.1"',
    ]  # fmt: skip
    for key, value in callcenter.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int | float):
            lines.append(f"{key} = {value}")
        elif isinstance(value, list):
            lines.append(f"{key} = [{', '.join(repr(str(v)).replace(chr(39), chr(34)) for v in value)}]")
        else:
            lines.append(f'{key} = "{value}"')
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Controllers:
    """`hotline controller` processes started on one configuration."""

    def __init__(self, config: Path, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"controller-{len(self.processes)}.log", "wb")  # noqa: SIM115
        env = {**os.environ, "HOTLINE_CONFIG": str(self.config)}
        env.pop("HOTLINE_DATABASE_URL", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "hotline.cli", "controller"], stdout=log, stderr=log, env=env, cwd=ROOT
        )
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("controller-*.log")))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def split_db(pg_database: str) -> Iterator[str]:
    yield pg_database
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM controller_leases"))
        conn.execute(text("DELETE FROM call_events"))
        conn.execute(text("DELETE FROM call_records"))
    engine.dispose()


def remote(url: str) -> RemoteCallCentre:
    engine = make_engine(url)
    return RemoteCallCentre(
        RemoteControl(
            make_session_factory(engine), SystemClock("Asia/Shanghai"), control_token(SECRET.encode())
        )
    )


def active_pid(centre: RemoteCallCentre) -> int | None:
    centre.controller._active = (0.0, None)  # read the lease row now, not a second ago
    try:
        return int(centre.controller.request("status")["controller_pid"])
    except Unavailable:
        return None


def test_the_standby_takes_over_within_5_s_of_kill_9_and_web_processes_follow(
    split_db: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, split_db, {"enabled": False, "control_port": 0})
    controllers = Controllers(config, tmp_path)
    web = remote(split_db)
    try:
        first = controllers.start()
        assert wait_for(lambda: active_pid(web), 30, "the first controller") == first.pid
        second = controllers.start()
        wait_for(
            lambda: "waiting to take over" in controllers.logs(),
            30,
            "the second controller to wait on standby",
        )
        assert active_pid(web) == first.pid
        status = web.status()
        assert status["enabled"] is False and status["controller"]["holder"].endswith(f":{first.pid}")

        first.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        first.wait(5)
        wait_for(lambda: active_pid(web) == second.pid, 10, "the standby to take over")
        takeover = time.monotonic() - killed
        assert takeover <= 5, f"takeover took {takeover:.1f} s"
        assert second.poll() is None
    finally:
        controllers.stop()


def test_a_web_process_says_in_chinese_when_no_controller_answers(split_db: str) -> None:
    web = remote(split_db)
    with pytest.raises(Unavailable) as refused:
        web.controller.queue_view()
    assert refused.value.status == 503 and "呼叫中心控制器" in refused.value.zh
    assert web.phone_contact("1001") is None  # unknown, not "unregistered"
    status = web.status()
    assert status["enabled"] is False and "控制器" in status["reason_zh"]
    web.controller.seat_changed()  # a nudge that cannot be delivered is not an error


def test_the_controller_refuses_requests_without_the_hotline_token(split_db: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, split_db, {"enabled": False, "control_port": 0})
    controllers = Controllers(config, tmp_path)
    web = remote(split_db)
    stranger = RemoteCallCentre(RemoteControl(web.controller.sessions, web.controller.clock, "not-the-token"))
    try:
        process = controllers.start()
        assert wait_for(lambda: active_pid(web), 30, "the controller") == process.pid
        with pytest.raises(Exception) as refused:
            stranger.controller.request("status")
        assert getattr(refused.value, "status", None) == 401
        with pytest.raises(Exception) as unknown:
            web.controller.request("format_disk")
        assert getattr(unknown.value, "status", None) == 400 and "未知" in getattr(unknown.value, "zh", "")
        with pytest.raises(Exception) as off:
            web.controller.transfer("in-1", "110")
        assert getattr(off.value, "status", None) == 409 and "未启用" in getattr(off.value, "zh", "")
    finally:
        controllers.stop()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["controller"], "PostgreSQL"),
        (["serve", "--workers", "2"], "PostgreSQL"),
    ],
)
def test_split_mode_on_sqlite_is_refused_with_a_reason(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'h.db'}", {"enabled": False})
    assert hotline_main(["--config", str(config), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "split" in err


def test_serve_with_several_workers_needs_split_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "h.db"}"\n', encoding="utf-8")
    assert hotline_main(["--config", str(config), "serve", "--workers", "2"]) == 2
    assert 'mode = "split"' in capsys.readouterr().err


def test_a_controller_that_loses_its_lock_steps_down(split_db: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, split_db, {"enabled": False, "control_port": 0})
    controllers = Controllers(config, tmp_path)
    web = remote(split_db)
    try:
        process = controllers.start()
        assert wait_for(lambda: active_pid(web), 30, "the controller") == process.pid
        engine = create_engine(split_db)
        with engine.begin() as conn:  # its lock's session is cut, as by a network fault
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :n AND datname = current_database()"
                ),
                {"n": "hotline-controller-lease"},
            )
        engine.dispose()
        assert process.wait(10) == 3
        assert "stepping down" in controllers.logs()
    finally:
        controllers.stop()


def test_kill_9_of_the_active_controller_hands_the_calls_to_the_standby(
    split_db: str, tmp_path: Path, made_prompts: Path
) -> None:
    """With the telephony on: the killed controller's Kamailio and media workers end with it; the
    standby takes over, closes the call that was in flight with the restart cause, and its own Kamailio
    and workers (on the same ports) answer the next citizen."""
    from callcenter.testing.sipkit import citizen, run

    block = free_port_block(4)
    rtp = free_port_block(40, start=block + 50)
    cc = {
        "enabled": True, "control_port": 0, "sip_port": block, "worker_sip_port_base": block + 1,
        "workers": 2, "rtp_port_base": rtp, "rtp_ports_per_worker": 20, "seats": ["1001"],
        "prompts_dir": str(made_prompts), "runtime_dir": str(tmp_path / "run"),
        "recordings_dir": str(tmp_path / "rec"),
    }  # fmt: skip
    config = write_config(tmp_path, split_db, cc)
    controllers = Controllers(config, tmp_path)
    web = remote(split_db)
    in_flight = citizen(f"127.0.0.1:{block}", hold_ms=30000, callers=["13700000001"], timeout=40)
    try:
        first = controllers.start()
        wait_for(lambda: _workers(web) == 2, 90, "the first controller's workers")
        children = _descendants(first.pid)
        assert len(children) >= 3, children  # Kamailio's reaper and two workers at least
        second = controllers.start()
        wait_for(lambda: "waiting to take over" in controllers.logs(), 30, "the standby")
        in_flight.start()
        wait_for(lambda: web.controller.queue_view()["length"] == 1, 15, "the citizen to queue")
        first.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: active_pid(web) == second.pid, 10, "the standby to take over")
        takeover = time.monotonic() - killed
        wait_for(lambda: not [p for p in children if process_alive(p)], 10, "the old children to end")
        wait_for(lambda: _workers(web) == 2, 60, "the new controller's workers")
        recovery = time.monotonic() - killed
        assert takeover <= 5, f"takeover {takeover:.1f} s"
        assert recovery <= 10, f"recovery {recovery:.1f} s"
        in_flight.stop()
        assert _outcomes(split_db) == [("13700000001", "failed", "hotline restarted")]
        after = run(citizen(f"127.0.0.1:{block}", hold_ms=1500, callers=["13700000002"], timeout=20))
        assert after.ok, after
        wait_for(lambda: len(_outcomes(split_db)) == 2, 10, "the new call's record")
        assert _outcomes(split_db)[1][:2] == ("13700000002", "abandoned")  # queued: no seat was ready
    finally:
        in_flight.stop()
        controllers.stop()


def _outcomes(url: str) -> list[tuple[str, str, str | None]]:
    engine = create_engine(url)
    query = "SELECT caller, outcome, hangup_cause FROM call_records WHERE ended_at IS NOT NULL ORDER BY id"
    with engine.connect() as conn:
        found = [(r[0], r[1], r[2]) for r in conn.execute(text(query))]
    engine.dispose()
    return found


def _workers(web: RemoteCallCentre) -> int:
    try:
        return int(web.controller.request("status").get("workers_connected", 0))
    except Exception:
        return 0


def _descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == parent:
                    found.append(int(entry.name))
                    frontier.append(int(entry.name))
    return found


# --- several web processes ------------------------------------------------------------------------------


def _staff_user(url: str, username: str, role: str) -> None:
    from callcenter.service import SeatService
    from core.accounts.models import Role
    from core.accounts.service import create_user

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        create_user(
            session, username, "pass-1234-word", Role(role), username, SystemClock("Asia/Shanghai").now()
        )
        SeatService(session, SystemClock("Asia/Shanghai")).ensure_seats(["1001"])
    engine.dispose()


def _login(client: Any, username: str) -> str:
    import re

    def csrf(html: str) -> str:
        match = re.search(r'name="csrf-token" content="([^"]+)"', html)
        assert match, html[:300]
        return match.group(1)

    response = client.post(
        "/login",
        data={
            "username": username,
            "password": "pass-1234-word",
            "csrf_token": csrf(client.get("/login").text),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf(client.get("/search").text)


class Stream:
    """A page's event stream, read on a thread: which web process it reached, and what arrived."""

    def __init__(self, base: str, cookies: Any) -> None:
        import threading

        import httpx2 as httpx

        self.client = httpx.Client(base_url=base, cookies=cookies, timeout=httpx.Timeout(5, read=None))
        self.pid: int | None = None
        self.frames: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        import httpx2 as httpx

        try:
            with self.client.stream("GET", "/events") as response:
                for line in response.iter_lines():
                    if line.startswith(": connected to web process"):
                        self.pid = int(line.rsplit(" ", 1)[1])
                        self.ready.set()
                    elif line.startswith("data:"):
                        self.frames.append(line[5:])
        except httpx.HTTPError:
            pass
        finally:
            self.ready.set()

    def close(self) -> None:
        self.client.close()


def test_serve_with_two_workers_shares_live_updates_and_reaches_the_controller(
    split_db: str, tmp_path: Path
) -> None:
    import httpx2 as httpx

    config = write_config(tmp_path, split_db, {"enabled": False, "control_port": 0, "seats": ["1001"]})
    controllers = Controllers(config, tmp_path)
    _staff_user(split_db, "bz_split", "supervisor")
    port = free_port_block(1, start=31000)
    env = {**os.environ, "HOTLINE_CONFIG": str(config)}
    env.pop("HOTLINE_DATABASE_URL", None)
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    serve = subprocess.Popen(
        [sys.executable, "-m", "hotline.cli", "serve", "--workers", "2", "--port", str(port)],
        stdout=log, stderr=log, env=env, cwd=ROOT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    streams: list[Stream] = []
    try:
        controller = controllers.start()
        health = wait_for(lambda: _get(f"{base}/api/health"), 60, "the web processes")
        assert health["mode"] == "split" and health["live_updates"] == "relayed"
        client = httpx.Client(base_url=base, timeout=10)
        csrf = _login(client, "bz_split")
        wait_for(lambda: active_pid(remote(split_db)) == controller.pid, 30, "the controller")
        status = client.get("/api/callcenter/status").json()
        assert status["controller"]["holder"].endswith(f":{controller.pid}"), status
        refused = client.post("/api/calls/in-1-1/hangup", headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 409 and "未启用" in refused.json()["detail_zh"]
        # Streams until both web processes hold some (the kernel hands connections to either).
        while len({s.pid for s in streams}) < 2 and len(streams) < 16:
            stream = Stream(base, client.cookies)
            assert stream.ready.wait(10) and stream.pid, "a stream did not open"
            streams.append(stream)
        assert len({s.pid for s in streams}) == 2, "every stream reached the same web process"
        changed = client.post(
            "/api/seats/1001/state", json={"state": "break"}, headers={"X-CSRF-Token": csrf}
        )
        assert changed.status_code == 200, changed.text
        wait_for(
            lambda: all(any('"topic": "seat"' in f and "1001" in f for f in s.frames) for s in streams),
            10,
            "the seat change on every stream, whichever process published it",
        )
        controller.send_signal(signal.SIGKILL)
        controller.wait(5)
        gone = wait_for(
            lambda: (r := client.get("/api/callcenter/queue")).status_code == 503 and r, 15, "a 503"
        )
        assert "控制器" in gone.json()["detail_zh"] and gone.headers.get("retry-after")
    finally:
        for stream in streams:
            stream.close()
        serve.terminate()
        serve.wait(20)
        controllers.stop()


def _get(url: str) -> dict[str, Any] | None:
    import httpx2 as httpx

    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def test_the_control_listener_answers_bad_lines_and_strange_tokens_with_a_refusal() -> None:
    """Bad input on the control port: not JSON, no type, a token with Chinese characters, unknown ops."""
    import asyncio
    import json

    from callcenter.control import ControlServer

    async def scenario() -> list[dict[str, Any]]:
        async def echo(args: dict[str, Any]) -> Any:
            return args

        server = ControlServer("right-token", {"echo": echo})
        await server.start("127.0.0.1", 0)
        lines = [
            b"not json\n",
            b'{"no": "type"}\n',
            json.dumps({"type": "request", "op": "echo", "args": {}, "token": "令牌"}).encode() + b"\n",
            json.dumps({"type": "hello", "token": "令牌"}).encode() + b"\n",
            json.dumps({"type": "request", "op": "nope", "args": {}, "token": "right-token"}).encode()
            + b"\n",
            json.dumps({"type": "request", "op": "echo", "args": [], "token": "right-token"}).encode()
            + b"\n",
            json.dumps({"type": "request", "op": "echo", "args": {"a": 1}, "token": "right-token"}).encode()
            + b"\n",
        ]
        replies = []
        for line in lines:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(line)
            await writer.drain()
            replies.append(json.loads(await reader.readline()))
            writer.close()
        await server.stop()
        return replies

    replies = asyncio.run(scenario())
    assert [r.get("status") for r in replies[:6]] == [400, 400, 401, 401, 400, 400]
    assert all(r["ok"] is False and r["detail_zh"] for r in replies[:6])
    assert replies[6] == {"type": "reply", "ok": True, "result": {"a": 1}}
