"""Loading and validating `config.toml`.

Every section is a pydantic model that forbids unknown keys, so a typo in the file stops
start-up with a message naming the key, instead of being silently ignored.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from callcenter.settings import CallCenterSettings
from dispatch.callbacks.settings import CallbackSettings
from dispatch.intake.settings import IntakeSettings
from sla.settings import DEFAULT_WARNINGS, CalendarSettings, WarningLevel

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config.toml"


class ConfigError(Exception):
    """The configuration file cannot be used; the message says which key and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HotlineSection(_Section):
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


class DatabaseSection(_Section):
    url: str = "sqlite:///var/core.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("must start with sqlite: or postgresql: (postgresql+psycopg:)")
        return value


class ServerSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)


class DispatchSection(_Section):
    category_tree: Path = Path("dispatch/category_tree.toml")
    # Digits of the daily serial in a ticket number (20261121-0001); more digits appear by themselves
    # when a day passes 9999 tickets.
    ticket_number_digits: int = Field(default=4, ge=3, le=8)


class SlaSection(_Section):
    calendar: CalendarSettings = CalendarSettings()
    # National guidance: a department may return (退单) only within this many working days of dispatch.
    return_window_working_days: int = Field(default=2, ge=0, le=30)
    # National guidance: one extension adds at most this many working days.
    max_extension_working_days: int = Field(default=10, ge=1, le=60)
    # 应急处突: the first progress reply is due this many minutes after dispatch, in clock time.
    emergency_first_reply_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # Run the supervision sweeps inside `hotline serve` (one process at a time sweeps anyway).
    sweeps_enabled: bool = True
    sweep_interval_seconds: int = Field(default=60, ge=5, le=3600)
    warnings: list[WarningLevel] = Field(default_factory=lambda: list(DEFAULT_WARNINGS))

    @field_validator("warnings")
    @classmethod
    def _unique_names(cls, value: list[WarningLevel]) -> list[WarningLevel]:
        names = [level.name for level in value]
        if len(set(names)) != len(names):
            raise ValueError(f"warning names must be unique, got {names}")
        return value


class AuthSection(_Section):
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


class Settings(_Section):
    hotline: HotlineSection = HotlineSection()
    database: DatabaseSection = DatabaseSection()
    server: ServerSection = ServerSection()
    dispatch: DispatchSection = DispatchSection()
    intake: IntakeSettings = IntakeSettings()
    sla: SlaSection = SlaSection()
    auth: AuthSection = AuthSection()
    callcenter: CallCenterSettings = CallCenterSettings()
    callbacks: CallbackSettings = CallbackSettings()
    # Where the file was read from; relative paths inside it are resolved against its folder.
    base_dir: Path = Field(default=REPO_ROOT, exclude=True)

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def database_url(self) -> str:
        """The URL with a relative SQLite path made absolute (relative to the config file)."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:" and not url.startswith("sqlite:////"):
            return prefix + str(self.resolve(Path(url[len(prefix) :])))
        return url


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        reason = item["msg"]
        if item["type"] == "extra_forbidden":
            reason = "unknown key (check the spelling; see config.toml for the documented keys)"
        value = item.get("input")
        shown = "" if item["type"] in ("extra_forbidden", "missing") else f" (got {value!r})"
        lines.append(f"  - key '{key}': {reason}{shown}")
    return "\n".join(lines)


def parse_settings(data: dict[str, Any], source: str = "config", base_dir: Path = REPO_ROOT) -> Settings:
    try:
        settings = Settings.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    override = os.environ.get("HOTLINE_DATABASE_URL")
    if override:
        try:
            settings.database = DatabaseSection(url=override, echo=settings.database.echo)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, "HOTLINE_DATABASE_URL").replace("key 'url'", "value")) from None
    return settings


def load_settings(path: Path | str | None = None) -> Settings:
    """Read the config file: `path`, else $HOTLINE_CONFIG, else config.toml at the repo root."""
    chosen = Path(path or os.environ.get("HOTLINE_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = chosen.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{chosen}: configuration file not found (set HOTLINE_CONFIG)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{chosen}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chosen}: not valid TOML: {exc}") from None
    return parse_settings(data, str(chosen), chosen.resolve().parent)
