"""disclosure consent and the review of replies

Revision ID: 0009_consent_review
Revises: 0008_intake
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_consent_review"
down_revision: str | None = "0008_intake"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disclosure_consent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("reply_approved_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("reply_approved_by", sa.String(length=64), nullable=True))
    # Replies given before the review existed have already gone out: they count as approved. A letter
    # whose writer did not tick 不同意公开 had agreed to the disclosure; nobody else was asked.
    op.execute(
        "UPDATE tickets SET reply_approved_at = COALESCE(replied_at, closed_at), "
        "reply_approved_by = '启用审核前的答复' WHERE reply_text IS NOT NULL"
    )
    op.execute(
        sa.text(
            "UPDATE tickets SET disclosure_consent = :yes WHERE channel = 'web' AND private = :no"
        ).bindparams(yes=True, no=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("reply_approved_by")
        batch_op.drop_column("reply_approved_at")
        batch_op.drop_column("disclosure_consent")
