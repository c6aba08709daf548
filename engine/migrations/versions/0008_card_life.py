"""card life processes (issue 12): card holds, the instance of a state change, the expiry index

A card process holds its card (``card_holds``, the card is the primary key: one process per card);
a state change made by a process without an order names its instance; the expiry sweep finds the
cards whose validity ended through an index on (state, valid_until).

Revision ID: c8a3e6f40008
Revises: b7f2d5e30007
Create Date: 2026-11-25 00:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'c8a3e6f40008'
down_revision = 'b7f2d5e30007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'card_holds',
        sa.Column('card_id', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.String(length=36), nullable=False),
        sa.Column('process_id', sa.String(length=200), nullable=False),
        sa.Column('process_name', sa.String(length=200), nullable=False),
        sa.Column('held_by', sa.String(length=100), nullable=False),
        sa.Column('held_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['card_id'], ['cards.id']),
        sa.PrimaryKeyConstraint('card_id'),
        sa.UniqueConstraint('instance_id'),
    )
    with op.batch_alter_table('card_events') as batch:
        batch.add_column(sa.Column('instance_id', sa.String(length=36), nullable=True))
    op.create_index('ix_card_events_instance_id', 'card_events', ['instance_id'], unique=False)
    op.create_index('ix_cards_expiry', 'cards', ['state', 'valid_until'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cards_expiry', table_name='cards')
    op.drop_index('ix_card_events_instance_id', table_name='card_events')
    with op.batch_alter_table('card_events') as batch:
        batch.drop_column('instance_id')
    op.drop_table('card_holds')
