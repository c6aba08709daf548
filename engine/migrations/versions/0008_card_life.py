"""card life processes (issue 12)

Revision ID: c8a3e6f40008
Revises: b7f2d5e30007
Create Date: 2026-11-25 00:40:00
"""

from alembic import op  # noqa: F401

revision = 'c8a3e6f40008'
down_revision = 'b7f2d5e30007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
