"""a host's country from the feed and from the registry, and which one it uses; a notice's
recipients are every listed address

Revision ID: 0003_i12_provenance
Revises: 0003
Create Date: 2026-12-08 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_i12_provenance"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feed_country", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("registry_country", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("country_source", sa.String(length=16), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("recipient", existing_type=sa.String(length=320),
                              type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("recipient", existing_type=sa.Text(),
                              type_=sa.String(length=320), existing_nullable=False)
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_column("country_source")
        batch_op.drop_column("registry_country")
        batch_op.drop_column("feed_country")
