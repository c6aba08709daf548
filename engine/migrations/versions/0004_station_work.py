"""station work: card claims with fencing tokens, instance messages, revocation queue, stations

Revision ID: 10b2e8b8036a
Revises: 8c3d5f7a9e02
Create Date: 2026-11-24 18:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = '10b2e8b8036a'
down_revision = '8c3d5f7a9e02'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('instance_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('instance_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instance_messages_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index('ix_instance_messages_pending', ['delivered_at', 'instance_id'], unique=False)

    op.create_table('revocation_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attempt_ref', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('revocation_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revocation_requests_attempt_ref'), ['attempt_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_revocation_requests_done_at'), ['done_at'], unique=False)

    op.create_table('stations',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('pool', sa.String(length=100), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('worker', sa.String(length=100), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cards_produced', sa.Integer(), nullable=False),
    sa.Column('cards_failed', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waiting_for', sa.String(length=20), nullable=True))

    with op.batch_alter_table('order_cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_token', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_order_cards_status_claim', ['status', 'claimed_until'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cards_outstanding', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('station_pool', sa.String(length=100), server_default='default',
                                      nullable=False))
        batch_op.add_column(sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('production_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('station', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('worker', sa.String(length=100), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('production_attempts', schema=None) as batch_op:
        batch_op.drop_column('worker')
        batch_op.drop_column('station')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('dispatched_at')
        batch_op.drop_column('station_pool')
        batch_op.drop_column('cards_outstanding')

    with op.batch_alter_table('order_cards', schema=None) as batch_op:
        batch_op.drop_index('ix_order_cards_status_claim')
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('claim_token')

    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('waiting_for')

    op.drop_table('stations')
    with op.batch_alter_table('revocation_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revocation_requests_done_at'))
        batch_op.drop_index(batch_op.f('ix_revocation_requests_attempt_ref'))

    op.drop_table('revocation_requests')
    with op.batch_alter_table('instance_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_instance_messages_pending')
        batch_op.drop_index(batch_op.f('ix_instance_messages_instance_id'))

    op.drop_table('instance_messages')
