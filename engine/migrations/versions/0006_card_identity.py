"""card identity per attempt (issue 11, card side): each physical card's GUID and FASC-N

Both unique: a door system registers a card by either, and no two physical cards may share one.

Revision ID: a6e1c4d20006
Revises: 5e4a0c7b2d19
Create Date: 2026-11-25 00:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'a6e1c4d20006'
down_revision = '5e4a0c7b2d19'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('production_attempts', sa.Column('card_uuid', sa.Uuid(), nullable=True))
    op.add_column('production_attempts', sa.Column('fascn', sa.String(length=32), nullable=True))
    op.create_index('ux_production_attempts_card_uuid', 'production_attempts', ['card_uuid'], unique=True)
    op.create_index('ux_production_attempts_fascn', 'production_attempts', ['fascn'], unique=True)


def downgrade() -> None:
    op.drop_index('ux_production_attempts_fascn', table_name='production_attempts')
    op.drop_index('ux_production_attempts_card_uuid', table_name='production_attempts')
    with op.batch_alter_table('production_attempts') as batch:
        batch.drop_column('fascn')
        batch.drop_column('card_uuid')
