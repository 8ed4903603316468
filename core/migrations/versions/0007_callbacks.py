"""callback surveys, callback queue, survey links, SMS outbox

Revision ID: 0007_callbacks
Revises: 0006_speech
Create Date: 2026-11-22 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_callbacks"
down_revision: str | None = "0006_speech"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "phone_opt_outs",
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_phone_opt_outs")),
    )
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.String(length=24), nullable=True),
        sa.Column("solved", sa.Boolean(), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("mode IN ('auto', 'person')", name=op.f("ck_callbacks_mode_known")),
        sa.CheckConstraint(
            "state IN ('pending', 'calling', 'done', 'unreachable', 'opted_out', 'cancelled')",
            name=op.f("ck_callbacks_state_known"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_callbacks_attempts_not_negative")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_callbacks_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
        sa.UniqueConstraint("ticket_id", "round", name=op.f("uq_callbacks_ticket_id")),
    )
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.create_index("ix_callbacks_due", ["state", "mode", "next_attempt_at", "id"], unique=False)
        batch_op.create_index("ix_callbacks_finished_at", ["finished_at"], unique=False)
        batch_op.create_index("ix_callbacks_phone", ["phone"], unique=False)

    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("call_uid", sa.String(length=40), nullable=True),
        sa.Column("digits", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('calling', 'answered', 'no_answer', 'busy', 'no_input', 'invalid_input', "
            "'hung_up', 'failed', 'interrupted')",
            name=op.f("ck_callback_attempts_outcome_known"),
        ),
        sa.ForeignKeyConstraint(
            ["callback_id"],
            ["callbacks.id"],
            name=op.f("fk_callback_attempts_callback_id_callbacks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_callback_attempts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_attempts")),
        sa.UniqueConstraint("callback_id", "number", name=op.f("uq_callback_attempts_callback_id")),
    )
    op.create_table(
        "sms_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("backend", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("callback_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_sms_outbox_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["callback_id"],
            ["callbacks.id"],
            name=op.f("fk_sms_outbox_callback_id_callbacks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_outbox")),
    )
    op.create_table(
        "survey_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["callback_id"],
            ["callbacks.id"],
            name=op.f("fk_survey_links_callback_id_callbacks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_links")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_survey_links_token_sha256")),
    )
    with op.batch_alter_table("survey_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survey_links_callback_id"), ["callback_id"], unique=False)

    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("called_back_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("called_back_by_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_call_records_missed", ["outcome", "callback_outcome", "offered_at"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_call_records_called_back_by_id_users"), "users", ["called_back_by_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_call_records_called_back_by_id_users"), type_="foreignkey")
        batch_op.drop_index("ix_call_records_missed")
        batch_op.drop_column("called_back_by_id")
        batch_op.drop_column("called_back_at")
        batch_op.drop_column("callback_outcome")

    with op.batch_alter_table("survey_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survey_links_callback_id"))

    op.drop_table("survey_links")
    op.drop_table("sms_outbox")
    op.drop_table("callback_attempts")
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_callbacks_phone")
        batch_op.drop_index("ix_callbacks_finished_at")
        batch_op.drop_index("ix_callbacks_due")

    op.drop_table("callbacks")
    op.drop_table("phone_opt_outs")
