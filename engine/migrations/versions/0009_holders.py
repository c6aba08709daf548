"""holders (issue 12): the people who get cards, cards' current holder, assignment history,
PIN and PUK released for good

Revision ID: d9b4f7a50009
Revises: c8a3e6f40008
Create Date: 2026-11-25 00:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'd9b4f7a50009'
down_revision = 'c8a3e6f40008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('holders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_key', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('unit', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('identifier')
    )
    op.create_index('ix_holders_name_key', 'holders', ['name_key', 'id'], unique=False)
    op.create_table('assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=True),
    sa.Column('assigned_by', sa.String(length=100), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_by', sa.String(length=100), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], ),
    sa.ForeignKeyConstraint(['holder_id'], ['holders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_assignments_card_id', 'assignments', ['card_id'], unique=False)
    op.create_index('ix_assignments_holder_id', 'assignments', ['holder_id'], unique=False)
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite adds a column with its reference in place; a batch copy of cards would have to
        # drop the old table, which the rows of card_events, order_cards... forbid.
        op.execute('ALTER TABLE cards ADD COLUMN holder_id INTEGER REFERENCES holders (id)')
    else:
        op.add_column('cards', sa.Column('holder_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_cards_holder_id', 'cards', 'holders', ['holder_id'], ['id'])
    op.create_index('ix_cards_holder', 'cards', ['holder_id', 'number'], unique=False)
    with op.batch_alter_table('custody_secrets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('custody_secrets', schema=None) as batch_op:
        batch_op.drop_column('released_at')
    op.drop_index('ix_cards_holder', table_name='cards')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint('fk_cards_holder_id', 'cards', type_='foreignkey')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_column('holder_id')
    op.drop_index('ix_assignments_holder_id', table_name='assignments')
    op.drop_index('ix_assignments_card_id', table_name='assignments')
    op.drop_table('assignments')
    op.drop_index('ix_holders_name_key', table_name='holders')
    op.drop_table('holders')
