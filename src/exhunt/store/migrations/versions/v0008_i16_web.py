"""the portal's own tables (accounts, sessions, settings, uploaded reports) made here rather
than by the web layer's create_all

web_users, web_sessions, web_settings, web_reports. A store the portal already served has
them from the create_all of older versions: each is made only when it is not there yet, and
its rows stay as they are.

Revision ID: 0006_i16_web
Revises: 0005_i13_search
Create Date: 2026-12-08 05:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_i16_web"
down_revision: str | None = "0005_i13_search"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    present = sa.inspect(op.get_bind())
    if not present.has_table("web_users"):
        op.create_table(
            "web_users",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("username", sa.String(length=64), nullable=False),
            sa.Column("password_hash", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("username"),
        )
    if not present.has_table("web_sessions"):
        op.create_table(
            "web_sessions",
            sa.Column("id", sa.String(length=64), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("subject", sa.String(length=64), nullable=False),
            sa.Column("csrf", sa.String(length=64), nullable=False),
            sa.Column("expires_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if not present.has_table("web_settings"):
        op.create_table(
            "web_settings",
            sa.Column("key", sa.String(length=64), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )
    if not present.has_table("web_reports"):
        op.create_table(
            "web_reports",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("case_id", sa.Integer(), nullable=False),
            sa.Column("host_ip", sa.String(length=64), nullable=False),
            sa.Column("verdict", sa.String(length=32), nullable=False),
            sa.Column("received_at", sa.DateTime(), nullable=False),
            sa.Column("uploaded_by", sa.String(length=16), nullable=False),
            sa.Column("body", sa.LargeBinary(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_web_reports_case_id", "web_reports", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_web_reports_case_id", table_name="web_reports")
    for table in ("web_reports", "web_settings", "web_sessions", "web_users"):
        op.drop_table(table)
