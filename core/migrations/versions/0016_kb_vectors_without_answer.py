"""knowledge-base embeddings keep the phrasings only: the answer is indexed lexically

Revision ID: 0016_kb_vectors_without_answer
Revises: 0015_controller_leases
Create Date: 2026-12-07 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_kb_vectors_without_answer"
down_revision: str | None = "0015_controller_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kb_entry_vectors") as batch:
        batch.drop_column("answer")


def downgrade() -> None:
    # the vectors are a cache of the entries: dropping them makes the next start embed again
    op.execute("DELETE FROM kb_entry_vectors")
    with op.batch_alter_table("kb_entry_vectors") as batch:
        batch.add_column(sa.Column("answer", sa.LargeBinary(), nullable=False))
