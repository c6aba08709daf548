"""audit trail: hash chain, card and order columns, indexed filters, signed heads, custody releases

Revision ID: 8c3d5f7a9e02
Revises: 5b1e0c2a7d41
Create Date: 2026-11-24 16:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "8c3d5f7a9e02"
down_revision = "5b1e0c2a7d41"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("card", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=False, server_default=""))
        batch_op.drop_index("ix_audit_events_instance_id")
        batch_op.create_index("ix_audit_events_instance_id", ["instance_id", "id"], unique=False)
        batch_op.create_index("ix_audit_events_card_id", ["card", "id"], unique=False)
        batch_op.create_index("ix_audit_events_order_id", ["order_id", "id"], unique=False)
        batch_op.create_index("ix_audit_events_actor_id", ["actor", "id"], unique=False)
        batch_op.create_index("ix_audit_events_action_id", ["action", "id"], unique=False)

    op.create_table(
        "audit_heads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_heads_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "custody_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("attempt_ref", sa.String(length=200), nullable=False),
        sa.Column("kinds", sa.String(length=100), nullable=False),
        sa.Column("released_by", sa.String(length=100), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("custody_releases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_custody_releases_card_id"), ["card_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("custody_releases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_custody_releases_card_id"))
    op.drop_table("custody_releases")
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_heads_entry_id"))
    op.drop_table("audit_heads")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        for name in ("action_id", "actor_id", "order_id", "card_id", "instance_id"):
            batch_op.drop_index(f"ix_audit_events_{name}")
        batch_op.create_index("ix_audit_events_instance_id", ["instance_id"], unique=False)
        for column in ("hash", "prev_hash", "card", "order_id"):
            batch_op.drop_column(column)
