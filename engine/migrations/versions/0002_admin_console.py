"""admin console: form library, current-version pointers, user lockout and login sessions

Revision ID: 5b1e0c2a7d41
Revises: 940c176e9d3f
Create Date: 2026-11-24 15:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "5b1e0c2a7d41"
down_revision = "940c176e9d3f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "form_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("deployed_by", sa.String(length=100), nullable=False),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "version"),
    )
    with op.batch_alter_table("form_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_form_versions_name"), ["name"], unique=False)

    op.create_table(
        "current_versions",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("set_by", sa.String(length=100), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name"),
    )
    # Until now the newest version was the current one: keep it so.
    op.execute("INSERT INTO current_versions (kind, name, version, set_by, set_at) "
               "SELECT 'process', process_id, MAX(version), 'migration', MAX(deployed_at) "
               "FROM definitions GROUP BY process_id")
    op.execute("INSERT INTO current_versions (kind, name, version, set_by, set_at) "
               "SELECT 'option', name, MAX(version), 'migration', MAX(deployed_at) "
               "FROM option_versions GROUP BY name")

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "login_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_sessions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_sessions_user_id"))
    op.drop_table("login_sessions")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_changed_at")
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_logins")
        batch_op.drop_column("disabled")
    op.drop_table("current_versions")
    with op.batch_alter_table("form_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_form_versions_name"))
    op.drop_table("form_versions")
