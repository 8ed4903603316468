"""knowledge-base entry embeddings, per entry version and model

Revision ID: 0011_kb_vectors
Revises: 0010_attachments
Create Date: 2026-12-07 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_kb_vectors"
down_revision: str | None = "0010_attachments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kb_entry_vectors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=96), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("phrasings", sa.LargeBinary(), nullable=False),
        sa.Column("answer", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["kb_entries.id"],
            name=op.f("fk_kb_entry_vectors_entry_id_kb_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_entry_vectors")),
        sa.UniqueConstraint("entry_id", "model", name=op.f("uq_kb_entry_vectors_entry_id")),
    )


def downgrade() -> None:
    op.drop_table("kb_entry_vectors")
