"""search indexes: the card picker's two orders answered from the index alone

Each index holds the other order's column too, so a number prefix with a date window is
filtered inside whichever index walks the smaller range, without reading the table.

Revision ID: 5e4a0c7b2d19
Revises: 10b2e8b8036a
Create Date: 2026-11-24 21:30:00
"""

from alembic import op

revision = '5e4a0c7b2d19'
down_revision = '10b2e8b8036a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_cards_search_date', 'cards', ['state', 'requested_at', 'id', 'number'], unique=False)
    op.create_index('ix_cards_search_number', 'cards', ['state', 'number', 'requested_at'], unique=False)
    op.drop_index('ix_cards_state_requested', table_name='cards')
    op.drop_index('ix_cards_state_number', table_name='cards')


def downgrade() -> None:
    op.create_index('ix_cards_state_number', 'cards', ['state', 'number'], unique=False)
    op.create_index('ix_cards_state_requested', 'cards', ['state', 'requested_at', 'id'], unique=False)
    op.drop_index('ix_cards_search_number', table_name='cards')
    op.drop_index('ix_cards_search_date', table_name='cards')
