"""holders (issue 12)

Revision ID: d9b4f7a50009
Revises: c8a3e6f40008
Create Date: 2026-11-25 00:40:00
"""

from alembic import op  # noqa: F401

revision = 'd9b4f7a50009'
down_revision = 'c8a3e6f40008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
