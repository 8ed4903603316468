"""The sections of `config.toml` that belong to no domain: the hotline itself, the database, the web
server and logins. Every section forbids unknown keys, so a typo stops start-up naming the key."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Section(BaseModel):
    """Base of every configuration section: unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class HotlineSection(Section):
    name: str = "12345政务服务便民热线"
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class UnderstandingSection(Section):
    """`[understanding]`: the sentence-embedding model under the knowledge base, the router and the
    emergency check (core.semantics). "none" turns it off: the lexical paths serve alone."""

    encoder: str = Field(default="multilingual-e5-small-q4", pattern=r"^(multilingual-e5-small-q4|none)$")
    # threads of the embedding engine (OpenMP); 0: as many as the machine has
    threads: int = Field(default=2, ge=0, le=64)


class DatabaseSection(Section):
    url: str = "sqlite:///var/hotline.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("must start with sqlite: or postgresql: (postgresql+psycopg:)")
        return value


class ServerSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)


class AuthSection(Section):
    # Basic auth on the JSON API (username + password); tokens work as well.
    api_basic_auth: bool = True
    # Key that signs the pages' session cookies. Empty: a random key kept in `session_secret_file`
    # (created on first use), so every app process reading that file accepts the same sessions.
    session_secret: str = ""
    session_secret_file: Path = Path("var/session.key")
    session_cookie: str = Field(default="hotline_session", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # A session ends this long after login (a shift and a half), or at logout.
    session_hours: float = Field(default=12, gt=0, le=24 * 7)
    # Send the cookie over HTTPS only (set true behind a TLS terminator).
    cookie_secure: bool = False
    # This many wrong passwords in a row lock the account for lockout_minutes (an admin may unlock it).
    lockout_attempts: int = Field(default=5, ge=1, le=100)
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
