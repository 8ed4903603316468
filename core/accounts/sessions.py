"""Signed session cookies for the pages: who is logged in, since when, and the CSRF token.

The cookie holds `payload.signature`: the payload is base64url JSON, the signature an HMAC-SHA256 of
it under the configured key. Nothing secret is in the payload (a user id, a random CSRF token, the
login time and a fingerprint of the password hash, so a password change ends older sessions).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class SessionData:
    csrf: str
    user_id: int | None = None
    fingerprint: str | None = None
    issued: float = 0.0  # wall-clock seconds of the login (or of the anonymous visit)

    @classmethod
    def anonymous(cls) -> SessionData:
        return cls(csrf=secrets.token_urlsafe(24), issued=time.time())

    @classmethod
    def logged_in(cls, user_id: int, fingerprint: str) -> SessionData:
        # A new CSRF token at login: a token seen before login is worth nothing afterwards.
        return cls(secrets.token_urlsafe(24), user_id, fingerprint, time.time())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, secret: bytes, max_age_seconds: float) -> None:
        if len(secret) < 16:
            raise ValueError("the session key must have at least 16 bytes")
        self._key = hashlib.sha256(b"hotline-session\0" + secret).digest()
        self.max_age_seconds = max_age_seconds

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def dumps(self, data: SessionData) -> str:
        payload = _b64(json.dumps(asdict(data), separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def loads(self, token: str | None, now: float | None = None) -> SessionData | None:
        """The session, or None for a missing, forged, damaged or expired cookie."""
        if not token or token.count(".") != 1:
            return None
        payload, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = SessionData(**json.loads(_unb64(payload)))
        except (ValueError, TypeError, binascii.Error):
            return None
        age = (now if now is not None else time.time()) - data.issued
        if data.user_id is not None and not 0 <= age <= self.max_age_seconds:
            return None
        return data


def load_secret(secret: str, secret_file: Path) -> bytes:
    """The configured key, else the key kept in `secret_file` (created, readable by the owner only)."""
    if secret:
        return secret.encode()
    try:
        return secret_file.read_bytes().strip()
    except FileNotFoundError:
        pass
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return secret_file.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key
