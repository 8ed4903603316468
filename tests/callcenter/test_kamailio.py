"""Kamailio as the hotline's front door, with real Kamailio and SIPp phones/workers on free loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.kamailio import (
    Kamailio,
    KamailioMissing,
    find_kamailio,
    options_ping,
    parse_ul_contacts,
    parse_ul_dump,
    render_config,
)
from callcenter.lifeline import process_alive
from callcenter.settings import CallCenterSettings
from callcenter.testing.sipkit import (
    HOST,
    SeatPhone,
    Sipp,
    citizen,
    free_udp_port,
    run,
    running,
    send_raw_udp,
)
from tests.conftest import REPO_ROOT

pytestmark = [
    pytest.mark.skipif(
        find_kamailio(CallCenterSettings()) is None,
        reason="kamailio not installed (apt-get install kamailio)",
    ),
    pytest.mark.skipif(
        shutil.which("sipp") is None, reason="sipp not installed (apt-get install sip-tester)"
    ),
]


def _settings(**changes: object) -> CallCenterSettings:
    base: dict[str, object] = {
        "sip_host": HOST,
        "sip_port": free_udp_port(),
        "workers": 2,
        "seats": ["1001", "1002", "1003"],
        "trunk_uri": f"sip:{HOST}:{free_udp_port()}",
    }
    return CallCenterSettings.model_validate({**base, **changes})


@pytest.fixture(scope="module")
def cc() -> CallCenterSettings:
    return _settings()


@pytest.fixture(scope="module")
def worker_ports() -> list[int]:
    return [free_udp_port(), free_udp_port()]


@pytest.fixture(scope="module")
def kamailio(
    cc: CallCenterSettings, worker_ports: list[int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kamailio]:
    # fr_timer 1 s: a worker that does not answer at all is given up quickly in these tests
    with Kamailio(cc, tmp_path_factory.mktemp("kam"), worker_ports, fr_timer_ms=1000) as kam:
        yield kam


def _registrar(cc: CallCenterSettings) -> str:
    return f"{cc.sip_host}:{cc.sip_port}"


def _worker(port: int, scenario: str = "uas_answer", calls: int = 1, timeout: float = 15) -> Sipp:
    """A SIPp UAS standing in for the media worker on `port`."""
    return Sipp(scenario, port=port, calls=calls, timeout=timeout, service="worker")


def _call(cc: CallCenterSettings, service: str, *, port: int | None = None, calls: int = 1, **kwargs: object):
    """A citizen (or, with port = a worker's port, a worker) calling `service` through Kamailio."""
    return run(
        citizen(_registrar(cc), service=service, port=port, calls=calls, hold_ms=300, timeout=15, **kwargs)
    )


def test_config_names_hotline_workers_and_trunk(cc: CallCenterSettings, tmp_path: Path) -> None:
    cfg = render_config(cc, tmp_path, [5101, 5102])
    assert f"listen=udp:{HOST}:{cc.sip_port}" in cfg
    assert '$rU == "12345"' in cfg
    trunk_port = cc.trunk_uri.rsplit(":", 1)[1]
    assert f"$rp = {trunk_port};" in cfg
    assert "^(1001|1002|1003)$" in cfg
    with pytest.raises(ValueError):
        render_config(cc, tmp_path, [])


def test_parse_ul_dump_reads_aor_and_contact() -> None:
    dump = (
        "AoRs: {\n Info: {\n  AoR: 1003\n  Contacts: {\n   Contact: {\n    Address: sip:1003@127.0.0.1:7000\n"
    )
    assert parse_ul_dump(dump) == {"1003": "sip:1003@127.0.0.1:7000"}


def test_parse_ul_contacts_reads_every_contact_and_its_expiry() -> None:
    dump = (
        "AoR: 1003\n Contacts: {\n Contact: {\n Address: sip:1003@127.0.0.1:7000\n Expires: 3590\n }\n"
        " Contact: {\n Address: sip:1003@127.0.0.1:7002\n Expires: permanent\n }\n"
        "AoR: 1004\n Contacts: {\n Contact: {\n Address: sip:1004@127.0.0.1:7004\n Expires: 12\n"
    )
    assert parse_ul_contacts(dump) == {
        "1003": [("sip:1003@127.0.0.1:7000", 3590), ("sip:1003@127.0.0.1:7002", 0)],
        "1004": [("sip:1004@127.0.0.1:7004", 12)],
    }


def test_seat_registers_and_only_a_worker_reaches_it(
    cc: CallCenterSettings, kamailio: Kamailio, worker_ports: list[int]
) -> None:
    with SeatPhone("1003", _registrar(cc), calls=1, answer_after_ms=100, timeout=15) as seat:
        assert kamailio.registrations()["1003"] == f"sip:1003@{HOST}:{seat.port}"
        outsider = _call(cc, "1003")  # a citizen cannot dial a seat directly
        assert outsider.failed == 1 and "404" in outsider.errors
        from_worker = _call(cc, "1003", port=worker_ports[0])
        assert from_worker.ok, from_worker
        assert seat.wait(10).successful == 1


def test_inbound_call_fails_over_from_a_busy_worker(
    cc: CallCenterSettings, kamailio: Kamailio, worker_ports: list[int]
) -> None:
    busy = _worker(worker_ports[0], "uas_busy", calls=4)
    free = _worker(worker_ports[1], "uas_answer", calls=4)
    with running(busy, free):
        result = _call(cc, "12345", calls=4, limit=1)
        assert result.ok and result.successful == 4, result
        # round robin sent some calls to the busy worker first; every one ended on the free worker
        assert free.wait(10).successful == 4
        busy_result = busy.stop()
        assert busy_result is not None and busy_result.successful >= 1


def test_all_workers_busy_gives_the_caller_486(
    cc: CallCenterSettings, kamailio: Kamailio, worker_ports: list[int]
) -> None:
    workers = [_worker(port, "uas_busy") for port in worker_ports]
    with running(*workers):
        result = _call(cc, "12345")
        assert result.failed == 1
        assert "SIP/2.0 486" in result.errors
        assert all(w.wait(10).successful == 1 for w in workers)  # each worker was tried once


def test_dead_workers_give_503(cc: CallCenterSettings, kamailio: Kamailio) -> None:
    # nothing listens on the workers' ports: both time out (408 inside Kamailio) -> 503 to the caller
    result = _call(cc, "12345")
    assert result.failed == 1
    assert "SIP/2.0 503" in result.errors
    kamailio.reload_dispatcher()  # the dead workers were marked inactive: make them eligible again


def test_unregistered_extension_from_outside_is_404(cc: CallCenterSettings, kamailio: Kamailio) -> None:
    result = _call(cc, "1099")
    assert result.failed == 1 and "SIP/2.0 404" in result.errors


def test_worker_dials_out_through_the_trunk_and_to_foreign_hosts(
    cc: CallCenterSettings, kamailio: Kamailio, worker_ports: list[int]
) -> None:
    trunk_port = int(cc.trunk_uri.rsplit(":", 1)[1])
    with running(Sipp("uas_answer", port=trunk_port, calls=2, timeout=15)):
        # a citizen's number is no extension of ours: out through the trunk (callback calls)
        assert _call(cc, "13912345678", port=worker_ports[0]).ok
        # 110 on a foreign host (the trunk's address here), with Kamailio as outbound proxy
        via_proxy = ["-rsa", _registrar(cc)]  # R-URI names the trunk, the packets go to Kamailio
        direct = run(
            citizen(f"{HOST}:{trunk_port}", service="110", port=worker_ports[1], extra_args=via_proxy)
        )
        assert direct.ok, direct
    # a configured seat that is not registered: 480, not a call out through the trunk
    unregistered_seat = _call(cc, "1002", port=worker_ports[0])
    assert "SIP/2.0 480" in unregistered_seat.errors


def _request(cc: CallCenterSettings, method: str, headers: dict[str, str], uri: str | None = None) -> bytes:
    lines = [f"{method} {uri or f'sip:12345@{HOST}:{cc.sip_port}'} SIP/2.0"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _headers(method: str, **changes: str | None) -> dict[str, str]:
    unique = uuid.uuid4().hex[:10]  # a fresh branch and Call-ID: not a retransmission of the last test
    headers: dict[str, str | None] = {
        # rport: Kamailio answers to the socket the request came from, not to port 9
        "Via": f"SIP/2.0/UDP {HOST}:9;rport;branch=z9hG4bK-{unique}",
        "From": f"<sip:13800000000@{HOST}>;tag=a1",
        "To": f"<sip:12345@{HOST}>",
        "Call-ID": f"raw-{unique}@{HOST}",
        "CSeq": f"1 {method}",
        "Max-Forwards": "70",
        "Content-Length": "0",
        **changes,
    }
    return {name: value for name, value in headers.items() if value is not None}


def _status(reply: bytes | None) -> str | None:
    return reply.split(b" ", 2)[1].decode() if reply else None


def test_malformed_and_unexpected_sip(
    cc: CallCenterSettings, kamailio: Kamailio, worker_ports: list[int]
) -> None:
    def send(method: str, uri: str | None = None, **changes: str | None) -> str | None:
        request = _request(cc, method, _headers(method, **changes), uri)
        return _status(send_raw_udp(HOST, cc.sip_port, request, timeout=0.5))

    assert send_raw_udp(HOST, cc.sip_port, os.urandom(300), timeout=0.5) is None  # garbage: dropped
    assert send("BYE", To=f"<sip:12345@{HOST}>;tag=nosuchdialog") == "481"
    assert send("INVITE", **{"Max-Forwards": "0"}) == "483"
    # the sanity module answers 400 to requests it can parse but that contradict themselves
    assert send("INVITE", CSeq="1 BYE") == "400"
    assert send("INVITE", CSeq="abc INVITE") == "400"
    assert send("INVITE", **{"Content-Length": "50"}) == "400"
    # without Call-ID/From/CSeq no reply can be built: dropped
    assert send("INVITE", **{"Call-ID": None}) is None
    assert send("INVITE", From=None) is None
    assert send("REGISTER", f"sip:{HOST}:{cc.sip_port}", To=f"<sip:alice@{HOST}>") == "403"
    assert send("REGISTER", f"sip:{HOST}:{cc.sip_port}", To=f"<sip:12345@{HOST}>") == "403"
    # and service goes on
    assert _status(options_ping(HOST, cc.sip_port)) == "200"
    with running(_worker(worker_ports[0]), _worker(worker_ports[1])):
        assert _call(cc, "12345").ok


def test_reload_dispatcher_replaces_the_worker_set(kamailio: Kamailio, worker_ports: list[int]) -> None:
    extra = free_udp_port()
    kamailio.reload_dispatcher([*worker_ports, extra])
    assert f"sip:{HOST}:{extra}" in kamailio.dispatcher_targets()
    kamailio.reload_dispatcher(worker_ports)
    assert sorted(kamailio.dispatcher_targets()) == sorted(f"sip:{HOST}:{p}" for p in worker_ports)


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    cc = _settings()
    kam = Kamailio(cc, tmp_path, [free_udp_port()]).start()
    pid = kam.pid
    assert pid is not None and kam.running
    assert (tmp_path / "kamailio" / "kamailio.cfg").exists()
    kam.stop()
    assert not kam.running
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # neither the main process nor any child is left
    assert options_ping(HOST, cc.sip_port, timeout=0.3) is None


def test_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    cc = _settings(kamailio_binary="kamailio-not-installed-here")
    with pytest.raises(KamailioMissing, match="apt-get install kamailio"):
        Kamailio(cc, tmp_path, [free_udp_port()]).start()


def _group_gone(pids: set[int], within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(process_alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def test_a_killed_main_process_takes_its_children_along(tmp_path: Path) -> None:
    cc = _settings()
    kam = Kamailio(cc, tmp_path, [free_udp_port()]).start()
    try:
        group = kam.kamailio_pids()
        main_pid = int(kam.pid_path.read_text())
        assert main_pid in group and len(group) > 1
        os.kill(main_pid, signal.SIGKILL)
        assert _group_gone(group), "Kamailio's children outlived their main process"
        deadline = time.monotonic() + 2
        while kam.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not kam.running and kam.describe_exit() == "Kamailio killed by SIGKILL"
        kam.restart()  # what the call centre's watchdog does
        assert options_ping(HOST, cc.sip_port, timeout=1.0) is not None
    finally:
        kam.stop()


OWNER = """
import sys, time
from pathlib import Path
from callcenter.kamailio import Kamailio
from callcenter.settings import CallCenterSettings
cc = CallCenterSettings.model_validate_json(sys.argv[1])
Kamailio(cc, Path(sys.argv[2]), [int(sys.argv[3])]).start()
print("up", flush=True)
time.sleep(600)
"""


def test_kill_9_of_its_owner_leaves_no_kamailio_behind(tmp_path: Path) -> None:
    cc = _settings()
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, cc.model_dump_json(by_alias=True), str(tmp_path), str(free_udp_port())],
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == b"up"
        kam = Kamailio(cc, tmp_path, [])  # the same folder and configuration file, not started
        running_before = set(kam.leftovers())
        assert running_before, "the owner's Kamailio should be running"
        owner.kill()
        owner.wait()
        assert _group_gone(running_before, within=3.0), "Kamailio outlived the process that owned it"
        assert options_ping(HOST, cc.sip_port, timeout=0.3) is None
    finally:
        owner.kill()
        Kamailio(cc, tmp_path, []).clear_leftovers()


def test_a_kamailio_left_by_an_earlier_run_is_cleared_at_start(tmp_path: Path) -> None:
    cc = _settings()
    kam = Kamailio(cc, tmp_path, [free_udp_port()])
    kam.write_files()
    binary = find_kamailio(cc)
    assert binary is not None
    # an orphan as a killed `hotline serve` used to leave: our configuration, our PID file, no owner
    orphan = subprocess.Popen(
        [binary, "-DD", "-E", "-f", str(kam.cfg_path), "-P", str(kam.pid_path), "-Y", str(kam.run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while options_ping(HOST, cc.sip_port, timeout=0.2) is None and time.monotonic() < deadline:
            pass
        assert kam.pid_path.exists() and kam.leftovers()
        kam.start()  # used to fail: "running process found in the pid file"
        assert orphan.wait(3) is not None
        assert kam.running and int(kam.pid_path.read_text()) != orphan.pid
        assert kam.leftovers() == []
    finally:
        kam.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(orphan.pid, signal.SIGKILL)


def _invite(cc: CallCenterSettings, sock: socket.socket, number: str = "12345") -> bytes:
    """A minimal, well-formed INVITE from `sock` to `number` at Kamailio."""
    host, port = sock.getsockname()
    tag = uuid.uuid4().hex[:8]
    return (
        f"INVITE sip:{number}@{cc.sip_host}:{cc.sip_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:13800000001@{host}:{port}>;tag={tag}\r\n"
        f"To: <sip:{number}@{cc.sip_host}:{cc.sip_port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@{host}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:13800000001@{host}:{port}>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _header(message: bytes, name: bytes) -> bytes:
    for line in message.split(b"\r\n"):
        if line.lower().startswith(name.lower() + b":"):
            return line.split(b":", 1)[1].strip()
    return b""


def _replies(sock: socket.socket, seconds: float) -> list[bytes]:
    sock.settimeout(0.05)
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            got.append(sock.recv(65535))
    return got


def test_calls_beyond_the_workers_get_503_at_once_and_reach_no_worker(
    cc: CallCenterSettings, kamailio: Kamailio, worker_ports: list[int]
) -> None:
    workers = [_worker(port, "uas_answer") for port in worker_ports]
    talking = citizen(_registrar(cc), service="12345", calls=2, hold_ms=3000, timeout=15)
    with running(*workers), talking:
        time.sleep(1.5)  # both calls answered: every worker has one
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            asked = time.monotonic()
            sock.sendto(_invite(cc, sock), (cc.sip_host, cc.sip_port))
            replies = _replies(sock, 0.5)
        final = [r for r in replies if not r.startswith(b"SIP/2.0 1")]
        assert final and final[0].startswith(b"SIP/2.0 503"), replies
        assert b"Retry-After: 30" in final[0] and time.monotonic() - asked < 1.0
        assert talking.wait().successful == 2
        assert all(w.wait(10).successful == 1 for w in workers)  # the third INVITE reached none
    # the calls have ended: the next caller is let in again
    with running(*[_worker(port, "uas_answer") for port in worker_ports]):
        assert _call(cc, "12345").ok


def test_a_flood_of_invites_from_one_address_is_dropped(tmp_path: Path) -> None:
    cc = _settings(flood_invites_per_second=2, workers=1)  # at most 4 INVITEs per 2 s from one address
    with Kamailio(cc, tmp_path, [free_udp_port()], fr_timer_ms=500) as kam:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            for _ in range(30):
                sock.sendto(_invite(cc, sock), (cc.sip_host, cc.sip_port))
            replies = _replies(sock, 1.5)
        answered = {_header(r, b"Call-ID") for r in replies}  # the INVITEs that got any answer
        log = kam.log_path.read_text(errors="replace")
        assert "flood of INVITEs" in log
        assert 1 <= len(answered) <= 10, replies  # a few of the 30 were let in, most were dropped
        # the rest of SIP goes on (a few tries: the machine may be busy with the other test worker)
        assert any(options_ping(HOST, cc.sip_port, timeout=1.0) is not None for _ in range(3))


def test_registrations_are_given_back_to_a_new_kamailio(tmp_path: Path) -> None:
    """What one Kamailio knew of the phones survives into the next (kept in a file), expired ones and
    broken lines excepted; a broken file gives nothing back and breaks nothing."""
    cc = _settings()
    with Kamailio(cc, tmp_path, [free_udp_port()]) as kam:
        with SeatPhone("1003", _registrar(cc), calls=1, timeout=15) as seat:
            contact = f"sip:1003@{HOST}:{seat.port}"
            assert kam.registrations() == {"1003": contact}
        saved = json.loads(kam.contacts_path.read_text())
        saved["1002"] = [{"contact": "sip:1002@127.0.0.1:9", "until": time.time() - 5}]  # expired
        saved["bad"] = [{"contact": "sip:x@127.0.0.1:9", "until": time.time() + 600}]  # not an extension
        saved["1001"] = [{"until": "soon"}, "broken"]
        kam.contacts_path.write_text(json.dumps(saved))
        kam.restart()
        assert kam.registrations() == {"1003": contact}
        kam.contacts_path.write_text("{not json")
        kam.restart()
        assert kam.registrations() == {}
