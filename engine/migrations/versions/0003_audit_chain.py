"""audit trail: hash chain, card and order columns, indexed filters, signed heads, custody releases

Revision ID: 8c3d5f7a9e02
Revises: 5b1e0c2a7d41
Create Date: 2026-11-24 16:20:00
"""

import sqlalchemy as sa
from alembic import op

from engine.audit_chain import GENESIS, entry_hash

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
        batch_op.drop_index("ix_audit_events_at")
        batch_op.create_index("ix_audit_events_instance_id", ["instance_id", "id"], unique=False)
        # The auditor's pages go newest first by (at, id), filtered or not: see engine/store.py.
        for name, column in (("card_at", "card"), ("order_at", "order_id"), ("actor_at", "actor"),
                             ("action_at", "action")):
            batch_op.create_index(f"ix_audit_events_{name}", [column, "at", "id"], unique=False)
        batch_op.create_index("ix_audit_events_at_id", ["at", "id"], unique=False)
    _chain_existing_entries(op.get_bind())
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        # Every row now has its hashes: a row inserted without them is refused, not left blank.
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), server_default=None)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), server_default=None)

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


# The entries as the chain reads them; typed so times and details read back as the ORM's do.
_events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer()), sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()), sa.column("action", sa.String()), sa.column("instance_id", sa.String()),
    sa.column("order_id", sa.Integer()), sa.column("card", sa.String()), sa.column("detail", sa.JSON()),
    sa.column("prev_hash", sa.String()), sa.column("hash", sa.String()),
)


def _chain_existing_entries(connection: sa.Connection, batch: int = 1000) -> None:
    """Link the entries written before the chain existed, in id order, their ids kept."""
    content = [_events.c[name] for name in ("id", "at", "actor", "action", "instance_id", "order_id", "card",
                                            "detail")]
    link = (sa.update(_events).where(_events.c.id == sa.bindparam("entry_id"))
            .values(prev_hash=sa.bindparam("new_prev_hash"), hash=sa.bindparam("new_hash")))
    prev, after = GENESIS, None
    while True:
        query = sa.select(*content).order_by(_events.c.id).limit(batch)
        if after is not None:
            query = query.where(_events.c.id > after)
        rows = connection.execute(query).all()
        if not rows:
            return
        links = []
        for row in rows:
            links.append({"entry_id": row.id, "new_prev_hash": prev, "new_hash": entry_hash(prev, row)})
            prev = links[-1]["new_hash"]
        connection.execute(link, links)
        after = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("custody_releases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_custody_releases_card_id"))
    op.drop_table("custody_releases")
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_heads_entry_id"))
    op.drop_table("audit_heads")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        for name in ("at_id", "action_at", "actor_at", "order_at", "card_at", "instance_id"):
            batch_op.drop_index(f"ix_audit_events_{name}")
        batch_op.create_index("ix_audit_events_instance_id", ["instance_id"], unique=False)
        batch_op.create_index("ix_audit_events_at", ["at"], unique=False)
        for column in ("hash", "prev_hash", "card", "order_id"):
            batch_op.drop_column(column)
