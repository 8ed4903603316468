"""speech: call transcripts (also the queue of the background transcription)

Revision ID: 0006_speech
Revises: 0005_pages
Create Date: 2026-11-22 03:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_speech"
down_revision: str | None = "0005_pages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_transcripts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_record_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("raw_text", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("words", sa.JSON(), nullable=True),
        sa.Column("channel", sa.Integer(), nullable=True),
        sa.Column("model_path", sa.String(length=512), nullable=True),
        sa.Column("audio_seconds", sa.Float(), nullable=True),
        sa.Column("decode_seconds", sa.Float(), nullable=True),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("suggestions", sa.JSON(), nullable=True),
        sa.Column("classification", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed', 'skipped')",
            name=op.f("ck_call_transcripts_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["call_record_id"],
            ["call_records.id"],
            name=op.f("fk_call_transcripts_call_record_id_call_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_transcripts")),
        sa.UniqueConstraint("call_record_id", name=op.f("uq_call_transcripts_call_record_id")),
    )
    with op.batch_alter_table("call_transcripts", schema=None) as batch_op:
        batch_op.create_index("ix_call_transcripts_status_queued_at", ["status", "queued_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_transcripts", schema=None) as batch_op:
        batch_op.drop_index("ix_call_transcripts_status_queued_at")
    op.drop_table("call_transcripts")
