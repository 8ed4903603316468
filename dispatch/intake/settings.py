"""The `[intake]` section of config.toml: Open311 app keys, 110 partners, rate limits, disclosure."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from core.settings import Section

KEY_PATTERN = r"^[A-Za-z0-9_.-]{8,128}$"
NAME_PATTERN = r"^[a-z0-9_]{1,32}$"


class RateLimit(Section):
    """At most `limit` requests per `seconds` (a fixed window, counted in the database)."""

    limit: int = Field(ge=1, le=1_000_000)
    seconds: int = Field(ge=1, le=31 * 86400)


class Open311Settings(Section):
    # Apps allowed to post service requests: app name = API key (the `api_key` form field).
    api_keys: dict[str, str] = Field(default_factory=dict)
    # GET requests.json without dates covers this many days back (the specification says 90).
    default_days: int = Field(default=90, ge=1, le=3660)
    # At most this many requests in one answer (the specification suggests 1000).
    max_results: int = Field(default=1000, ge=1, le=10_000)

    @field_validator("api_keys")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for name, key in value.items():
            if not re.fullmatch(NAME_PATTERN, name):
                raise ValueError(f"app name {name!r}: lower-case letters, digits and _ only")
            if not re.fullmatch(KEY_PATTERN, key):
                raise ValueError(f"key of {name!r}: 8-128 characters of A-Z a-z 0-9 _ . -")
        if len(set(value.values())) != len(value):
            raise ValueError("two apps share one API key")
        return value


class PolicePartner(Section):
    """A police platform (110 指挥中心) allowed to hand matters over."""

    name: str = Field(min_length=1, max_length=64)
    # Sent in the X-Partner-Key header; identifies the partner.
    key: str = Field(pattern=KEY_PATTERN)
    # Signs the requests (HMAC-SHA256); never sent.
    secret: str = Field(min_length=16, max_length=256)


class Police110Settings(Section):
    partners: dict[str, PolicePartner] = Field(default_factory=dict)
    # A request's timestamp may differ from our clock by at most this much; a signature seen within
    # the window is a replay and is refused.
    replay_window_seconds: int = Field(default=300, ge=10, le=3600)

    @model_validator(mode="after")
    def _unique_keys(self) -> Police110Settings:
        for code in self.partners:
            if not re.fullmatch(NAME_PATTERN, code):
                raise ValueError(f"partner code {code!r}: lower-case letters, digits and _ only")
        keys = [p.key for p in self.partners.values()]
        if len(set(keys)) != len(keys):
            raise ValueError("two 110 partners share one key")
        return self


class IntakeSettings(Section):
    # Our jurisdiction in Open311 (the discovery document and the jurisdiction_id parameter).
    jurisdiction_id: str = Field(default="demo.12345.gov.cn", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    open311: Open311Settings = Open311Settings()
    police110: Police110Settings = Police110Settings()
    # The mayor's mailbox: letters per client address and per phone number.
    letters_per_address: RateLimit = RateLimit(limit=5, seconds=3600)
    letters_per_phone: RateLimit = RateLimit(limit=3, seconds=86400)
    # Status look-ups per client address, and failed look-ups of one ticket number (guessing the phone).
    lookups_per_address: RateLimit = RateLimit(limit=30, seconds=3600)
    lookup_failures_per_ticket: RateLimit = RateLimit(limit=5, seconds=3600)
    # Open311 posts per API key.
    open311_posts_per_key: RateLimit = RateLimit(limit=600, seconds=3600)
    # Closed tickets per page of the public disclosure.
    disclosure_page_size: int = Field(default=20, ge=1, le=200)
