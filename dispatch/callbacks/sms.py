"""The SMS gateway interface with two backends: a file (development, tests) and an HTTP adapter.

Every message goes to `sms_outbox` first, with what the backend said, so nothing sent or failed is lost.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from core.clock import Clock
from dispatch.callbacks.models import SmsMessage
from dispatch.callbacks.settings import SmsSettings


class SmsError(Exception):
    """The gateway did not accept the message."""


class SmsBackend(Protocol):
    name: str

    def deliver(self, message_id: int, phone: str, text: str) -> None: ...


class FileSms:
    """Appends one JSON line per message (and fsyncs): what a phone would have received."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def deliver(self, message_id: int, phone: str, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"id": message_id, "phone": phone, "text": text}, ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())

    def messages(self) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text("utf-8").splitlines() if line.strip()]


class HttpSms:
    """POSTs {"id", "phone", "text"} as JSON to the gateway; any 2xx answer means accepted."""

    name = "http"

    def __init__(self, url: str, token: str = "", timeout: float = 10) -> None:
        self.url, self.token, self.timeout = url, token, timeout

    def deliver(self, message_id: int, phone: str, text: str) -> None:
        body = json.dumps({"id": message_id, "phone": phone, "text": text}, ensure_ascii=False).encode()
        request = urllib.request.Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", "application/json; charset=utf-8")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise SmsError(f"gateway answered {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise SmsError(f"gateway unreachable: {exc}") from exc
        if not 200 <= status < 300:
            raise SmsError(f"gateway answered {status}")


def backend_for(settings: SmsSettings, base_dir: Path) -> SmsBackend:
    """The configured backend; a relative file path starts at config.toml's folder."""
    if settings.backend == "http":
        return HttpSms(settings.url, settings.token, settings.timeout_seconds)
    path = settings.file if settings.file.is_absolute() else base_dir / settings.file
    return FileSms(path)


def send_sms(
    session: Session, backend: SmsBackend, clock: Clock, phone: str, text: str, callback_id: int | None = None
) -> SmsMessage:
    """Record the message, hand it to the backend, record the answer. A refusal is kept as `failed`."""
    message = SmsMessage(
        phone=phone,
        text=text,
        backend=backend.name,
        status="pending",
        created_at=clock.now(),
        callback_id=callback_id,
    )
    session.add(message)
    session.flush()
    try:
        backend.deliver(message.id, phone, text)
    except SmsError as exc:
        message.status, message.error = "failed", str(exc)[:2000]
    else:
        message.status, message.sent_at = "sent", clock.now()
    return message
