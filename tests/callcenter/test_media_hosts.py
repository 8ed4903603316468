"""Split mode over machines (issue 17 item 5), on loopback: Kamailio under `hotline sip-proxy`, two
media hosts (`hotline media-host`, each on a loopback address of its own), an active and a standby
controller on PostgreSQL, SIPp citizens and a SIPp seat phone. The namespace version, with a host cut
off by its link, is the benchmark `python -m hotline.benches.callcenter --scenario hosts`."""

from __future__ import annotations

import hashlib
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

from callcenter.mediahost import Uploader
from callcenter.settings import CallCenterSettings
from callcenter.testing.harness import free_port_block, wait_for
from callcenter.testing.sipkit import SeatPhone, citizen, pcap, run, sipp_binary
from tests.callcenter.test_split import ROOT, SECRET, Controllers, active_pid, remote, write_config

pytestmark = pytest.mark.skipif(sipp_binary() is None, reason="SIPp (Debian sip-tester) is not installed")

HOSTS = {"m1": "127.0.0.11", "m2": "127.0.0.12"}


class Roles:
    """Every process of the split call centre, on one configuration file."""

    def __init__(self, config: Path, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.controllers = Controllers(config, folder)
        self.others: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115
        env = {**os.environ, "HOTLINE_CONFIG": str(self.config)}
        env.pop("HOTLINE_DATABASE_URL", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "hotline.cli", *args], stdout=log, stderr=log, env=env, cwd=ROOT
        )
        self.others[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.others.values():
            if process.poll() is None:
                process.terminate()
        self.controllers.stop()
        for process in self.others.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def split_hosts(
    pg_database: str, tmp_path: Path, made_prompts: Path
) -> Iterator[tuple[Roles, dict[str, Any]]]:
    sip = free_port_block(2, start=41000)
    control = free_port_block(1, start=sip + 10)
    cc: dict[str, Any] = {
        "enabled": True, "kamailio": "own", "sip_port": sip, "kamailio_control": f"127.0.0.1:{sip + 1}",
        "control_port": control, "controllers": [f"127.0.0.1:{control}"], "seats": ["1001", "1002"],
        "ring_timeout_seconds": 10, "wrap_up_seconds": 0, "unacknowledged_per_source": 8,
        "prompts_dir": str(made_prompts), "runtime_dir": str(tmp_path / "run"),
        "recordings_dir": str(tmp_path / "store"),
    }  # fmt: skip
    config = write_config(tmp_path, pg_database, cc)
    base = 43000
    with config.open("a", encoding="utf-8") as out:
        for n, (name, address) in enumerate(HOSTS.items()):
            out.write(
                f'[[callcenter.media_hosts]]\nname = "{name}"\naddress = "{address}"\nworkers = 2\n'
                f"worker_sip_port_base = {base + 10 * n}\nrtp_port_base = {base + 100 + 100 * n}\n"
            )
    roles = Roles(config, tmp_path)
    yield roles, {"sip": f"127.0.0.1:{sip}", "db": pg_database, "store": tmp_path / "store"}
    roles.stop()
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        for table in ("controller_leases", "call_events", "call_records", "seat_state_changes", "seats"):
            conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


def _status(web: Any) -> dict[str, Any]:
    try:
        return dict(web.controller.request("status"))
    except Exception:
        return {}


def _in_service(web: Any) -> bool:
    """Every worker of both hosts connected to the controller and in Kamailio's dispatcher."""
    hosts = _status(web).get("media_hosts") or []
    return len(hosts) == 2 and all(h["workers_connected"] == h["workers_in_service"] == 2 for h in hosts)


def _records(url: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM call_records ORDER BY id")).mappings().all()
    engine.dispose()
    return {row["caller"]: dict(row) for row in rows}


def _ready(url: str, web: Any, extension: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE seats SET state = 'ready', idle_since = now(), state_since = now()"
                " WHERE extension = :e"
            ),
            {"e": extension},
        )
    engine.dispose()
    web.controller.seat_changed()


def test_calls_on_media_hosts_go_on_through_a_controller_takeover(split_hosts: Any) -> None:
    roles, where = split_hosts
    web = remote(where["db"])
    roles.start("sip-proxy", "sip-proxy")
    first = roles.controllers.start()
    wait_for(lambda: active_pid(web) == first.pid, 60, "the first controller")
    second = roles.controllers.start()
    for name in HOSTS:
        roles.start(name, "media-host", "--name", name)
    wait_for(lambda: _in_service(web), 90, "four workers on two hosts, in service")
    status = _status(web)
    assert [h["workers_connected"] for h in status["media_hosts"]] == [2, 2]
    assert status["kamailio"]["running"] is True
    wait_for(lambda: "waiting to take over" in roles.controllers.logs(), 30, "the standby")

    phone = SeatPhone("1001", where["sip"], pcaps={"audio": pcap("tone:700:30")}, timeout=60)
    talker = citizen(where["sip"], hold_ms=10000, callers=["13700000001"], timeout=40,
                     pcaps={"audio": pcap("tone:500:10")})  # fmt: skip
    waiter = citizen(where["sip"], hold_ms=9000, callers=["13700000002"], timeout=40)
    with phone:
        wait_for(lambda: web.phone_contact("1001"), 10, "the seat phone's registration")
        _ready(where["db"], web, "1001")
        talker.start()
        wait_for(
            lambda: _records(where["db"]).get("13700000001", {}).get("answered_at"), 20, "the seat to talk"
        )
        waiter.start()
        wait_for(lambda: web.controller.queue_view()["length"] == 1, 20, "the second citizen to queue")
        first.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: active_pid(web) == second.pid, 10, "the standby to take over")
        takeover = time.monotonic() - killed
        wait_for(lambda: _status(web).get("workers_connected") == 4, 10, "the workers to report again")
        assert takeover <= 5, f"takeover {takeover:.1f} s"
        # the standby knows both calls: one talking at seat 1001, one waiting
        queue = web.controller.queue_view()
        assert (queue["length"], queue["calls"]) == (1, 2), queue
        assert talker.wait().ok and waiter.wait().ok
    records = wait_for(
        lambda: (r := _records(where["db"])) and all(x["ended_at"] for x in r.values()) and r, 20, "the ends"
    )
    talked, waited = records["13700000001"], records["13700000002"]
    assert talked["outcome"] == "answered" and talked["hangup_cause"] != "hotline restarted"
    assert waited["outcome"] == "abandoned"
    for record in (talked, waited):
        path = wait_for(
            lambda r=record: _records(where["db"])[r["caller"]]["recording_path"], 15, "an upload"
        )
        stored = Path(path)
        assert stored.is_relative_to(where["store"]) and stored.exists()
        digest = hashlib.sha256(stored.read_bytes()).hexdigest()
        assert digest == _records(where["db"])[record["caller"]]["recording_sha256"]
    # a new citizen is answered by the new controller
    after = run(citizen(where["sip"], hold_ms=1500, callers=["13700000003"], timeout=20))
    assert after.ok, after


def test_a_media_host_that_falls_silent_has_its_calls_closed_and_gets_no_new_ones(split_hosts: Any) -> None:
    roles, where = split_hosts
    web = remote(where["db"])
    roles.start("sip-proxy", "sip-proxy")
    controller = roles.controllers.start()
    wait_for(lambda: active_pid(web) == controller.pid, 60, "the controller")
    hosts = {name: roles.start(name, "media-host", "--name", name) for name in HOSTS}
    wait_for(lambda: _in_service(web), 90, "four workers on two hosts, in service")
    calls = [citizen(where["sip"], hold_ms=12000, callers=[f"1370000010{n}"], timeout=60) for n in range(4)]
    for n, call in enumerate(calls, 1):
        call.start()
        wait_for(lambda n=n: web.controller.queue_view()["calls"] == n, 20, f"call {n} on its own worker")
    # m1 stops dead (its workers with it), as a machine that hangs
    frozen = [hosts["m1"].pid, *_children(hosts["m1"].pid)]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        wait_for(lambda: web.controller.queue_view()["calls"] == 2, 20, "m1's calls to be closed")
        closed = time.monotonic() - stopped
        records = _records(where["db"])
        lost = [r for r in records.values() if r["ended_at"] is not None]
        assert len(lost) == 2 and all("m1" in r["hangup_cause"] and r["outcome"] == "failed" for r in lost)
        assert closed <= 15, f"closed after {closed:.1f} s"  # 6 s of silence, 5 s to come back
        # m2's citizens talk on and hang up; new citizens reach m2's workers only (Kamailio's probing
        # left m1 out), once they are free
        results = [call.wait() for call in calls]
        assert sum(r.ok for r in results) >= 2, results
        wait_for(lambda: web.controller.queue_view()["calls"] == 0, 20, "m2's calls to end")
        ended = {k: v for k, v in _records(where["db"]).items() if v["worker"].startswith("m2-")}
        assert [r["outcome"] for r in ended.values()] == ["abandoned", "abandoned"], ended
        new = run(citizen(where["sip"], hold_ms=1500, callers=["13700000200"], timeout=20))
        assert new.ok, new
        worker = _records(where["db"])["13700000200"]["worker"]
        assert worker.startswith("m2-")
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


# --- the upload, alone ---------------------------------------------------------------------------------


def test_the_uploader_keeps_a_recording_until_the_store_confirms_it(tmp_path: Path) -> None:
    folder = tmp_path / "rec" / "2026-12-07"
    folder.mkdir(parents=True)
    (folder / "m1-w000-1-1.wav").write_bytes(b"RIFF....WAVE")
    (tmp_path / "rec" / ".parts").mkdir()
    (tmp_path / "rec" / ".parts" / "x-citizen.wav").write_bytes(b"part")
    uploader = Uploader(["127.0.0.1:9"], "token", tmp_path / "rec", "m1")  # nothing listens on port 9
    assert uploader.upload_pending() == 0
    assert (folder / "m1-w000-1-1.wav").exists()


def test_media_host_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="unique"):
        CallCenterSettings.model_validate(
            {"media_hosts": [{"name": "m1", "address": "10.0.0.1"}, {"name": "m1", "address": "10.0.0.2"}]}
        )
    with pytest.raises(ValueError, match="host:port"):
        CallCenterSettings.model_validate({"controllers": ["10.0.0.1"]})
    cc = CallCenterSettings.model_validate(
        {"media_hosts": [{"name": "m1", "address": "10.0.0.1", "workers": 2, "worker_sip_port_base": 6000}]}
    )
    assert cc.worker_targets() == [("10.0.0.1", 6000), ("10.0.0.1", 6001)]
    with pytest.raises(ValueError, match="no media host 'm9'"):
        cc.media_host("m9")


def test_the_store_refuses_a_recording_whose_checksum_does_not_match(split_hosts: Any) -> None:
    """A recording damaged on the way is refused and stays on the media host."""
    roles, where = split_hosts
    web = remote(where["db"])
    controller = roles.controllers.start()
    wait_for(lambda: active_pid(web) == controller.pid, 60, "the controller")
    from callcenter.control import control_token

    address = web.controller.active().address
    folder = where["store"].parent / "media-test" / "2026-12-07"
    folder.mkdir(parents=True)
    wav = folder / "no-such-call.wav"
    wav.write_bytes(b"RIFF" + bytes(100))
    uploader = Uploader([address], control_token(SECRET.encode()), folder.parent, "m1")
    assert uploader.upload_pending() == 0  # no such call: refused, kept
    assert wav.exists() and "no call" in uploader.refused[wav.name]
    host, _, port = address.rpartition(":")
    header = {
        "type": "upload", "token": control_token(SECRET.encode()), "uid": "no-such-call", "day": "2026-12-07",
        "bytes": wav.stat().st_size, "sha256": "0" * 64,
    }  # fmt: skip
    reply = uploader._send(host, int(port), header, wav)
    assert reply["ok"] is False and reply["status"] == 422 and "checksum" in reply["detail"]
    bad = Uploader([address], "wrong", folder.parent, "m1")
    assert bad.upload_pending() == 0 and wav.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["media-host", "--name", "m9"], "no media host 'm9'"),
        (["sip-proxy"], "needs [[callcenter.media_hosts]]"),
    ],
)
def test_a_role_without_its_configuration_says_what_is_missing(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotline.cli import main as hotline_main

    config = write_config(tmp_path, "postgresql://nobody@127.0.0.1:1/none", {"enabled": True})
    assert hotline_main(["--config", str(config), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_media_worker_killed_mid_call_loses_only_its_call(split_hosts: Any) -> None:
    """The media host replaces a crashed worker at once; its new hello names no call, so the one the
    old process carried is closed (not left open for ever), and the other calls go on."""
    roles, where = split_hosts
    web = remote(where["db"])
    roles.start("sip-proxy", "sip-proxy")
    controller = roles.controllers.start()
    wait_for(lambda: active_pid(web) == controller.pid, 60, "the controller")
    for name in HOSTS:
        roles.start(name, "media-host", "--name", name)
    wait_for(lambda: _in_service(web), 90, "four workers on two hosts, in service")
    calls = [citizen(where["sip"], hold_ms=15000, callers=[f"1370000030{n}"], timeout=40) for n in range(2)]
    for n, call in enumerate(calls, 1):
        call.start()
        wait_for(lambda n=n: web.controller.queue_view()["calls"] == n, 20, f"call {n}")
    victim = _records(where["db"])["13700000300"]["worker"]
    pid = next(p for p in _worker_pids() if f"--name {victim} " in _cmdline(p))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: web.controller.queue_view()["calls"] == 1, 20, "the killed worker's call to close")
    record = _records(where["db"])["13700000300"]
    assert record["outcome"] == "failed" and victim in record["hangup_cause"], record
    assert _records(where["db"])["13700000301"]["ended_at"] is None  # the other call goes on
    wait_for(lambda: _in_service(web), 30, "the replaced worker back in service")
    for call in calls:
        call.stop()


def _worker_pids() -> list[int]:
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and "callcenter.worker" in _cmdline(int(p.name))
    ]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
