"""card identity per attempt (issue 11, card side)

Revision ID: a6e1c4d20006
Revises: 5e4a0c7b2d19
Create Date: 2026-11-25 00:40:00
"""

from alembic import op  # noqa: F401

revision = 'a6e1c4d20006'
down_revision = '5e4a0c7b2d19'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
