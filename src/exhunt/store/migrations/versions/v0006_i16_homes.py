"""case tokens belong to cases: their state and the server secret that signs them move into
the store's own tables, made here rather than by the web layer's create_all

case_tokens (a case's victim-token generation, revocation, expiry set by hand); settings (a
key/value the coordinator keeps, here the tokens' HMAC secret). Rows the web layer kept in
web_case_tokens and web_settings are copied over, so tokens already sent in notices still
open their cases.

Revision ID: 0004_i16_homes
Revises: 0003_i13_absence
Create Date: 2026-12-08 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_i16_homes"
down_revision: str | None = "0003_i13_absence"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "case_tokens",
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("reference"),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    present = sa.inspect(op.get_bind())
    if present.has_table("web_case_tokens"):
        op.execute("INSERT INTO case_tokens (reference, generation, revoked_at, expires_at) "
                   "SELECT reference, coalesce(generation, 1), revoked_at, expires_at "
                   "FROM web_case_tokens")
    if present.has_table("web_settings"):
        op.execute("INSERT INTO settings (key, value) SELECT key, value FROM web_settings "
                   "WHERE key = 'token_secret'")


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_table("case_tokens")
