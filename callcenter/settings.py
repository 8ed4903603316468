"""The `[callcenter]` section of config.toml: SIP front door, media workers, seats, queue, recordings."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from core.settings import Section


def _default_seats() -> list[str]:
    return [str(1000 + n) for n in range(1, 25)]


class TransferTargets(Section):
    # Where "transfer to 110/119/120" sends the citizen (SIP URIs of the emergency centres' trunks).
    police: str = Field(default="sip:110@127.0.0.1:5090", alias="110")
    fire: str = Field(default="sip:119@127.0.0.1:5090", alias="119")
    medical: str = Field(default="sip:120@127.0.0.1:5090", alias="120")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def uri(self, service: str) -> str:
        return {"110": self.police, "119": self.fire, "120": self.medical}[service]


class AsrSettings(Section):
    """`[callcenter.asr]`: speech to text (callcenter/asr): Whisper from PyPI packages, or Vosk."""

    # The engine of the after-call transcripts: "whisper" (faster-whisper with the Whisper base model
    # that `make` installs from PyPI) or "vosk" (needs model_path). Live partial text is always Vosk's,
    # and only when model_path is set.
    engine: Literal["whisper", "vosk"] = "vosk"
    # A Vosk model folder (e.g. vosk-model-small-cn-0.22); relative paths start at config.toml's folder.
    model_path: Path | None = None
    # A faster-whisper model folder of your own; empty: the packaged Whisper base, joined into
    # whisper_folder once and checked against the upstream SHA-256 on every load.
    whisper_model: Path | None = None
    whisper_folder: Path = Path("var/models/whisper-base")
    # Beam search width (5: best text; 1: faster on long audio, a little less accurate) and CPU threads
    # per transcription process.
    whisper_beam_size: int = Field(default=5, ge=1, le=10)
    whisper_threads: int = Field(default=1, ge=1, le=32)
    # The caller's opening statement (智能填单): transcribed with Whisper as soon as they first pause
    # and put into the console's 诉求内容 (engine = "whisper"), on this many threads of the live process.
    opening_statement: bool = True
    opening_workers: int = Field(default=1, ge=1, le=16)
    # CPU threads per opening statement: the caller is waiting for the text, so more than after a call.
    opening_threads: int = Field(default=2, ge=1, le=32)
    # Worker processes that transcribe finished calls; each loads the model once (memory: one model each).
    transcription_processes: int = Field(default=1, ge=1, le=64)
    # Upper bound of live streams (partial text while the citizen talks); the live recogniser lowers it
    # further to what it measures this machine's CPU keeps up with. Calls beyond it: after-call only.
    live_streams: int = Field(default=24, ge=0, le=500)
    # Transcribe the operator's channel of the recording too (twice the work; the citizen's always).
    operator_channel: bool = False
    # The dashboard warns when a finished call has waited longer than this for its transcript.
    backlog_warning_minutes: float = Field(default=15, gt=0, le=1440)
    # Correct recognised text towards hotline words (knowledge base, category tree, routing table).
    vocabulary_correction: bool = True


class MediaHost(Section):
    """`[[callcenter.media_hosts]]`: a machine whose media workers `hotline media-host --name NAME`
    runs (split mode). Kamailio's dispatcher spreads calls over the workers of every host."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,15}$")
    # the host's address: its workers listen for SIP and RTP here, and Kamailio sends calls here
    address: str
    workers: int = Field(default=36, ge=1, le=500)
    worker_sip_port_base: int = Field(default=5100, ge=1024, le=65000)
    rtp_port_base: int = Field(default=20000, ge=1024, le=65000)


class CallCenterSettings(Section):
    # Start Kamailio, the media workers and the queue controller with `hotline serve`.
    enabled: bool = False
    # "inline": `hotline serve` runs the telephony and the scheduled work in its own process (one box,
    # one web process, SQLite or PostgreSQL). "split": they run in `hotline controller` (one active,
    # any number on standby, PostgreSQL only) and `hotline serve --workers N` only serves pages and API.
    mode: Literal["inline", "split"] = "inline"
    # Where the active controller listens for the web processes and the media hosts' workers (split
    # mode); 0: any free port.
    control_host: str = "127.0.0.1"
    control_port: int = Field(default=5070, ge=0, le=65535)
    # Split mode over several machines: where every controller (active and standby) listens, for the
    # media hosts' workers to find the active one ("host:port" each).
    controllers: list[str] = Field(default_factory=list)
    # Split mode: the machines that carry the calls' media. Empty: the active controller runs the
    # `workers` media workers itself, on its own machine.
    media_hosts: list[MediaHost] = Field(default_factory=list)
    # Who runs Kamailio: "controller" (the active controller, on its machine) or "own" (`hotline
    # sip-proxy` on a machine of its own, so the SIP address stays when a standby controller takes
    # over; the controllers read its registrations at kamailio_control).
    kamailio: Literal["controller", "own"] = "controller"
    # "own": where Kamailio's control socket listens for the controllers (TCP, host:port).
    kamailio_control: str = "127.0.0.1:5069"
    kamailio_binary: str = "kamailio"
    # Kamailio listens here; seat phones register here and citizens' calls arrive here.
    sip_host: str = "127.0.0.1"
    sip_port: int = Field(default=5060, ge=1, le=65535)
    # The number citizens dial (the request user part Kamailio hands to the media workers).
    hotline_number: str = "12345"
    # Media workers: each carries one citizen with every leg (seat, consult, supervisor) that call needs.
    # Default: 24 seats talking plus 48 callers waiting.
    workers: int = Field(default=72, ge=1, le=500)
    # Initial INVITEs to the hotline number one address may send per second before Kamailio drops
    # the rest as a flood (its pike module; a carrier trunk brings every citizen from one address,
    # so keep it well above the busiest hour). 0: no flood limit.
    flood_invites_per_second: int = Field(default=50, ge=0, le=10000)
    # A caller's phone acknowledges the answer (ACK) within milliseconds. A worker whose answer is not
    # acknowledged within this many seconds gives the call up and is free again, and Kamailio stops
    # counting it, instead of pjsip's 32 s.
    ack_timeout_seconds: int = Field(default=4, ge=1, le=32)
    # Answers not yet acknowledged one source address may have at once; beyond, its INVITEs get 503.
    # Honest phones and carriers acknowledge at once; a flood of INVITEs never acknowledged is held to
    # this many workers per address. 0: one per 24 workers (at least one).
    unacknowledged_per_source: int = Field(default=0, ge=0, le=1000)
    worker_sip_port_base: int = Field(default=5100, ge=1024, le=65000)
    # Each worker gets rtp_ports_per_worker ports starting at rtp_port_base + n * rtp_ports_per_worker.
    rtp_port_base: int = Field(default=20000, ge=1024, le=65000)
    rtp_ports_per_worker: int = Field(default=20, ge=8, le=1000)
    # Seat extensions (seat phones register these with Kamailio).
    seats: list[str] = Field(default_factory=_default_seats)
    # A seat that does not answer within this many seconds is skipped and set to not-ready.
    ring_timeout_seconds: float = Field(default=15, gt=0, le=120)
    # After-call work (话后处理) before a seat is offered the next call.
    wrap_up_seconds: float = Field(default=15, ge=0, le=600)
    # Callers beyond this many in the queue, or waiting longer than this, are offered a callback.
    max_queue_length: int = Field(default=48, ge=0, le=1000)
    max_wait_seconds: float = Field(default=180, gt=0, le=3600)
    # The digit a caller presses to leave a callback request when the queue is full or too slow.
    callback_digit: str = Field(default="1", pattern=r"^[0-9*#]$")
    # Kamailio sends a worker's call to a number that is not a registered extension here (callbacks).
    trunk_uri: str = Field(default="sip:127.0.0.1:5090", pattern=r"^sip:[^@;?]+$")
    transfers: TransferTargets = TransferTargets()
    # Speech to text: after-call transcripts and live text (callcenter/asr).
    asr: AsrSettings = AsrSettings()
    # Files: recordings, generated prompts, Kamailio's and the workers' runtime folder and logs.
    recordings_dir: Path = Path("var/recordings")
    prompts_dir: Path = Path("var/prompts")
    runtime_dir: Path = Path("var/run/callcenter")

    @field_validator("seats")
    @classmethod
    def _unique_extensions(cls, value: list[str]) -> list[str]:
        bad = [ext for ext in value if not ext.isdigit() or not 2 <= len(ext) <= 8]
        if bad:
            raise ValueError(f"seat extensions must be 2-8 digits, got {bad}")
        if len(set(value)) != len(value):
            raise ValueError("seat extensions must be unique")
        return value

    @model_validator(mode="after")
    def _ports_do_not_overlap(self) -> CallCenterSettings:
        sip_end = self.worker_sip_port_base + self.workers
        rtp_end = self.rtp_port_base + self.workers * self.rtp_ports_per_worker
        if self.worker_sip_port_base <= self.sip_port < sip_end:
            raise ValueError("sip_port falls inside the workers' SIP ports")
        if max(self.worker_sip_port_base, self.rtp_port_base) < min(sip_end, rtp_end):
            raise ValueError("the workers' SIP ports and RTP ports overlap")
        if rtp_end > 65535:
            raise ValueError("rtp ports run past 65535: lower workers or rtp_ports_per_worker")
        return self

    @field_validator("controllers")
    @classmethod
    def _host_ports(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.fullmatch(r"[^\s:]+:[0-9]{1,5}", v)]
        if bad:
            raise ValueError(f"controllers are host:port, got {bad}")
        return value

    @field_validator("media_hosts")
    @classmethod
    def _unique_hosts(cls, value: list[MediaHost]) -> list[MediaHost]:
        if len({h.name for h in value}) != len(value):
            raise ValueError("media host names must be unique")
        return value

    def media_host(self, name: str) -> MediaHost:
        for host in self.media_hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.media_hosts) or "none"
        raise ValueError(f"no media host {name!r} in [[callcenter.media_hosts]] (configured: {known})")

    def worker_targets(self) -> list[tuple[str, int]]:
        """Every media worker's SIP address, for Kamailio's dispatcher."""
        if not self.media_hosts:
            return [(self.sip_host, self.worker_sip_port_base + n) for n in range(self.workers)]
        return [
            (host.address, host.worker_sip_port_base + n)
            for host in self.media_hosts
            for n in range(host.workers)
        ]

    def kamailio_path(self) -> str | None:
        """The Kamailio executable, or None when it is not installed."""
        return shutil.which(self.kamailio_binary)
