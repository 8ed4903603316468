"""The hosts drill (issue 17): split mode over machines, network namespaces standing in for them.

    python -m hotline.benches.callcenter --scenario hosts [--workers-per-host 40] [--calls 72]
        [--seats 24] [--hold 60]

Machines (namespaces on one bridge, 10.77.0.0/24): Kamailio (`hotline sip-proxy`), two media hosts
(`hotline media-host`), an active and a standby controller (`hotline controller`), two web processes
(`hotline serve`), and the citizens' and seat phones' SIPp. PostgreSQL is this machine's, reached from
the namespaces through a forwarder on the bridge. Needs root (ip netns).

`--calls` citizens call at once, recorded, the first `--seats` of them talking to SIPp seat phones and
the rest queued. Then the media host carrying more of them is cut off (its link goes down: the other
keeps room for new calls) and the active controller is killed with SIGKILL, at the same moment.
Printed as JSON lines, then one JSON object:
  concurrent_calls                calls in progress before the cut
  takeover_s                      until the standby holds the lock and has written where it listens (≤ 5)
  answering_s                     until it also answers the control channel as the active controller
  recovery_s                      until a new citizen's call is answered (≤ 10)
  web_follow_s                    until a web process reports the telephony on again
  surviving_calls, surviving_calls_failed   the calls on m2 at the cut; how many of them failed (0)
  cut_host, cut_calls, cut_calls_closed   the host cut off, its calls, how many were closed with the cause
  lost_records                    citizens' calls without a closed record (0)
  lost_recordings                 finished calls whose recording is not in the store, checksum verified (0)
  cut_host_recordings_recovered   the cut host's recordings that reached the store once its link came back
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from callcenter.control import RemoteCallCentre, RemoteControl, control_token
from callcenter.prompts import ensure_prompts
from callcenter.testing.harness import wait_for
from callcenter.testing.sipkit import SeatPhone, citizen, citizen_numbers, pcap
from core.clock import SystemClock
from core.db import make_engine, make_session_factory
from core.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]
BRIDGE, GATEWAY, PREFIX = "hlbr0", "10.77.0.1", "hl-"
MACHINES = {
    "kam": "10.77.0.2", "m1": "10.77.0.11", "m2": "10.77.0.12", "c1": "10.77.0.21", "c2": "10.77.0.22",
    "w1": "10.77.0.31", "w2": "10.77.0.32", "cit": "10.77.0.41",
}  # fmt: skip
SECRET = "namespace-drill-secret-0123456789"
PG_ADMIN = os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


class Network:
    """A bridge and one namespace per machine, each with a veth on the bridge."""

    def up(self) -> None:
        self.down()
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for name, address in MACHINES.items():
            ns, veth = PREFIX + name, f"hv-{name}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", BRIDGE, "up")
            sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def down(self) -> None:
        for name in MACHINES:
            sh("ip", "netns", "del", PREFIX + name, check=False)
            sh("ip", "link", "del", f"hv-{name}", check=False)
        sh("ip", "link", "del", BRIDGE, check=False)

    def cut(self, name: str) -> None:
        sh("ip", "link", "set", f"hv-{name}", "down")

    def restore(self, name: str) -> None:
        sh("ip", "link", "set", f"hv-{name}", "up")


class Forwarder:
    """PostgreSQL listens on loopback only: socat on the bridge lets the namespaces in (in C, so the
    database's round trips cost what they would across a LAN, not a Python loop's time)."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.process = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{listen[1]},bind={listen[0]},fork,reuseaddr", "TCP:{}:{}".format(*target)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: _listening(*listen), 5, f"the forwarder on {listen}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(5)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Drill:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.network = Network()
        self.db_name = f"hotline_drill_{uuid.uuid4().hex[:8]}"
        self.local_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.db_name}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.seats = [str(2001 + n) for n in range(args.seats)]
        self.forwarder: Forwarder | None = None
        self.victim, self.survivor = "m1", "m2"
        self.answering = float("nan")
        self.sipp: list[Any] = []  # every SIPp started, stopped in close() whatever happened

    # --- set-up -------------------------------------------------------------------------------------
    def prepare(self) -> None:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        admin.dispose()
        engine = make_engine(self.local_url)
        upgrade(engine)
        engine.dispose()
        # Every machine makes the same prompts: made once here, not by six processes at once.
        ensure_prompts(self.folder / "prompts")
        self.network.up()
        self.forwarder = Forwarder((GATEWAY, 5432), ("127.0.0.1", 5432))
        web = make_engine(self.local_url)
        self.web = RemoteCallCentre(
            RemoteControl(
                make_session_factory(web), SystemClock("Asia/Shanghai"), control_token(SECRET.encode())
            )
        )

    def config(self, role: str) -> Path:
        a = self.args
        url = f"postgresql://postgres@{GATEWAY}:5432/{self.db_name}"
        hosts = "".join(
            f'[[callcenter.media_hosts]]\nname = "{name}"\naddress = "{MACHINES[name]}"\n'
            f"workers = {a.workers_per_host}\nworker_sip_port_base = 5100\nrtp_port_base = 20000\n"
            for name in ("m1", "m2")
        )
        seats = ", ".join(f'"{s}"' for s in self.seats)
        body = f"""[database]
url = "{url}"
[auth]
session_secret = "{SECRET}"
[dispatch]
category_tree = "{ROOT / "dispatch" / "category_tree.toml"}"
[understanding]
encoder = "none"
[callbacks]
enabled = false
[server]
host = "{MACHINES.get(role, "127.0.0.1")}"
port = 8000
[callcenter]
enabled = true
mode = "split"
kamailio = "own"
sip_host = "{MACHINES["kam"]}"
sip_port = 5060
kamailio_control = "{MACHINES["kam"]}:5069"
control_host = "{MACHINES.get(role, "127.0.0.1")}"
control_port = 5070
controllers = ["{MACHINES["c1"]}:5070", "{MACHINES["c2"]}:5070"]
seats = [{seats}]
ring_timeout_seconds = 10
wrap_up_seconds = 0
max_queue_length = 500
max_wait_seconds = 3600
unacknowledged_per_source = 20
runtime_dir = "{self.folder / role / "run"}"
recordings_dir = "{self.folder / "store"}"
prompts_dir = "{self.folder / "prompts"}"
{hosts}"""
        path = self.folder / f"{role}.toml"
        path.write_text(body, encoding="utf-8")
        return path

    def start(self, role: str, machine: str, *command: str) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{role}.log", "wb")  # noqa: SIM115 - handed to the child
        env = {**os.environ, "HOTLINE_CONFIG": str(self.config(machine))}
        env.pop("HOTLINE_DATABASE_URL", None)
        process = subprocess.Popen(
            ["ip", "netns", "exec", PREFIX + machine, sys.executable, "-m", "hotline.cli", *command],
            stdout=log, stderr=log, env=env, cwd=ROOT,
        )  # fmt: skip
        self.processes[role] = process
        return process

    def status(self) -> dict[str, Any]:
        try:
            return dict(self.web.controller.request("status"))
        except Exception:
            return {}

    def active_pid(self) -> int | None:
        self.web.controller._active = (0.0, None)
        return self.status().get("controller_pid")

    def lease_holder(self) -> int | None:
        """The pid in the controller lease (written by the one holding the lock, when it takes over)."""
        engine = create_engine(self.local_url)
        with engine.connect() as conn:
            holder = conn.execute(text("SELECT holder FROM controller_leases")).scalar()
        engine.dispose()
        return int(holder.rsplit(":", 1)[1]) if holder else None

    def calls_now(self) -> int:
        """Calls the active controller carries; -1 while it does not answer (busy, or none active):
        on this 2-core machine 72 calls, 80 workers and the SIPp crowd leave it little CPU."""
        try:
            return int(self.web.controller.queue_view()["calls"])
        except Exception:
            return -1

    @staticmethod
    def on_host(records: dict[str, dict[str, Any]], host: str) -> list[str]:
        return [
            u for u, r in records.items() if (r["worker"] or "").startswith(f"{host}-") and not r["ended_at"]
        ]

    def hosts(self) -> list[tuple[int, int]]:
        return [
            (h["workers_connected"], h["workers_in_service"]) for h in self.status().get("media_hosts", [])
        ]

    def records(self) -> list[dict[str, Any]]:
        engine = create_engine(self.local_url)
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(text("SELECT * FROM call_records ORDER BY id")).mappings()]
        engine.dispose()
        return rows

    def sign_in(self) -> None:
        engine = create_engine(self.local_url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE seats SET state = 'ready', idle_since = now(), state_since = now()"))
        engine.dispose()
        self.web.controller.seat_changed()

    def web_on(self, machine: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://{MACHINES[machine]}:8000/api/health", timeout=2) as answer:
                return json.loads(answer.read()).get("callcenter") == "on"
        except (OSError, ValueError):
            return False

    # --- the drill ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        a = self.args
        self.start("sip-proxy", "kam", "sip-proxy")
        first = self.start("controller-1", "c1", "controller")
        wait_for(lambda: self.active_pid() == first.pid, 90, "the first controller")
        second = self.start("controller-2", "c2", "controller")
        for name in ("m1", "m2"):
            self.start(name, name, "media-host", "--name", name)
        for name in ("w1", "w2"):
            self.start(name, name, "serve")
        want = [(a.workers_per_host, a.workers_per_host)] * 2
        wait_for(lambda: self.hosts() == want, 240, "every media worker connected and in service", every=1.0)
        wait_for(
            lambda: "waiting to take over" in (self.folder / "controller-2.log").read_text(),
            60,
            "the standby",
        )
        wait_for(lambda: self.web_on("w1") and self.web_on("w2"), 60, "both web processes")
        registrar = f"{MACHINES['kam']}:5060"
        where = {"host": MACHINES["cit"], "netns": PREFIX + "cit"}
        voice = pcap(f"tone:600:{a.hold + 30:g}")
        phones = [
            SeatPhone(s, registrar, calls=1, timeout=a.hold + 120, pcaps={"audio": voice}, **where)  # type: ignore[arg-type]
            for s in self.seats
        ]  # fmt: skip
        for phone in phones:
            self.sipp.append(phone)
            phone.start()
        wait_for(lambda: all(self.web.phone_contact(s) for s in self.seats), 30, "the seat phones")
        self.sign_in()
        speech = {"audio": pcap(f"speech:{a.hold:g}")}
        crowd = citizen(
            registrar, hold_ms=int(a.hold * 1000), calls=a.calls, rate=10, timeout=a.hold + 120,
            callers=citizen_numbers(a.calls, 13500000000), pcaps=speech, **where,  # type: ignore[arg-type]
        )  # fmt: skip
        self.sipp.append(crowd)
        crowd.start()
        wait_for(lambda: self.calls_now() >= a.calls, 90, "every citizen in", every=0.5)
        time.sleep(3)
        before = {r["uid"]: r for r in self.records()}
        concurrent = wait_for(lambda: self.calls_now() + 1, 30, "the call count") - 1
        on = {host: self.on_host(before, host) for host in ("m1", "m2")}
        self.victim = max(on, key=lambda host: len(on[host]))
        self.survivor = "m2" if self.victim == "m1" else "m1"
        print(json.dumps({"phase": "before_cut", "concurrent_calls": concurrent,
                          "on_m1": len(on["m1"]), "on_m2": len(on["m2"])}), flush=True)  # fmt: skip

        self.network.cut(self.victim)
        first.send_signal(signal.SIGKILL)
        cut = time.monotonic()
        follow: list[float] = []  # measured beside the rest: when w1 says the telephony is on again
        watcher = threading.Thread(target=self._follow, args=("w1", cut, follow), daemon=True)
        watcher.start()
        wait_for(lambda: self.lease_holder() == second.pid, 30, "the standby to take over", every=0.1)
        takeover = time.monotonic() - cut
        wait_for(lambda: self.active_pid() == second.pid, 30, "the standby to answer", every=0.25)
        answering = time.monotonic() - cut
        recovery = self._first_answered(registrar, where, cut)
        watcher.join(60)
        web_follow = follow[0] if follow else float("nan")
        self.answering = answering
        row = {"phase": "takeover", "takeover_s": round(takeover, 2), "answering_s": round(answering, 2)}
        print(json.dumps({**row, "recovery_s": round(recovery, 2) if recovery else None}), flush=True)

        crowd.wait(a.hold + 150)
        for phone in phones:
            phone.stop()
        wait_for(lambda: self.calls_now() == 0, 120, "every call to end", every=1.0)
        self.network.restore(self.victim)
        time.sleep(a.settle)  # m1's workers come back, hang up what was closed, upload what they have
        return self._figures(concurrent, on, takeover, recovery, web_follow)

    def _follow(self, machine: str, since: float, into: list[float]) -> None:
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not self.web_on(machine), 10, f"{machine} to see the controller gone")
            into.append(wait_for(lambda: self.web_on(machine) and time.monotonic() - since, 60, machine))

    def _first_answered(self, registrar: str, where: dict[str, str], since: float) -> float | None:
        while time.monotonic() - since < 60:
            probe = citizen(registrar, hold_ms=800, timeout=8, callers=["13900000000"], **where)  # type: ignore[arg-type]
            with probe:
                if probe.wait().ok:
                    return time.monotonic() - since
            time.sleep(0.3)
        return None

    def _figures(
        self,
        concurrent: int,
        on: dict[str, list[str]],
        takeover: float,
        recovery: float | None,
        follow: float,
    ) -> dict[str, Any]:
        records = {r["uid"]: r for r in self.records()}
        crowd = [r for r in records.values() if r["caller"].startswith("135")]
        survivors = [records[u] for u in on[self.survivor]]
        cut = [records[u] for u in on[self.victim]]
        finished = [r for r in crowd if r["ended_at"] and r["outcome"] != "failed"]
        lost_recordings = [r["uid"] for r in finished if not self._stored(r)]
        recovered = sum(1 for r in cut if self._stored(r))
        return {
            "machines": len(MACHINES),
            "workers": 2 * self.args.workers_per_host,
            "concurrent_calls": concurrent,
            "takeover_s": round(takeover, 2),
            "answering_s": round(self.answering, 2),
            "recovery_s": round(recovery, 2) if recovery is not None else None,
            "web_follow_s": round(follow, 2),
            "surviving_calls": len(survivors),
            "surviving_calls_failed": sum(1 for r in survivors if r["outcome"] == "failed"),
            "surviving_failure_causes": sorted(
                {r["hangup_cause"] or "" for r in survivors if r["outcome"] == "failed"}
            ),
            "cut_calls": len(cut),
            "cut_host": self.victim,
            "cut_calls_closed": sum(
                1 for r in cut if r["ended_at"] and self.victim in (r["hangup_cause"] or "")
            ),
            "cut_call_causes": sorted({r["hangup_cause"] or "" for r in cut}),
            "lost_records": self.args.calls - sum(1 for r in crowd if r["ended_at"]),
            "lost_recordings": len(lost_recordings),
            "lost_recording_uids": lost_recordings[:5],
            "cut_host_recordings_recovered": recovered,
        }

    def _stored(self, record: dict[str, Any]) -> bool:
        path = record.get("recording_path")
        if not path or not Path(path).exists() or not Path(path).is_relative_to(self.folder / "store"):
            return False
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() == record["recording_sha256"]

    def close(self) -> None:
        for sipp in self.sipp:
            with contextlib.suppress(Exception):
                sipp.stop()
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.forwarder is not None:
            self.forwarder.stop()
        self.network.down()
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scenario", choices=["hosts"], default="hosts")
    parser.add_argument("--workers-per-host", type=int, default=40)
    parser.add_argument("--calls", type=int, default=72)
    parser.add_argument("--seats", type=int, default=24)
    parser.add_argument("--hold", type=float, default=60.0, help="seconds each citizen stays on")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds for the cut host to come back")
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, recordings)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print(json.dumps({"error": "the hosts drill needs root (ip netns)"}))
        return 2
    folder = Path(tempfile.mkdtemp(prefix="hosts-drill-"))
    drill = Drill(args, folder)
    try:
        drill.prepare()
        figures = drill.run()
    finally:
        drill.close()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept {folder}", file=sys.stderr)
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
