"""The [intake] section of config.toml: the shipped keys load, partners and app keys are read, and
every mistake stops start-up with a message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.config import DEFAULT_CONFIG, ConfigError, load_settings

PARTNER = """
[intake.police110.partners.city110]
name = "演示县公安局110指挥中心"
key = "city110-key-4567"
secret = "a-long-secret-of-the-110-platform"
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_CONFIG", raising=False)
    monkeypatch.delenv("HOTLINE_DATABASE_URL", raising=False)


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


def test_shipped_intake_section() -> None:
    intake = load_settings(DEFAULT_CONFIG).intake
    assert intake.jurisdiction_id == "demo.12345.gov.cn"
    assert (
        intake.open311.api_keys == {} and intake.police110.partners == {}
    )  # nobody may post until configured
    assert (intake.letters_per_phone.limit, intake.letters_per_phone.seconds) == (3, 86400)
    assert intake.police110.replay_window_seconds == 300


def test_partners_and_app_keys_are_read(tmp_path: Path) -> None:
    settings = load(tmp_path, '[intake.open311]\napi_keys = {citymap = "citymap-key-0123"}\n' + PARTNER)
    intake = settings.intake  # type: ignore[attr-defined]
    assert intake.open311.api_keys == {"citymap": "citymap-key-0123"}
    assert intake.police110.partners["city110"].name == "演示县公安局110指挥中心"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[intake]\nletters_per_phone = {limit = 0, seconds = 60}\n", "intake.letters_per_phone.limit"),
        ("[intake]\nlookups_per_address = {limit = 5}\n", "intake.lookups_per_address.seconds"),
        ("[intake]\nrate = 5\n", "intake.rate': unknown key"),
        ('[intake.open311]\napi_keys = {citymap = "short"}\n', "8-128 characters"),
        ('[intake.open311]\napi_keys = {a = "same-key-0000", b = "same-key-0000"}\n', "share one API key"),
        ("[intake.police110]\nreplay_window_seconds = 1\n", "intake.police110.replay_window_seconds"),
        (PARTNER.replace("a-long-secret-of-the-110-platform", "short"), "secret"),
        (PARTNER.replace('name = "演示县公安局110指挥中心"\n', ""), "name"),
        (PARTNER + 'colour = "blue"\n', "colour': unknown key"),
        (PARTNER.replace("partners.city110", "partners.City-110"), "partner code"),
        ('[intake]\njurisdiction_id = "has spaces"\n', "intake.jurisdiction_id"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, words: str) -> None:
    assert words in error(tmp_path, text)
