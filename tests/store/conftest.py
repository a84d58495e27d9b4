"""Fixtures: a fresh database per test on SQLite and on PostgreSQL (see helpers.dbfixtures)."""

from __future__ import annotations

from helpers.dbfixtures import db_url

__all__ = ["db_url"]
