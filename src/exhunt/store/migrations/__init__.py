"""Alembic migrations of the coordinator store (run through exhunt.store.db.upgrade)."""
