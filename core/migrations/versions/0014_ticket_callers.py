"""further callers about a ticket's matter (附加来电), each with a callback of their own

Revision ID: 0014_ticket_callers
Revises: 0013_places_appeals
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_ticket_callers"
down_revision: str | None = "0013_places_appeals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_callers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("name", sa.String(64), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("call_uid", sa.String(40), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("call_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_callers")),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_callers_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_ticket_callers_ticket_id", "ticket_callers", ["ticket_id"])
    op.create_index("ix_ticket_callers_phone", "ticket_callers", ["phone"])
    op.create_index(
        "ix_tickets_town_community_created", "tickets", ["town_code", "community_code", "created_at"]
    )
    # 0 is the ticket's own caller; otherwise the ticket_callers row the callback is for.
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("extra_caller_id", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("uq_callbacks_ticket_id", type_="unique")
        batch.create_unique_constraint("uq_callbacks_ticket_id", ["ticket_id", "round", "extra_caller_id"])


def downgrade() -> None:
    op.execute("DELETE FROM callbacks WHERE extra_caller_id <> 0")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_constraint("uq_callbacks_ticket_id", type_="unique")
        batch.create_unique_constraint("uq_callbacks_ticket_id", ["ticket_id", "round"])
        batch.drop_column("extra_caller_id")
    op.drop_index("ix_tickets_town_community_created", table_name="tickets")
    op.drop_index("ix_ticket_callers_phone", table_name="ticket_callers")
    op.drop_index("ix_ticket_callers_ticket_id", table_name="ticket_callers")
    op.drop_table("ticket_callers")
