"""SIPp test kit for the call centre: run SIPp scenarios as citizens, seat phones and survey callees.

- `Sipp` runs one scenario of `scenarios/` as a subprocess (own work folder, logs, stat CSV) and reports
  successful/failed calls and the error log; it is a context manager that always stops its process.
- `SeatPhone` is a SIPp UAS that registers its extension with Kamailio first (a one-shot REGISTER run
  whose Contact points at the UAS) and stays registered.
- `pcap()` makes (and caches) RTP pcaps with `callcenter.testing.mkpcap`.
- `send_raw_udp()` sends arbitrary bytes (malformed SIP) and returns the reply, if any.

Scenarios (-d is `hold_ms`, -recv_timeout `recv_timeout_ms`; `citizen()` sets both; the `pcap/` slots
`audio` and `dtmf` are linked into the work folder; [keys] are set with `keys=`):
  citizen.xml         caller to [service] (12345): plays pcap/audio.pcap, waits for the far end's BYE
                      (answering INFO) up to -recv_timeout ms, then hangs up itself
  citizen_cancel.xml  caller that hangs up while it rings: CANCEL -d ms after the 180
  citizen_dtmf.xml    caller that keys digits: pcap/dtmf.pcap (RFC 4733 PT 101), INFO [info_digit]
                      ("none": no INFO) [info_delay_ms] after the answer, then holds like citizen.xml
  register.xml        REGISTER [service] with Contact port [contact_port], Expires [expires]
  uas_answer.xml      phone that answers after -d ms and talks until BYE (echo with rtp_echo, or plays
                      pcap/audio.pcap: RFC 4733 digits there make the survey callee "press keys")
  uas_info.xml        phone that answers after -d ms and sends INFO [info_digit] [info_delay_ms] later
  uas_ringing.xml     phone that rings until CANCEL (487)
  uas_busy.xml        phone that answers 486
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from callcenter.testing.mkpcap import make_pcap

SCENARIOS = Path(__file__).parent / "scenarios"
HOST = "127.0.0.1"
PCAP_CACHE = Path(tempfile.gettempdir()) / "hotline-sipkit-pcap"
# Every scenario may use these keywords; SIPp refuses to run a scenario with an unknown [keyword].
DEFAULT_KEYS = {"info_digit": "1", "info_delay_ms": "1000", "contact_port": "5060", "expires": "3600"}
# Survey calls come from pjsua2, which offers telephone-event with payload type 120.
PJSUA_DTMF_PT = 120
BIND_ATTEMPTS = 3


def sipp_binary() -> str | None:
    return shutil.which("sipp")


def free_udp_port(host: str = HOST) -> int:
    """A UDP port nobody uses right now (the kernel picks it; free again once the probe closes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_media_port(host: str = HOST, span: int = 4) -> int:
    """An even port with `span` free ports from it (SIPp uses -mp, -mp+2 for echo, +2 per call)."""
    for _ in range(200):
        base = free_udp_port(host) & ~1
        if base + span < 65536 and all(_udp_free(host, base + n) for n in range(span)):
            return base
    raise RuntimeError("no free block of UDP ports for media")


def _udp_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def send_raw_udp(host: str, port: int, payload: bytes, timeout: float = 1.0) -> bytes | None:
    """Send one datagram and return the first reply, or None when nothing came back in `timeout` s."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(timeout)
        sock.sendto(payload, (host, port))
        try:
            return sock.recv(65535)
        except OSError:  # timeout or ICMP port unreachable
            return None


def pcap(*segments: str, codec: str = "PCMA", dtmf_pt: int = 101, cache: Path = PCAP_CACHE) -> Path:
    """A pcap of the mkpcap segments (e.g. "tone:1000:5", "dtmf:1"), generated once and cached."""
    key = hashlib.sha256(repr((segments, codec, dtmf_pt)).encode()).hexdigest()[:16]
    path = cache / f"{codec.lower()}-pt{dtmf_pt}-{key}.pcap"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")  # parallel test runs: atomic rename
        make_pcap(partial, segments, codec, dtmf_pt)
        partial.replace(path)
    return path


def dtmf_pcap(digits: str, *, pt: int = 101, lead_in: float = 1.0, codec: str = "PCMA") -> Path:
    """Key presses as RFC 4733 events after `lead_in` s of silence; pt=PJSUA_DTMF_PT for survey callees."""
    return pcap(f"sil:{lead_in}", *(f"dtmf:{d}" for d in digits), "sil:0.2", codec=codec, dtmf_pt=pt)


def citizen_numbers(count: int, first: int = 13800000000) -> list[str]:
    return [str(first + n) for n in range(count)]


@dataclass
class SippResult:
    returncode: int
    successful: int
    failed: int
    errors: str
    stats: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0

    def __str__(self) -> str:
        return f"rc={self.returncode} ok={self.successful} failed={self.failed} errors={self.errors[:3000]!r}"


class Sipp:
    """One SIPp process running one scenario against `remote` (host:port), or as a UAS when remote is None."""

    def __init__(
        self,
        scenario: str | Path,
        *,
        remote: str | None = None,
        service: str = "12345",
        port: int | None = None,
        media_port: int | None = None,
        calls: int = 1,
        limit: int | None = None,
        rate: float | None = None,
        hold_ms: int = 0,
        recv_timeout_ms: int | None = None,
        timeout: float = 30,
        keys: Mapping[str, str] | None = None,
        pcaps: Mapping[str, Path] | None = None,
        callers: Sequence[str] | None = None,
        rtp_echo: bool = False,
        extra_args: Sequence[str] = (),
        workdir: Path | None = None,
        host: str = HOST,
        netns: str | None = None,
    ) -> None:
        """`host`: the local address SIPp uses; `netns`: a network namespace to run it in (a machine
        of the namespace drill)."""
        self.scenario = _scenario_path(scenario)
        self.host = host
        self.netns = netns
        self.remote = remote
        self.port = port or free_udp_port()
        self.media_port = media_port or free_media_port()
        self.timeout = timeout
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="sipp-"))
        self.error_file = self.workdir / "errors.log"
        self.stat_file = self.workdir / "stats.csv"
        self._prepare(pcaps or {}, callers or citizen_numbers(calls))
        self.args = self._command(service, calls, limit, rate, hold_ms, {**DEFAULT_KEYS, **(keys or {})})
        self.args += ["-rtp_echo"] if rtp_echo else []
        self.args += ["-recv_timeout", str(recv_timeout_ms)] if recv_timeout_ms else []
        self.args += list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.result: SippResult | None = None

    def _prepare(self, pcaps: Mapping[str, Path], callers: Sequence[str]) -> None:
        # SIPp looks for pcap/ next to the scenario: a copy in the work folder sits next to our links.
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.scenario = Path(shutil.copy(self.scenario, self.workdir / self.scenario.name))
        folder = self.workdir / "pcap"
        folder.mkdir(parents=True, exist_ok=True)
        slots = {"audio": pcap("sil:0.02"), "dtmf": pcap("sil:0.02"), **pcaps}
        for slot, source in slots.items():
            link = folder / f"{slot}.pcap"
            link.unlink(missing_ok=True)
            link.symlink_to(Path(source).resolve())
        with (self.workdir / "callers.csv").open("w", newline="") as out:
            out.write("SEQUENTIAL\n")
            csv.writer(out, delimiter=";", lineterminator="\n").writerows([c] for c in callers)

    def _command(
        self,
        service: str,
        calls: int,
        limit: int | None,
        rate: float | None,
        hold_ms: int,
        keys: dict[str, str],
    ) -> list[str]:
        binary = sipp_binary()
        if binary is None:
            raise FileNotFoundError("sipp not found: apt-get install sip-tester")
        args = [binary, "-sf", str(self.scenario), "-i", self.host, "-p", str(self.port)]
        args += ["-mi", self.host, "-mp", str(self.media_port), "-s", service, "-m", str(calls)]
        args += ["-l", str(limit or calls), "-d", str(hold_ms), "-nostdin", "-timeout", f"{self.timeout:g}s"]
        args += ["-inf", str(self.workdir / "callers.csv"), "-trace_err", "-error_file", str(self.error_file)]
        args += ["-trace_stat", "-stf", str(self.stat_file), "-fd", "1"]
        if rate is not None:
            args += ["-r", f"{rate:g}", "-rp", "1000"]
        for key, value in keys.items():
            args += ["-key", key, value]
        if self.netns:
            args = ["ip", "netns", "exec", self.netns, *args]
        return [*args, self.remote] if self.remote else args

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Sipp:
        with (self.workdir / "sipp.out").open("wb") as out:
            self.process = subprocess.Popen(
                self.args, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to finish (at most `timeout`, default its own -timeout plus a margin)."""
        assert self.process is not None, "start() first"
        try:
            self.process.wait(timeout if timeout is not None else self.timeout + 10)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        return self._collect()

    def wait_until_listening(self, timeout: float = 5.0) -> None:
        """For a UAS: return once SIPp has bound its SIP port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._listening():
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.02)
        said = f"{self.output()[-2000:]} {_read(self.error_file)[-1000:]}"
        raise RuntimeError(f"SIPp did not listen on {self.port}: {said}")

    def _listening(self) -> bool:
        if self.netns is None:
            return not _udp_free(self.host, self.port)
        found = subprocess.run(
            ["ip", "netns", "exec", self.netns, "ss", "-ulnH", f"sport = :{self.port}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return bool(found.stdout.strip())

    def stop(self) -> SippResult | None:
        """Stop SIPp (SIGTERM, then SIGKILL) and collect what it wrote; None if it never started."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(3)
        return self._collect()

    def _collect(self) -> SippResult:
        if self.result is None:
            assert self.process is not None and self.process.returncode is not None
            stats = _last_stats(self.stat_file)
            self.result = SippResult(
                returncode=self.process.returncode,
                successful=int(stats.get("SuccessfulCall(C)", 0) or 0),
                failed=int(stats.get("FailedCall(C)", 0) or 0),
                errors=_read(self.error_file),
                stats=stats,
            )
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
        return self.result

    def output(self) -> str:
        return _read(self.workdir / "sipp.out")

    def __enter__(self) -> Sipp:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _scenario_path(scenario: str | Path) -> Path:
    path = Path(scenario)
    if path.suffix != ".xml":
        path = SCENARIOS / f"{scenario}.xml"
    if not path.exists():
        raise FileNotFoundError(f"no SIPp scenario {path}")
    return path


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _last_stats(path: Path) -> dict[str, str]:
    """The last row of SIPp's statistics CSV (cumulative counters are the (C) columns)."""
    text = _read(path)
    rows = [row for row in csv.reader(text.splitlines(), delimiter=";") if row]
    return dict(zip(rows[0], rows[-1], strict=False)) if len(rows) > 1 else {}


def citizen(remote: str, *, hold_ms: int = 1000, scenario: str = "citizen", **kwargs: object) -> Sipp:
    """A citizen scenario (citizen, citizen_dtmf, citizen_cancel) calling through `remote` (Kamailio).

    The hold is both -recv_timeout (citizen/citizen_dtmf wait that long for the far end's BYE, then hang
    up) and -d (citizen_cancel's time between the 180 and its CANCEL).
    """
    return Sipp(scenario, remote=remote, hold_ms=hold_ms, recv_timeout_ms=hold_ms, **kwargs)  # type: ignore[arg-type]


def run(scenario: str | Sipp, **kwargs: object) -> SippResult:
    """Run a scenario (a name and Sipp arguments, or a prepared Sipp) to the end.

    A named scenario whose ports we picked is run again on new ones when another process took a port
    between our probe and SIPp's bind (tests run in parallel; the kernel hands out the same range).
    """
    if isinstance(scenario, Sipp):
        with scenario:
            return scenario.wait()
    ports_chosen = kwargs.get("port") is not None or kwargs.get("media_port") is not None
    for _ in range(BIND_ATTEMPTS):
        result = run(Sipp(scenario, **kwargs))  # type: ignore[arg-type]
        if ports_chosen or not port_clash(result):
            break
    return result


def port_clash(result: SippResult) -> bool:
    """SIPp stopped before any call because one of its ports was taken."""
    return result.returncode != 0 and result.successful == 0 and "Address already in use" in result.errors


class SeatPhone:
    """A phone that registers `extension` with Kamailio, then answers (or rings, or is busy) as a SIPp UAS.

    `behaviour` is a UAS scenario name: uas_answer (default), uas_ringing, uas_busy, uas_info.
    """

    def __init__(
        self,
        extension: str,
        registrar: str,
        *,
        behaviour: str = "uas_answer",
        calls: int = 1,
        answer_after_ms: int = 0,
        timeout: float = 30,
        **sipp_args: object,
    ) -> None:
        self.extension = extension
        self.registrar = registrar
        self._new_uas = lambda: Sipp(
            behaviour,
            service=extension,
            calls=calls,
            hold_ms=answer_after_ms,
            timeout=timeout,
            **sipp_args,  # type: ignore[arg-type]
        )
        self._ports_chosen = sipp_args.get("port") is not None or sipp_args.get("media_port") is not None
        self._where = {k: sipp_args[k] for k in ("host", "netns") if k in sipp_args}
        self.uas = self._new_uas()

    @property
    def port(self) -> int:
        return self.uas.port

    def register(self, expires: int = 3600) -> SippResult:
        keys = {"contact_port": str(self.uas.port), "expires": str(expires)}
        return run(
            "register", remote=self.registrar, service=self.extension, keys=keys, timeout=10, **self._where
        )

    def start(self) -> SeatPhone:
        for attempt in range(1, BIND_ATTEMPTS + 1):
            self.uas.start()
            try:
                self.uas.wait_until_listening()
                break
            except RuntimeError as error:  # a port taken since we probed it: new ports, once more
                clash = "Address already in use" in str(error)
                if self._ports_chosen or attempt == BIND_ATTEMPTS or not clash:
                    raise
                self.uas.stop()
                self.uas = self._new_uas()
        result = self.register()
        if not result.ok:
            self.uas.stop()
            raise RuntimeError(f"seat {self.extension} could not register with {self.registrar}: {result}")
        return self

    def wait(self, timeout: float | None = None) -> SippResult:
        return self.uas.wait(timeout)

    def stop(self) -> SippResult | None:
        return self.uas.stop()

    def __enter__(self) -> SeatPhone:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running(*processes: Sipp | SeatPhone) -> Iterator[None]:
    """Start several UAS/phones and stop all of them at the end, also when a start fails."""
    started: list[Sipp | SeatPhone] = []
    try:
        for process in processes:
            started.append(process)
            process.start()
            if isinstance(process, Sipp):
                process.wait_until_listening()
        yield
    finally:
        for process in reversed(started):
            process.stop()
