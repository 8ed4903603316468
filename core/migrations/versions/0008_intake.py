"""other channels: Open311 keys, 110 partners and hand-overs, rate limits, public disclosure

Revision ID: 0008_intake
Revises: 0007_callbacks
Create Date: 2026-11-22 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_intake"
down_revision: str | None = "0007_callbacks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "police_signatures",
        sa.Column("partner", sa.String(length=32), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("partner", "signature", name=op.f("pk_police_signatures")),
    )
    with op.batch_alter_table("police_signatures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_police_signatures_at"), ["at"], unique=False)

    op.create_table(
        "rate_counters",
        sa.Column("scope", sa.String(length=24), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", "window_start", name=op.f("pk_rate_counters")),
    )
    op.create_table(
        "open311_requests",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(length=32), nullable=False),
        sa.Column("service_code", sa.String(length=16), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("long", sa.Float(), nullable=True),
        sa.Column("address_string", sa.String(length=256), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("media_url", sa.String(length=1024), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_open311_requests_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_open311_requests")),
    )
    op.create_table(
        "police_handovers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("partner", sa.String(length=32), nullable=True),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("call_record_id", sa.Integer(), nullable=True),
        sa.Column("call_event_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "direction IN ('from_110', 'to_110')", name=op.f("ck_police_handovers_direction_known")
        ),
        sa.ForeignKeyConstraint(
            ["call_event_id"], ["call_events.id"], name=op.f("fk_police_handovers_call_event_id_call_events")
        ),
        sa.ForeignKeyConstraint(
            ["call_record_id"],
            ["call_records.id"],
            name=op.f("fk_police_handovers_call_record_id_call_records"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_police_handovers_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_police_handovers")),
        sa.UniqueConstraint("partner", "external_id", name=op.f("uq_police_handovers_partner")),
    )
    with op.batch_alter_table("police_handovers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_police_handovers_call_record_id"), ["call_record_id"], unique=False
        )
        batch_op.create_index("ix_police_handovers_created_at", ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_police_handovers_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("police_handovers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_police_handovers_ticket_id"))
        batch_op.drop_index("ix_police_handovers_created_at")
        batch_op.drop_index(batch_op.f("ix_police_handovers_call_record_id"))

    op.drop_table("police_handovers")
    op.drop_table("open311_requests")
    op.drop_table("rate_counters")
    with op.batch_alter_table("police_signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_police_signatures_at"))

    op.drop_table("police_signatures")
