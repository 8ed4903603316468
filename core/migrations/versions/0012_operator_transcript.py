"""the operator's side of a call transcript

Revision ID: 0012_operator_transcript
Revises: 0011_kb_vectors
Create Date: 2026-12-07 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_operator_transcript"
down_revision: str | None = "0011_kb_vectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_transcripts") as batch:
        batch.add_column(sa.Column("operator_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_transcripts") as batch:
        batch.drop_column("operator_text")
