"""callback surveys, callback queue, survey links, SMS outbox

Revision ID: 0007_callbacks
Revises: 0006_speech
Create Date: 2026-11-22 03:40:00
"""

from collections.abc import Sequence

revision: str = "0007_callbacks"
down_revision: str | None = "0006_speech"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
