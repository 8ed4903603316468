"""The `[callbacks]` section of config.toml: calling hours, attempts, survey prompts, SMS and web links."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.settings import Section


class SmsSettings(Section):
    """`[callbacks.sms]`: how survey links reach the citizen's phone."""

    # "file": append each message as a JSON line to `file` (development, tests); "http": POST it as JSON
    # {"phone", "text", "id"} to `url` (an SMS gateway's HTTP API; a 2xx answer means accepted).
    backend: Literal["file", "http"] = "file"
    file: Path = Path("var/sms-outbox.jsonl")
    url: str = ""
    # Sent as "Authorization: Bearer <token>" when set.
    token: str = ""
    timeout_seconds: float = Field(default=10, gt=0, le=120)

    @model_validator(mode="after")
    def _http_needs_url(self) -> SmsSettings:
        if self.backend == "http" and not self.url.startswith(("http://", "https://")):
            raise ValueError("backend 'http' needs url = 'http(s)://…' of the SMS gateway")
        return self


class CallbackSettings(Section):
    # Run the callback scheduler in `hotline serve` (enqueue replied tickets, place due survey calls).
    enabled: bool = True
    scheduler_interval_seconds: int = Field(default=30, ge=1, le=3600)
    # Calls (automatic and from the console) only between these times of day, local time.
    calling_hours: str = Field(default="09:00-20:00", pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")
    # At most this many attempts per callback; then it is marked unreachable for a supervisor.
    max_attempts: int = Field(default=3, ge=1, le=10)
    # Minutes from a failed attempt to the next one (the n-th entry after the n-th attempt; the last
    # entry repeats). A time outside the calling hours moves to the next opening.
    retry_minutes: list[int] = Field(default_factory=lambda: [60, 240])
    # Ticket categories handled this way need a person to call instead of the machine.
    person_required_handlings: list[str] = Field(default_factory=lambda: ["emergency", "supervision_centre"])
    # Survey calls: seconds to wait for a key after the question, ring time before "no answer".
    digit_wait_seconds: float = Field(default=6, gt=0, le=60)
    ring_seconds: float = Field(default=40, gt=0, le=180)
    # The department's reply is read out only when it has at most this many characters.
    summary_max_chars: int = Field(default=40, ge=0, le=500)
    # A claimed call that never reported back (the process died) is given up after this long.
    claim_stale_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # Survey calls placed at once by one process (each takes a media worker).
    concurrent_calls: int = Field(default=4, ge=1, le=200)
    # Web survey links: valid this long, sent by SMS when a callback becomes unreachable.
    link_valid_hours: float = Field(default=72, gt=0, le=24 * 60)
    sms_link_when_unreachable: bool = True
    # Public address of the hotline's pages, for the link in the SMS.
    public_base_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://")
    sms: SmsSettings = SmsSettings()

    @field_validator("calling_hours")
    @classmethod
    def _ordered(cls, value: str) -> str:
        start, end = parse_hours(value)
        if start >= end:
            raise ValueError(f"calling hours must start before they end, got {value!r}")
        return value

    @field_validator("retry_minutes")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or any(m < 1 or m > 7 * 24 * 60 for m in value):
            raise ValueError("retry_minutes needs at least one entry, each 1..10080 minutes")
        return value

    @field_validator("person_required_handlings")
    @classmethod
    def _known_handlings(cls, value: list[str]) -> list[str]:
        known = {"on_the_spot", "department", "supervision_centre", "emergency"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown handling {unknown}; known: {sorted(known)}")
        return value

    @property
    def hours(self) -> tuple[time, time]:
        return parse_hours(self.calling_hours)


def parse_hours(value: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part) for part in value.split("-"))
    except ValueError as exc:
        raise ValueError(f"calling hours must be HH:MM-HH:MM, got {value!r}") from exc
    return start, end
