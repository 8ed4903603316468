"""Configuration of ticket attachments (`[dispatch.attachments]` in config.toml)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from core.settings import Section


class AttachmentSettings(Section):
    # Where the files are kept (relative to the config file's folder).
    folder: Path = Path("var/attachments")
    # One file at most this large (bytes): a phone photo or a scanned document.
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    # At most this many files on one ticket, and on one letter to the mayor's mailbox.
    max_per_ticket: int = Field(default=20, ge=1, le=200)
    max_per_letter: int = Field(default=3, ge=0, le=20)
