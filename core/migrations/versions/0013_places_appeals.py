"""where a ticket is (town, community), the units' appeals of their 三率 ratings, hotspot alerts

Revision ID: 0013_places_appeals
Revises: 0012_operator_transcript
Create Date: 2026-12-07 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_places_appeals"
down_revision: str | None = "0012_operator_transcript"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("town_code", sa.String(32), nullable=True))
        batch.add_column(sa.Column("community_code", sa.String(32), nullable=True))
        batch.create_index("ix_tickets_community_created", ["community_code", "created_at"])
    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("figure", sa.String(16), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeals")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_appeals_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_appeals_department_id_departments")
        ),
        sa.UniqueConstraint(
            "ticket_id", "figure", "month", "department_id", name=op.f("uq_appeals_ticket_id")
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'accepted', 'rejected')", name=op.f("ck_appeals_appeal_state_known")
        ),
        sa.CheckConstraint(
            "figure IN ('response', 'resolution', 'satisfaction', 'on_time')",
            name=op.f("ck_appeals_appeal_figure_known"),
        ),
    )
    op.create_index("ix_appeals_ticket_id", "appeals", ["ticket_id"])
    op.create_index("ix_appeals_state_created", "appeals", ["state", "created_at"])
    op.create_table(
        "hotspot_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("town_code", sa.String(32), nullable=True),
        sa.Column("community_code", sa.String(32), nullable=True),
        sa.Column("subcategory_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("window_hours", sa.Float(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=True),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.Column("tickets", sa.JSON(), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("notified_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotspot_alerts")),
        sa.ForeignKeyConstraint(
            ["subcategory_id"],
            ["subcategories.id"],
            name=op.f("fk_hotspot_alerts_subcategory_id_subcategories"),
        ),
        sa.CheckConstraint(
            "kind IN ('spike', 'sensitive')", name=op.f("ck_hotspot_alerts_hotspot_kind_known")
        ),
        sa.CheckConstraint(
            "state IN ('open', 'acknowledged', 'closed')", name=op.f("ck_hotspot_alerts_hotspot_state_known")
        ),
    )
    op.create_index("ix_hotspot_alerts_state_created", "hotspot_alerts", ["state", "created_at"])
    op.create_index("ix_hotspot_alerts_key", "hotspot_alerts", ["key"])


def downgrade() -> None:
    op.drop_table("hotspot_alerts")
    op.drop_table("appeals")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_community_created")
        batch.drop_column("community_code")
        batch.drop_column("town_code")
