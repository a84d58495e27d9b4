"""observations become runs of unchanged evidence

A daily feed reports the same finding about the same server day after day; one row per
sighting grew the store by the whole feed every day. A run keeps the first and last time a
finding was seen: `last_seen_at` is NULL while the run is the host's latest (it then lasts
until the host's last_seen). The natural key (one row per sighting) goes; so does the index
on seen_at, which no query used on its own.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 06:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# existing sightings become closed one-sighting runs, each host's latest one stays open
_OPEN_LATEST = """
UPDATE observations SET last_seen_at = NULL WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY host_id ORDER BY seen_at DESC, id DESC) AS n
        FROM observations) AS ranked
    WHERE n = 1)
"""


def upgrade() -> None:
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", sa.DateTime(), nullable=True))
        batch_op.drop_index("ix_observations_seen_at")
        batch_op.drop_column("natural_key")
    op.execute("UPDATE observations SET last_seen_at = seen_at")
    op.execute(_OPEN_LATEST)


def downgrade() -> None:
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("natural_key", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_observations_seen_at", ["seen_at"], unique=False)
        batch_op.drop_column("last_seen_at")
    op.execute("UPDATE observations SET natural_key = CAST(id AS VARCHAR(64))")
