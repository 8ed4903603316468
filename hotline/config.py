"""Loading and validating `config.toml`.

Every section is a pydantic model that forbids unknown keys, so a typo in the file stops
start-up with a message naming the key, instead of being silently ignored.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from callcenter.settings import CallCenterSettings
from core.settings import (
    AuthSection,
    DatabaseSection,
    HotlineSection,
    Section,
    ServerSection,
    UnderstandingSection,
)
from dispatch.callbacks.settings import CallbackSettings
from dispatch.intake.settings import IntakeSettings
from dispatch.settings import DispatchSection
from sla.settings import SlaSection

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config.toml"


class ConfigError(Exception):
    """The configuration file cannot be used; the message says which key and why."""


class Settings(Section):
    hotline: HotlineSection = HotlineSection()
    database: DatabaseSection = DatabaseSection()
    server: ServerSection = ServerSection()
    dispatch: DispatchSection = DispatchSection()
    intake: IntakeSettings = IntakeSettings()
    sla: SlaSection = SlaSection()
    auth: AuthSection = AuthSection()
    callcenter: CallCenterSettings = CallCenterSettings()
    callbacks: CallbackSettings = CallbackSettings()
    understanding: UnderstandingSection = UnderstandingSection()
    # Where the file was read from; relative paths inside it are resolved against its folder.
    base_dir: Path = Field(default=REPO_ROOT, exclude=True)
    # The file itself (None when built in code), for the child processes that must read the same one.
    config_file: Path | None = Field(default=None, exclude=True)

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
    settings = parse_settings(data, str(chosen), chosen.resolve().parent)
    settings.config_file = chosen.resolve()
    return settings
