"""The transcript of a call: also the queue of the background transcription (its status column), so the
backlog lives in the database and survives a restart."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class TranscriptStatus(StrEnum):
    PENDING = "pending"  # waiting for a transcription process (also while transcription is off)
    RUNNING = "running"  # claimed; a claim older than the lease is taken over (a crash left it)
    DONE = "done"
    FAILED = "failed"  # gave up after the attempts allowed; `error` says why
    SKIPPED = "skipped"  # nothing to transcribe (an empty recording)


class CallTranscript(Base):
    """What the citizen said on a call (their channel of the recording), and what it suggested: the
    knowledge-base entries and the router's classification, for the seat console and the ticket page.
    The ticket is reached through `call_records.ticket_id`, so a ticket created after the
    transcription still shows it."""

    __tablename__ = "call_transcripts"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'running', 'done', 'failed', 'skipped')", name="status_known"),
        Index("ix_call_transcripts_status_queued_at", "status", "queued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_record_id: Mapped[int] = mapped_column(
        ForeignKey("call_records.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16), default=TranscriptStatus.PENDING.value)
    # The recogniser's text, and `text` after the hotline-vocabulary correction (equal when it is off).
    raw_text: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    # The operator's channel, when `operator_channel` is on (corrected like `text`).
    operator_text: Mapped[str | None] = mapped_column(Text)
    # [{"word", "start", "end", "conf"}], times in seconds from the start of the recording.
    words: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    channel: Mapped[int | None] = mapped_column(Integer)
    model_path: Mapped[str | None] = mapped_column(String(512))
    audio_seconds: Mapped[float | None] = mapped_column(Float)
    decode_seconds: Mapped[float | None] = mapped_column(Float)
    queued_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Which process holds a running row ("host:pid"), for the operator reading the table.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # [{"entry_id", "question", "score", "confident"}] best first.
    suggestions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # {"category", "subcategory", "department", "transfer", "confidence", "evidence"}.
    classification: Mapped[dict[str, Any] | None] = mapped_column(JSON)
