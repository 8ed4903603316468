"""The pool of media workers: keeps the configured number running and replaces any that dies.

A worker that dies (a pjsua2 assertion aborts the whole process, or someone kills it) costs only the
call it carried: the controller closes that call's record with the cause, and a new worker takes the
same SIP port so Kamailio's dispatcher list stays valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from callcenter.asr.client import live_socket_path
from callcenter.settings import CallCenterSettings, MediaHost

log = logging.getLogger("callcenter.pool")

MAX_BACKOFF_SECONDS = 10.0


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    sip_port: int
    rtp_port: int


def worker_specs(cc: CallCenterSettings, host: MediaHost | None = None) -> list[WorkerSpec]:
    """The controller's own workers, or a media host's (named after the host: names are unique)."""
    if host is None:
        sip, rtp, count, prefix = cc.worker_sip_port_base, cc.rtp_port_base, cc.workers, ""
    else:
        sip, rtp, count, prefix = host.worker_sip_port_base, host.rtp_port_base, host.workers, f"{host.name}-"
    return [WorkerSpec(f"{prefix}w{n:03d}", sip + n, rtp + n * cc.rtp_ports_per_worker) for n in range(count)]


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"media worker died ({name})"
    return f"media worker exited with status {returncode}"


class WorkerPool:
    def __init__(
        self,
        cc: CallCenterSettings,
        socket_path: Path,
        runtime_dir: Path,
        recordings_dir: Path,
        on_death: Callable[[str, str], None],
        timezone: str = "Asia/Shanghai",
        host: MediaHost | None = None,
        prompts_dir: Path | None = None,
    ) -> None:
        """`host`: the workers of a media host of its own, which find the controller over TCP
        (cc.controllers) and play their own copies of the prompts (`prompts_dir`)."""
        self.cc = cc
        self.timezone = timezone
        self.host = host
        self.prompts_dir = prompts_dir
        self.specs = worker_specs(cc, host)
        self.socket_path = socket_path
        self.runtime_dir = runtime_dir
        self.logs = runtime_dir / "workers"
        self.recordings_dir = recordings_dir
        self.on_death = on_death
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.restarts = 0
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def sip_ports(self) -> list[int]:
        return [spec.sip_port for spec in self.specs]

    async def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            self._watchers.append(asyncio.create_task(self._keep_running(spec), name=f"pool-{spec.name}"))

    async def _spawn(self, spec: WorkerSpec) -> asyncio.subprocess.Process:
        args = [
            sys.executable, "-m", "callcenter.worker",
            "--name", spec.name,
            "--host", self.host.address if self.host else self.cc.sip_host,
            "--sip-port", str(spec.sip_port),
            "--rtp-port", str(spec.rtp_port),
            "--rtp-range", str(self.cc.rtp_ports_per_worker),
            "--proxy", f"sip:{self.cc.sip_host}:{self.cc.sip_port};lr",
            "--caller-id", self.cc.hotline_number,
            "--recordings", str(self.recordings_dir),
            "--timezone", self.timezone,
            "--pjsip-log", str(self.logs / f"{spec.name}.pjsip.log"),
            "--ack-timeout", str(self.cc.ack_timeout_seconds),
        ]  # fmt: skip
        if self.host is None:
            args += [
                "--socket",
                str(self.socket_path),
                "--live-socket",
                str(live_socket_path(self.runtime_dir)),
            ]
        else:  # live text needs the controller's machine: media hosts' calls get after-call text only
            args += ["--controllers", ",".join(self.cc.controllers), "--media-host", self.host.name]
            args += ["--prompts", str(self.prompts_dir or "")]
        output = open(self.logs / f"{spec.name}.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            return await asyncio.create_subprocess_exec(*args, stdout=output, stderr=output, stdin=None)
        finally:
            output.close()

    async def _keep_running(self, spec: WorkerSpec) -> None:
        backoff = 0.2
        while not self._stopping:
            process = await self._spawn(spec)
            self.processes[spec.name] = process
            returncode = await process.wait()
            if self._stopping:
                return
            cause = describe_exit(returncode)
            log.error("%s: %s; starting a new one", spec.name, cause)
            self.restarts += 1
            self.on_death(spec.name, cause)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def pid(self, name: str) -> int | None:
        process = self.processes.get(name)
        return process.pid if process is not None and process.returncode is None else None

    async def stop(self, grace: float = 6.0) -> None:
        self._stopping = True
        running = [p for p in self.processes.values() if p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        if running:
            _done, pending = await asyncio.wait(
                [asyncio.create_task(p.wait()) for p in running], timeout=grace
            )
            if pending:
                for process in running:
                    if process.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            process.kill()
                await asyncio.wait(pending, timeout=2)
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
