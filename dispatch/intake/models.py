"""Tables of the intake channels: Open311 request details, 110 hand-overs (both directions), the
replay guard of the 110 API, and the rate-limit counters of the public pages."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy import UniqueConstraint as Unique
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base
from dispatch.models import Ticket


class HandoverDirection(StrEnum):
    FROM_110 = "from_110"  # the police platform handed a non-police matter to us
    TO_110 = "to_110"  # our operator transferred a police matter to 110


class Open311Request(Base):
    """What an Open311 app sent with a service request, beyond the ticket itself."""

    __tablename__ = "open311_requests"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    app: Mapped[str] = mapped_column(String(32))  # the app whose API key posted it
    service_code: Mapped[str] = mapped_column(String(16))
    lat: Mapped[float | None] = mapped_column(Float)
    long: Mapped[float | None] = mapped_column(Float)
    address_string: Mapped[str | None] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(254))
    device_id: Mapped[str | None] = mapped_column(String(64))
    account_id: Mapped[str | None] = mapped_column(String(64))
    media_url: Mapped[str | None] = mapped_column(String(1024))

    ticket: Mapped[Ticket] = relationship(lazy="joined")


class PoliceHandover(Base):
    """A matter handed between the 110 platform and the hotline, in either direction."""

    __tablename__ = "police_handovers"
    __table_args__ = (
        Unique("partner", "external_id"),
        CheckConstraint("direction IN ('from_110', 'to_110')", name="direction_known"),
        Index("ix_police_handovers_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))
    partner: Mapped[str | None] = mapped_column(String(32))  # the partner code in config
    external_id: Mapped[str | None] = mapped_column(String(64))  # the 110 platform's incident number
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # to_110: the citizen's call and its "transfer" event, as the call centre recorded them.
    call_record_id: Mapped[int | None] = mapped_column(ForeignKey("call_records.id"), index=True)
    call_event_id: Mapped[int | None] = mapped_column(ForeignKey("call_events.id"))
    summary: Mapped[str] = mapped_column(Text)
    body_sha256: Mapped[str | None] = mapped_column(String(64))  # from_110: the signed body
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(64))

    ticket: Mapped[Ticket | None] = relationship(lazy="joined")


class PoliceSignature(Base):
    """Signatures of accepted 110 requests within the replay window: the same one twice is a replay."""

    __tablename__ = "police_signatures"

    partner: Mapped[str] = mapped_column(String(32), primary_key=True)
    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)


class RateCounter(Base):
    """Requests counted per scope, key (a hash of the address or phone) and fixed window."""

    __tablename__ = "rate_counters"

    scope: Mapped[str] = mapped_column(String(24), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
