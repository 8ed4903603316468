"""The `[callbacks]` section of config.toml: shipped values, defaults, and mistakes named by key."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from dispatch.callbacks.settings import CallbackSettings
from hotline.config import DEFAULT_CONFIG, ConfigError, load_settings


def config_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


def test_shipped_section_equals_the_documented_defaults() -> None:
    shipped = load_settings(DEFAULT_CONFIG).callbacks
    assert shipped == CallbackSettings()
    assert shipped.hours == (time(9, 0), time(20, 0))
    assert (shipped.max_attempts, shipped.retry_minutes) == (3, [60, 240])
    assert shipped.sms.backend == "file"


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[callbacks]\ncalling_hours = "20:00-09:00"\n', "callbacks.calling_hours", "start before"),
        ('[callbacks]\ncalling_hours = "9-20"\n', "callbacks.calling_hours", "pattern"),
        ("[callbacks]\nmax_attempts = 0\n", "callbacks.max_attempts", "greater than or equal to 1"),
        ("[callbacks]\nretry_minutes = []\n", "callbacks.retry_minutes", "at least one"),
        ('[callbacks]\nperson_required_handlings = ["vip"]\n', "callbacks.person_required_handlings", "vip"),
        ('[callbacks.sms]\nbackend = "http"\n', "callbacks.sms", "needs url"),
        ('[callbacks.sms]\nbackend = "pigeon"\n', "callbacks.sms.backend", "pigeon"),
        ("[callbacks]\ncalling_hour = 1\n", "callbacks.calling_hour", "unknown key"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    message = config_error(tmp_path, text)
    assert f"'{key}'" in message
    assert reason in message
