"""other channels: Open311 keys, 110 partners and hand-overs, rate limits, public disclosure

Revision ID: 0008_intake
Revises: 0007_callbacks
Create Date: 2026-11-22 03:40:00
"""

from collections.abc import Sequence

revision: str = "0008_intake"
down_revision: str | None = "0007_callbacks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
