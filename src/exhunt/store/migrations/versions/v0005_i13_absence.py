"""absence from daily reports, and aggregates the dashboard reads instead of every row

hosts.unreported_since (a host left out of a report that would have listed it);
ingested_files.report_type; report_days (each report's listing, counted or held back as
partial); daily_states (the campaign's counts per day, written at ingest); cases.hosts,
cases.worst, cases.worst_rank (kept by case judging, so case lists sort and page in SQL);
indexes for absence and for the case list's sorts.

Revision ID: 0003_i13_absence
Revises: 0003
Create Date: 2026-12-08 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_i13_absence"
down_revision: str | None = "0003_i12_provenance"
branch_labels: str | None = None
depends_on: str | None = None

_RANKS = ("clean", "patched", "exposed", "vulnerable", "exploited", "backdoor", "reentered")
_RANK_OF = "CASE h.state " + " ".join(
    f"WHEN '{s}' THEN {i}" for i, s in enumerate(_RANKS)) + " ELSE -1 END"
_WORST_OF = "CASE worst_rank " + " ".join(
    f"WHEN {i} THEN '{s}'" for i, s in enumerate(_RANKS)) + " ELSE NULL END"


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unreported_since", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_hosts_unreported", ["unreported_since", "last_seen"],
                              unique=False)
    with op.batch_alter_table("ingested_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report_type", sa.String(length=64), nullable=True))
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hosts", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("worst", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("worst_rank", sa.Integer(), nullable=False,
                                      server_default="-1"))
        batch_op.create_index("ix_cases_status", ["status"], unique=False)
        batch_op.create_index("ix_cases_hosts", ["hosts"], unique=False)
        batch_op.create_index("ix_cases_worst_rank", ["worst_rank"], unique=False)
        batch_op.create_index("ix_cases_last_notified_at", ["last_notified_at"], unique=False)
    op.execute("UPDATE cases SET hosts = (SELECT count(*) FROM hosts h "
               "WHERE h.organisation_id = cases.organisation_id), "
               f"worst_rank = coalesce((SELECT max({_RANK_OF}) FROM hosts h "
               "WHERE h.organisation_id = cases.organisation_id), -1)")
    op.execute(f"UPDATE cases SET worst = {_WORST_OF}")
    op.create_table(
        "report_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("report_type", sa.String(length=64), nullable=False),
        sa.Column("day", sa.DateTime(), nullable=False),
        sa.Column("listed", sa.Integer(), nullable=False),
        sa.Column("coverage", sa.Text(), nullable=False),
        sa.Column("held_back", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("unreported", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["ingested_files.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("file_id"),
    )
    op.create_index("ix_report_days_report_type", "report_days", ["report_type"], unique=False)
    op.create_table(
        "daily_states",
        sa.Column("day", sa.DateTime(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in (
            "exposed", "vulnerable", "backdoored", "clean", "unreported", "vulnerable_ever",
            "confirmed", "dropped")),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )


def downgrade() -> None:
    op.drop_table("daily_states")
    op.drop_index("ix_report_days_report_type", table_name="report_days")
    op.drop_table("report_days")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for name in ("ix_cases_last_notified_at", "ix_cases_worst_rank", "ix_cases_hosts",
                     "ix_cases_status"):
            batch_op.drop_index(name)
        batch_op.drop_column("worst_rank")
        batch_op.drop_column("worst")
        batch_op.drop_column("hosts")
    with op.batch_alter_table("ingested_files", schema=None) as batch_op:
        batch_op.drop_column("report_type")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index("ix_hosts_unreported")
        batch_op.drop_column("unreported_since")
