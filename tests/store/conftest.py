"""Fixtures: a fresh database per test on SQLite and on PostgreSQL (see exhunt_dbfixtures)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "store"))

from exhunt_dbfixtures import db_url

__all__ = ["db_url"]
