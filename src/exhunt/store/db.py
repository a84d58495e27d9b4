"""Open the store (SQLite file by default, PostgreSQL by URL) and bring its schema up to date."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from exhunt.errors import UsageError

DEFAULT_URL = "sqlite:///exhunt.db"
WRITER_LOCK = 0x6578_6875_6E74  # PostgreSQL advisory lock key of exhunt's writers ("exhunt")


def resolve_url(url: str | None = None) -> str:
    """--db URL, else EXHUNT_DB, else exhunt.db here. A bare path means a SQLite file."""
    chosen = url or os.environ.get("EXHUNT_DB") or DEFAULT_URL
    if "://" not in chosen:
        chosen = f"sqlite:///{Path(chosen)}"
    return chosen


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")  # several exhunt processes may share one file
    # WAL: one sync per commit instead of several; commits still survive a killed process
    # (and, with synchronous=FULL kept, a power loss)
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def make_engine(url: str | None = None) -> Engine:
    resolved = resolve_url(url)
    try:
        engine = create_engine(resolved)
    except Exception as exc:  # sqlalchemy raises several types for a bad URL
        raise UsageError(f"cannot use database URL {resolved!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config() -> Config:
    """Alembic config pointing at the migrations shipped inside the package."""
    cfg = Config()
    location = resources.files("exhunt.store") / "migrations"
    cfg.set_main_option("script_location", str(location))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration not yet applied (`alembic upgrade head`)."""
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


class Store:
    """An engine plus sessions over an up-to-date schema."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = resolve_url(url)
        self.engine = make_engine(self.url)
        if migrate:
            upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A transaction for work that reads the store and then writes what it read (ingest,
        contacts import), one at a time across processes and machines: two at once would
        both create the same new host or take in the same file. SQLite: the write transaction
        starts at once (its one writer lock; others wait, up to busy_timeout); PostgreSQL: a
        transaction-scoped advisory lock. The reads that follow see every earlier commit."""
        with self.transaction() as session:
            connection = session.connection()
            if self.dialect == "sqlite":
                if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
            elif self.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": WRITER_LOCK})
            yield session

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def close(self) -> None:
        self.engine.dispose()
