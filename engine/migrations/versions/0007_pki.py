"""PKI publication (issue 11, CA side)

Revision ID: b7f2d5e30007
Revises: a6e1c4d20006
Create Date: 2026-11-25 00:40:00
"""

from alembic import op  # noqa: F401

revision = 'b7f2d5e30007'
down_revision = 'a6e1c4d20006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
