"""Kamailio, the hotline's SIP front door: registrar for the seat phones, dispatcher over the media workers.

`render_config()` writes kamailio.cfg from the settings (template `kamailio.cfg.j2` beside this file);
`Kamailio` runs it as a child process with its own PID file, runtime folder, control socket and log,
and stops it by that PID.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

import jinja2

from callcenter.lifeline import group_members, process_alive
from callcenter.settings import CallCenterSettings

log = logging.getLogger("callcenter.kamailio")

TEMPLATE = "kamailio.cfg.j2"
# What a caller turned away because every worker has a call is told to wait before trying again.
RETRY_AFTER_SECONDS = 30
DISPATCHER_SET = 1
INSTALL_HINT = "install the Debian package: apt-get install kamailio"
# A unix socket path longer than this does not fit in sockaddr_un (108 bytes with the terminator).
MAX_SOCKET_PATH = 100
LOG_TAIL_LINES = 30
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


class KamailioError(RuntimeError):
    """Kamailio refused its configuration, did not start, or did not answer."""


class KamailioMissing(KamailioError):
    """The Kamailio executable is not installed."""


def find_kamailio(cc: CallCenterSettings) -> str | None:
    """The Kamailio executable; Debian puts it in /usr/sbin, which a normal user's PATH may lack."""
    return cc.kamailio_path() or shutil.which(cc.kamailio_binary, path=SBIN_PATH)


def _hostport(uri: str) -> tuple[str, int]:
    """Host and port of a `sip:host[:port]` URI (5060 when no port is given)."""
    rest = uri.removeprefix("sip:")
    host, _, port = rest.partition(":")
    return host, int(port) if port else 5060


def _extensions_regex(extensions: list[str]) -> str:
    return "^(" + "|".join(re.escape(ext) for ext in extensions) + ")$" if extensions else ""


def dispatcher_list(targets: list[tuple[str, int]]) -> str:
    """Kamailio's dispatcher list: one line per media worker (host, SIP port) in set 1."""
    return "".join(f"{DISPATCHER_SET} sip:{host}:{port}\n" for host, port in targets)


def render_config(
    cc: CallCenterSettings,
    runtime_dir: Path,
    worker_ports: list[int],
    *,
    ctl_socket: Path | None = None,
    fr_timer_ms: int = 3000,
    debug_level: int = 2,
) -> str:
    """kamailio.cfg for these settings; the dispatcher list is expected at runtime_dir/dispatcher.list.

    `worker_ports` is not written into the cfg (it lives in the dispatcher list) but a cfg without any
    worker makes no sense, so it is checked here.
    """
    if not worker_ports and not cc.media_hosts:
        raise ValueError("Kamailio needs at least one media worker port")
    workers = len(cc.worker_targets())  # the media hosts', or our own `workers`
    trunk_host, trunk_port = _hostport(cc.trunk_uri)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # a Kamailio cfg, not HTML
    )
    return env.get_template(TEMPLATE).render(
        host=cc.sip_host,
        port=cc.sip_port,
        hotline_number=cc.hotline_number,
        extensions_regex=_extensions_regex(cc.seats),
        trunk_host=trunk_host,
        trunk_port=trunk_port,
        dispatcher_list=runtime_dir / "dispatcher.list",
        ctl_socket=ctl_socket or runtime_dir / "run" / "kamailio_ctl",
        children=2,
        fr_timer_ms=fr_timer_ms,
        # how long a phone may ring: a survey callee up to a minute (workers cancel seats earlier)
        fr_inv_timer_ms=max(60000, int(cc.ring_timeout_seconds * 1000) + 15000),
        debug_level=debug_level,
        # each media worker carries one citizen: beyond that, a call has nowhere to go
        max_calls=workers,
        flood_density=cc.flood_invites_per_second * 2,
        noack_timeout=cc.ack_timeout_seconds,
        unacked_per_source=cc.unacknowledged_per_source or max(1, workers // 24),
        # Several media hosts: every worker is probed all the time, so a host that stops answering
        # (cut off, powered down) is left out within ping interval + fr_timer, before calls try it.
        probing_mode=1 if cc.media_hosts else 0,
        ping_interval=2 if cc.media_hosts else 5,
        worker_fr_timer_ms=1500 if cc.media_hosts else 0,
        ctl_tcp=cc.kamailio_control if cc.kamailio == "own" else None,
        retry_after=RETRY_AFTER_SECONDS,
    )


def options_ping(host: str, port: int, timeout: float = 0.5) -> bytes | None:
    """Send one SIP OPTIONS and return the reply (None when nothing came back in time)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(timeout)
        local_port = sock.getsockname()[1]
        tag = uuid.uuid4().hex[:12]
        message = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{local_port};branch=z9hG4bK{tag}\r\n"
            f"From: <sip:probe@{host}:{local_port}>;tag={tag}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {tag}@{host}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        try:
            sock.sendto(message.encode(), (host, port))
            return sock.recv(65535)
        except OSError:  # timeout, or ICMP port unreachable
            return None


def parse_ul_dump(text: str) -> dict[str, str]:
    """Extension -> contact URI from `kamcmd ul.dump` output (the first contact of each AoR)."""
    return {aor: contacts[0][0] for aor, contacts in parse_ul_contacts(text).items()}


def parse_ul_contacts(text: str) -> dict[str, list[tuple[str, int]]]:
    """Extension -> every (contact URI, seconds until it expires) of the AoR, from `ul.dump`."""
    result: dict[str, list[tuple[str, int]]] = {}
    aor = None
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        value = value.strip()
        if key == "AoR":
            aor = value.split("@", 1)[0]
        elif key == "Address" and aor is not None:
            result.setdefault(aor, []).append((value, 0))
        elif key == "Expires" and aor in result and value.isdigit():
            address, _ = result[aor][-1]
            result[aor][-1] = (address, int(value))
    return result


# Phone look-ups and the watchdogs read Kamailio's location table at most this often.
REGISTRATIONS_FRESH_SECONDS = 2.0


class Kamailio:
    """One Kamailio process for the call centre, with everything it owns under runtime_dir/kamailio/."""

    def __init__(
        self,
        cc: CallCenterSettings,
        runtime_dir: Path,
        worker_ports: list[int],
        *,
        start_timeout: float = 10.0,
        fr_timer_ms: int = 3000,
    ) -> None:
        self.cc = cc
        self.folder = Path(runtime_dir) / "kamailio"
        self.worker_ports = list(worker_ports)
        self.start_timeout = start_timeout
        self.fr_timer_ms = fr_timer_ms
        self.cfg_path = self.folder / "kamailio.cfg"
        self.dispatcher_path = self.folder / "dispatcher.list"
        self.pid_path = self.folder / "kamailio.pid"
        self.run_dir = self.folder / "run"
        self.log_path = self.folder / "kamailio.log"
        self.contacts_path = self.folder / "registrations.json"
        # Until a new Kamailio has been given the old registrations, what it knows is not written down
        # (an empty table read meanwhile would erase the ones to give back).
        self._restored = False
        self.ctl_socket = self._socket_path()
        # Kamailio on another machine (`hotline sip-proxy`): its control socket over TCP, read only.
        self.ctl_remote: str | None = None
        self._read: tuple[float, dict[str, str]] = (0.0, {})
        self.process: subprocess.Popen[bytes] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Kamailio:
        self._restored = False
        binary = self._binary()
        self.write_files()
        self._check_config(binary)
        self.clear_leftovers()
        self.ctl_socket.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            # In the foreground (-DD) under our reaper: it ends with us, even after a kill -9 of ours,
            # and takes the processes it forked along.
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "callcenter.reaper",
                    "--",
                    binary,
                    "-DD",
                    "-E",
                    "-f",
                    str(self.cfg_path),
                    "-P",
                    str(self.pid_path),
                    "-Y",
                    str(self.run_dir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its children die with its process group, not with our terminal
            )
        try:
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise
        try:
            self.restore_registrations()
        except (KamailioError, subprocess.TimeoutExpired, OSError) as exc:  # phones register again in time
            log.warning("registrations not given back to the new Kamailio: %s", exc)
        finally:
            self._restored = True
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM to the reaper (it ends Kamailio's whole group); SIGKILL to whatever is left."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout)
        self.clear_leftovers()
        if not self.ctl_socket.is_relative_to(self.folder):
            shutil.rmtree(self.ctl_socket.parent, ignore_errors=True)

    def leftovers(self) -> list[int]:
        """Kamailio processes running our configuration file that are not under our reaper: left by an
        earlier run that was killed, or by a main process that died before its children."""
        ours = str(self.cfg_path).encode()
        mine = self.kamailio_pids()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in mine:
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if ours in argv and b"callcenter.reaper" not in argv and b"-c" not in argv:
                found.append(int(entry.name))
        return found

    def clear_leftovers(self) -> list[int]:
        """Kill `leftovers()` and remove a stale PID file, so a new Kamailio can start."""
        stale = self.leftovers()
        for pid in stale:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        while stale and time.monotonic() < deadline and any(process_alive(pid) for pid in stale):
            time.sleep(0.02)
        if stale:
            log.warning("killed %d Kamailio process(es) left over from an earlier run: %s", len(stale), stale)
        if not self.running:
            self.pid_path.unlink(missing_ok=True)
        return stale

    def kamailio_pids(self) -> set[int]:
        """Kamailio's processes under our reaper (its process group), empty when none runs."""
        if not self.running:
            return set()
        try:
            main = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return set()
        try:
            return group_members(os.getpgid(main))
        except ProcessLookupError:
            return set()

    @property
    def pid(self) -> int | None:
        """The reaper's pid (its process group holds only itself; Kamailio has a group of its own)."""
        return self.process.pid if self.process else None

    @classmethod
    def elsewhere(cls, cc: CallCenterSettings, runtime_dir: Path) -> Kamailio:
        """The Kamailio that `hotline sip-proxy` runs on its own machine: asked, never started."""
        kamailio = cls(cc, runtime_dir, [])
        kamailio.ctl_remote = cc.kamailio_control
        return kamailio

    def restart(self) -> Kamailio:
        """After Kamailio died: clear what it left and start a new one (raises as `start`)."""
        self.stop(timeout=2.0)
        return self.start()

    def describe_exit(self) -> str:
        code = self.exit_code
        if code is None:
            return "running"
        if code > 128:
            with contextlib.suppress(ValueError):
                return f"Kamailio killed by {signal.Signals(code - 128).name}"
        return f"Kamailio exited with status {code}"

    @property
    def exit_code(self) -> int | None:
        """How the last Kamailio ended (128 + signal when killed), None while it runs."""
        return self.process.poll() if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Kamailio:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- files -------------------------------------------------------------------------------------
    def write_files(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.ctl_socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        cfg = render_config(
            self.cc, self.folder, self.worker_ports, ctl_socket=self.ctl_socket, fr_timer_ms=self.fr_timer_ms
        )
        self.cfg_path.write_text(cfg, encoding="utf-8")
        self.dispatcher_path.write_text(dispatcher_list(self.targets()), encoding="utf-8")

    def targets(self) -> list[tuple[str, int]]:
        """Every media worker: the media hosts' (split mode over machines), else our own pool's."""
        if self.cc.media_hosts:
            return self.cc.worker_targets()
        return [(self.cc.sip_host, port) for port in self.worker_ports]

    def _socket_path(self) -> Path:
        wanted = self.folder / "run" / "kamailio_ctl"
        if len(str(wanted)) <= MAX_SOCKET_PATH:
            return wanted
        # Deep runtime folders overflow sockaddr_un: a short folder named after ours, removed at stop().
        digest = hashlib.sha1(str(self.folder.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"kam-{digest}" / "ctl"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- checks ------------------------------------------------------------------------------------
    def _binary(self) -> str:
        path = self.cc.kamailio_path()
        if path is None:
            raise KamailioMissing(
                f"Kamailio executable {self.cc.kamailio_binary!r} not found: {INSTALL_HINT}"
            )
        return path

    def _check_config(self, binary: str) -> None:
        check = subprocess.run(
            [binary, "-c", "-f", str(self.cfg_path)], capture_output=True, text=True, timeout=30, check=False
        )
        if check.returncode != 0:
            tail = "\n".join((check.stdout + check.stderr).splitlines()[-LOG_TAIL_LINES:])
            raise KamailioError(f"Kamailio rejected {self.cfg_path}:\n{tail}")

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise KamailioError(
                    f"Kamailio exited with status {self.process.returncode} at start; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            reply = options_ping(self.cc.sip_host, self.cc.sip_port, timeout=0.2)
            if reply and reply.startswith(b"SIP/2.0 200"):
                return
        raise KamailioError(
            f"Kamailio did not answer OPTIONS on {self.cc.sip_host}:{self.cc.sip_port} within "
            f"{self.start_timeout:.0f} s; log {self.log_path}:\n{self.log_tail()}"
        )

    # --- control socket ----------------------------------------------------------------------------
    def rpc(self, *command: str) -> str:
        """Run one RPC command through kamcmd on our control socket and return its output."""
        kamcmd = shutil.which("kamcmd", path=self._tool_path())
        if kamcmd is None:
            raise KamailioMissing(f"kamcmd not found: {INSTALL_HINT}")
        result = subprocess.run(
            [
                kamcmd,
                "-s",
                f"tcp:{self.ctl_remote}" if self.ctl_remote else f"unix:{self.ctl_socket}",
                *command,
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if result.returncode != 0:
            raise KamailioError(
                f"kamcmd {' '.join(command)} failed: {(result.stderr or result.stdout).strip()}"
            )
        return result.stdout

    def _tool_path(self) -> str:
        binary = find_kamailio(self.cc)  # kamcmd is installed beside kamailio
        folders = [str(Path(binary).parent)] if binary else []
        return os.pathsep.join([*folders, os.environ.get("PATH", ""), SBIN_PATH])

    def fresh_registrations(self, max_age: float = REGISTRATIONS_FRESH_SECONDS) -> dict[str, str] | None:
        """The registrations, read again when older than `max_age` (each read is also what a restarted
        Kamailio is given back); None when they cannot be read (a busy or gone Kamailio)."""
        read_at, found = self._read
        if time.monotonic() - read_at > max_age:
            try:
                found = self.registrations()
            except (KamailioError, OSError, subprocess.TimeoutExpired) as exc:
                log.warning("cannot read the registrations from Kamailio: %s", exc)
                return None
            self._read = (time.monotonic(), found)
        return found

    @property
    def registrations_age(self) -> float:
        """Seconds since the registrations were last read (how lately Kamailio answered)."""
        return time.monotonic() - self._read[0]

    def registrations(self) -> dict[str, str]:
        """Registered extensions and their (first) contact URI; all of them are also kept on disk."""
        return {ext: found[0][0] for ext, found in self.contacts().items()}

    def contacts(self) -> dict[str, list[tuple[str, int]]]:
        """Every contact of every registered extension, with its seconds left; kept on disk too."""
        found = parse_ul_contacts(self.rpc("ul.dump"))
        self.remember_registrations(found)
        return found

    # Kamailio keeps its location table in memory only: a restarted Kamailio (killed, or with a new
    # `hotline serve`) would not know where the seat phones are until each registers again (up to its
    # expiry, an hour). What it last knew is kept in a file and given back to the new one.
    def remember_registrations(self, contacts: dict[str, list[tuple[str, int]]]) -> None:
        if not self._restored:
            return
        now = time.time()
        data = {
            ext: [{"contact": c, "until": now + seconds} for c, seconds in found]
            for ext, found in contacts.items()
        }
        partial = self.contacts_path.with_suffix(".part")
        partial.write_text(json.dumps(data), encoding="utf-8")
        partial.replace(self.contacts_path)

    def _wait_for_control(self, timeout: float = 5.0) -> None:
        """Kamailio answers SIP a moment before its control socket: wait for that too."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.rpc("core.version")
                return
            except KamailioError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def restore_registrations(self) -> int:
        """Give a new Kamailio the registrations the last one had that have not expired; how many."""
        try:
            data = json.loads(self.contacts_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0
        self._wait_for_control()
        restored, now = 0, time.time()
        entries = [
            (ext, entry)
            for ext, found in (data.items() if isinstance(data, dict) else ())
            for entry in (found if isinstance(found, list) else [])
        ]
        for ext, entry in entries:
            try:
                seconds, contact = int(float(entry["until"]) - now), str(entry["contact"])
            except (KeyError, TypeError, ValueError):
                continue
            if seconds < 1 or not re.fullmatch(r"[0-9]{1,16}", ext):
                continue
            # kamcmd sends digits as integers: the AoR and the path ("0": none) go as strings
            answer = self.rpc(
                "ul.add", "location", f"s:{ext}", contact, str(seconds), "1.0", "s:0", "0", "0", "0"
            )
            if answer.strip():
                log.warning("registration of %s not restored: %s", ext, answer.strip())
                continue
            restored += 1
        if restored:
            log.info("restored %d seat phone registrations in the new Kamailio", restored)
        return restored

    def reload_dispatcher(self, worker_ports: list[int] | None = None) -> None:
        """Rewrite the dispatcher list (when ports are given) and make Kamailio read it again."""
        if worker_ports is not None:
            self.worker_ports = list(worker_ports)
            self.dispatcher_path.write_text(dispatcher_list(self.targets()), encoding="utf-8")
        self.rpc("dispatcher.reload")

    def dispatcher_states(self) -> dict[str, str]:
        """Each worker URI and its dispatcher flags ("A": active, "I": inactive, "P": probed, …)."""
        return dict(re.findall(r"URI:\s*(sip:\S+)\s+FLAGS:\s*(\S+)", self.rpc("dispatcher.list")))

    def dispatcher_targets(self) -> list[str]:
        """The worker URIs Kamailio currently has in its dispatcher set."""
        return re.findall(r"URI:\s*(sip:\S+)", self.rpc("dispatcher.list"))
