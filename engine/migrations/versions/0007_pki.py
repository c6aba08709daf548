"""PKI publication (issue 11, CA side): the current CRL, and an index on revoked certificates

Revision ID: b7f2d5e30007
Revises: a6e1c4d20006
Create Date: 2026-11-25 00:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'b7f2d5e30007'
down_revision = 'a6e1c4d20006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'published_crls',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('number', sa.BigInteger(), nullable=False),
        sa.Column('this_update', sa.DateTime(timezone=True), nullable=False),
        sa.Column('next_update', sa.DateTime(timezone=True), nullable=False),
        sa.Column('der', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_issued_certificates_revoked', 'issued_certificates', ['revoked_at'], unique=False,
                    postgresql_where=sa.text('revoked_at IS NOT NULL'),
                    sqlite_where=sa.text('revoked_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_issued_certificates_revoked', table_name='issued_certificates',
                  postgresql_where=sa.text('revoked_at IS NOT NULL'),
                  sqlite_where=sa.text('revoked_at IS NOT NULL'))
    op.drop_table('published_crls')
