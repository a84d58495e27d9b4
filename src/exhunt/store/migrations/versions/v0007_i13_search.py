"""the campaign's past days for a store filled before absence; faster absence and case search

A store that took `0003_i13_absence` before its backfill existed has no daily rows for the
days it ingested: they are replayed here from its evidence runs (cases/absence.py,
`backfill_days`, which does nothing when the store already has daily rows).
ix_hosts_unreported is remade on unreported_since alone: with last_seen in it, every later
day's update of most hosts' last sighting rewrote the index too. On PostgreSQL, trigram
indexes answer the case search's LIKE '%...%' (pg_trgm, shipped in PostgreSQL's contrib).

Revision ID: 0005_i13_search
Revises: 0004_i16_homes
Create Date: 2026-12-08 04:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_i13_search"
down_revision: str | None = "0004_i16_homes"
branch_labels: str | None = None
depends_on: str | None = None

# what the case search matches with LIKE '%...%' (web/queries.py)
_SEARCHED = (("ix_hosts_ip_trgm", "hosts", "ip"), ("ix_hosts_hostname_trgm", "hosts", "hostname"),
             ("ix_organisations_name_trgm", "organisations", "name"),
             ("ix_cases_reference_trgm", "cases", "reference"))


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index("ix_hosts_unreported")
        batch_op.create_index("ix_hosts_unreported", ["unreported_since"], unique=False)
    _backfill_days()
    if op.get_bind().dialect.name == "postgresql":
        _trigram_indexes()


def _trigram_indexes() -> None:
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError:
        return  # not installed or not allowed here: search still works, by a scan
    for name, table, column in _SEARCHED:
        op.execute(f"CREATE INDEX {name} ON {table} USING gin (lower({column}) gin_trgm_ops)")


def _backfill_days() -> None:
    """A store filled before daily rows were kept gets its past days' counts (the dashboard's
    series and uptake curve read them), replayed from the evidence runs it holds."""
    from sqlalchemy.orm import Session

    from exhunt.cases.absence import backfill_days

    session = Session(bind=op.get_bind())
    backfill_days(session)
    session.flush()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in _SEARCHED:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index("ix_hosts_unreported")
        batch_op.create_index("ix_hosts_unreported", ["unreported_since", "last_seen"],
                              unique=False)
